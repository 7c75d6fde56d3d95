package stacks

import (
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/maricusco/infra/components"
)

// Config is a stack's configuration: read with its defaults (declare.go), then checked
// (validate.go), as kind splits its config into types, defaults and validation.
type Config struct {
	// Environment is dev or prod; prod turns warnings into errors.
	Environment string
	// DockerHost is the Docker daemon the stack deploys to.
	DockerHost string
	// EngineAPIVersion is the Docker Engine API version of the target; empty: ask the engine.
	EngineAPIVersion string
	// Prefix names every Docker object of the stack.
	Prefix string
	// Protect makes Pulumi refuse to delete stateful resources.
	Protect bool
	// DeleteVolumesOnDestroy lets `pulumi destroy` delete the data volumes.
	DeleteVolumesOnDestroy bool
	// Restart is Docker's restart policy for every container.
	Restart string
	// Health is every container's healthcheck timing.
	Health components.HealthTiming
	// Logging is every container's log rotation.
	Logging components.Logging
	// Orchestrator names the target; TargetOptions are its own keys.
	Orchestrator  string
	TargetOptions components.TargetOptions
	// Target is where the stack runs, chosen once from Orchestrator.
	Target components.Target
	// Services are the per-service settings of every registry row, by name.
	Services map[string]*ServiceConfig
	// App, Postgres, Grafana and Monitoring are the settings particular to those services.
	App        AppConfig
	Postgres   PostgresConfig
	Grafana    GrafanaConfig
	Monitoring MonitoringConfig
	// Backup is the database backups' schedule and limits.
	Backup BackupConfig
	// Edge is nginx in front of the app and Grafana: its name, TLS and redirect.
	Edge EdgeConfig
	// Secrets are the secret values the stack sets; a missing one is generated.
	Secrets map[string]string
	// Waivers are the guardrails the stack lifts deliberately.
	Waivers []string
	// Warnings are the guardrails the stack breaks without being refused (dev, or waived).
	Warnings []string
	// registry is the platform's table the config was read against.
	registry []Service
}

// ServiceConfig is one service's settings: one typed record per service, as compose-go's
// ServiceConfig is, read and validated apart from the code that turns it into Docker objects.
type ServiceConfig struct {
	// Image is the pinned image reference (the `<service>Image` key, or its ImageOf's).
	Image string
	// Resources are the limits and reservations (its row, over which `resources.<service>`).
	Resources components.Resources
	// Publish is the host port (`ports.<service>`); nil: not published.
	Publish *components.HostPort
}

// AppConfig is the application's part of the config.
type AppConfig struct {
	components.AppSettings
	// Replicas is the number of instances.
	Replicas int
	// SecretEnv is extra secret environment (plaintext in memory only).
	SecretEnv map[string]string
}

// PostgresConfig is the database's part of the config.
type PostgresConfig struct {
	// Database is created on the first start.
	Database string
	// User is the app's role, which owns the database.
	User string
}

// GrafanaConfig is Grafana's part of the config.
type GrafanaConfig struct {
	// AdminUser is the administrator's login.
	AdminUser string
}

// MonitoringConfig is Prometheus's part of the config.
type MonitoringConfig struct {
	// ScrapeInterval is the scrape interval, Retention how long samples are kept (Prometheus
	// notation: 15s, 15d).
	ScrapeInterval, Retention string
	// AlertErrorRatio is the 5xx share above which the error alert fires; AlertErrorRatioText is
	// as the stack writes it.
	AlertErrorRatio     float64
	AlertErrorRatioText string
}

// BackupConfig is the database backups' part of the config, set with
// `pulumi config set --path backup.<field> <value>`.
type BackupConfig struct {
	// Enabled runs the backup service.
	Enabled bool `yaml:"enabled"`
	// Interval is the time between two scheduled base backups and dumps (Go notation: 24h, 15m).
	Interval string `yaml:"interval"`
	// Keep is how many good base backups and dumps are kept.
	Keep int `yaml:"keep"`
	// WALMaxAge is how long written WAL may wait for the archive before the service is unhealthy
	// and the alert fires (Go notation: 2m).
	WALMaxAge string `yaml:"walMaxAge"`
	// WALRetainedLimit is how much WAL the slot may hold back on the database's disk before the
	// service is unhealthy and the alert fires (1G).
	WALRetainedLimit components.UnitBytes `yaml:"walRetainedLimit"`
	// Every is Interval, parsed.
	Every time.Duration `yaml:"-"`
	// MaxAge is WALMaxAge, parsed.
	MaxAge time.Duration `yaml:"-"`
}

// Secret config keys.
const (
	PostgresPasswordKey          = "postgresPassword"
	PostgresSuperuserPasswordKey = "postgresSuperuserPassword"
	PostgresBackupPasswordKey    = "postgresBackupPassword"
	RedisPasswordKey             = "redisPassword"
	GrafanaAdminPasswordKey      = "grafanaAdminPassword"
)

// running are the registry rows the stack runs, each after the services it waits for.
func (c *Config) running() []Service {
	var out []Service
	placed := map[string]bool{}
	var place func(s Service)
	place = func(s Service) {
		if placed[s.Name] || !s.runs(c) {
			return
		}
		placed[s.Name] = true
		for _, after := range s.After {
			if row, ok := lookup(c.registry, after); ok {
				place(row)
			}
		}
		out = append(out, s)
	}
	for _, s := range c.registry {
		place(s)
	}
	return out
}

// plan is what the stack asks its target to run.
func (c *Config) plan() components.Plan {
	p := components.Plan{Namespace: Namespace, Host: DockerHost(c.DockerHost), APIVersion: c.EngineAPIVersion, Health: c.Health}
	for _, role := range components.NetworkRoles {
		p.Networks = append(p.Networks, c.networkName(role))
	}
	for _, s := range c.running() {
		svc := c.Services[s.Name]
		planned := components.PlannedService{Name: s.Name, Publish: svc.Publish, Stateful: s.Stateful, Resources: svc.Resources, Instances: 1}
		if s.Plan != nil {
			s.Plan(c, &planned)
		}
		p.Services = append(p.Services, planned)
	}
	return p
}

// networkName is the Docker name of the platform's network of a role (components.EdgeNetwork, ...).
func (c *Config) networkName(role string) string { return c.Prefix + "-" + role }

// Keys lists every config key with its type, default and description.
func Keys() []Key {
	r := &reader{}
	declare(r, "", Registry)
	return r.keys
}

// Load reads the stack's config from the Pulumi context and validates all of it, returning one
// error that lists every problem.
func Load(ctx *pulumi.Context) (*Config, error) {
	return load(ctx, Registry)
}

func load(ctx *pulumi.Context, registry []Service) (*Config, error) {
	r := &reader{src: source{get: ctx.GetConfig, isSecret: ctx.IsConfigSecret}}
	c := declare(r, ctx.Stack(), registry)
	validate(r, c, ctx.Stack())
	configured, err := stackKeys()
	if err != nil {
		return nil, err
	}
	checkUnknownKeys(r, configured)
	if err := r.err(); err != nil {
		return nil, err
	}
	return c, nil
}
