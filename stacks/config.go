package stacks

import (
	"encoding"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/maricusco/infra/components"
)

// Services are the platform's services, as the `resources` and `ports` keys name them; lb, the
// load balancer of several app instances, publishes the app's port and has no port of its own,
// and backup, the database backups, publishes nothing.
var Services = []string{"app", "postgres", "redis", "chromadb", "prometheus", "grafana", "lb", "backup"}

// publishable are the services that can take a `ports` entry.
var publishable = Services[:6]

// Config is a stack's configuration: read, defaulted and validated.
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
	// Orchestrator is the target: docker (containers on one engine) or swarm.
	Orchestrator string
	// SwarmEndpointMode is how swarm services are reached: vip (routing mesh) or dnsrr.
	SwarmEndpointMode string
	// Services are the per-service settings, by the seed's service name.
	Services map[string]*ServiceConfig
	// App is the application's settings.
	App AppConfig
	// PostgresDB is the database name.
	PostgresDB string
	// PostgresUser is the database role.
	PostgresUser string
	// GrafanaAdminUser is Grafana's administrator login.
	GrafanaAdminUser string
	// Secrets are the secret values the stack sets; a missing one is generated.
	Secrets map[string]string
	// ScrapeInterval is Prometheus's scrape interval (Prometheus notation).
	ScrapeInterval string
	// Retention is how long Prometheus keeps samples (Prometheus notation).
	Retention string
	// AlertErrorRatio is the 5xx share above which the error alert fires.
	AlertErrorRatio float64
	// Backup is the database backup schedule.
	Backup BackupConfig
	// Waivers are the guardrails the stack lifts deliberately.
	Waivers []string
	// Warnings are the guardrails the stack breaks without being refused (dev, or waived).
	Warnings []string
}

// ServiceConfig is one service's settings: one typed record per service, as compose-go's
// ServiceConfig is, read and validated apart from the code that turns it into Docker objects.
type ServiceConfig struct {
	// Name is the seed's name of the service.
	Name string
	// Image is the pinned image reference (the `<service>Image` key).
	Image string
	// Resources are the limits and reservations (the seed's table, over which `resources.<service>`).
	Resources components.Resources
	// Publish is the host port (`ports.<service>`); nil: not published.
	Publish *components.HostPort
}

// Service returns the named service's settings; every service in Services has a record.
func (c *Config) Service(name string) *ServiceConfig {
	if s, ok := c.Services[name]; ok {
		return s
	}
	s := &ServiceConfig{Name: name}
	c.Services[name] = s
	return s
}

// deployed are the services the stack runs on a swarm: every service but the load balancer, which
// the routing mesh replaces, and the backups when they are off.
func (c *Config) deployed() []string {
	return slices.DeleteFunc(slices.Clone(Services), func(s string) bool {
		return s == "lb" || (s == "backup" && !c.Backup.Enabled)
	})
}

// Target is the orchestrator the stack deploys to.
func (c *Config) Target() components.Target {
	if c.Orchestrator == "swarm" {
		return components.Swarm{EndpointMode: c.SwarmEndpointMode}
	}
	return components.DockerEngine{}
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

// AppConfig is the application's part of the config.
type AppConfig struct {
	components.AppSettings
	// Replicas is the number of instances.
	Replicas int
	// SecretEnv is extra secret environment (plaintext in memory only).
	SecretEnv map[string]string
}

// Secret config keys.
const (
	PostgresPasswordKey          = "postgresPassword"
	PostgresSuperuserPasswordKey = "postgresSuperuserPassword"
	PostgresBackupPasswordKey    = "postgresBackupPassword"
	RedisPasswordKey             = "redisPassword"
	GrafanaAdminPasswordKey      = "grafanaAdminPassword"
)

// Keys lists every config key with its type, default and description.
func Keys() []Key {
	r := &reader{}
	read(r, "")
	return r.keys
}

// Load reads the stack's config from the Pulumi context and validates all of it, returning one
// error that lists every problem.
func Load(ctx *pulumi.Context) (*Config, error) {
	r := &reader{src: source{get: ctx.GetConfig, isSecret: ctx.IsConfigSecret}}
	cfg := read(r, ctx.Stack())
	configured, err := stackKeys()
	if err != nil {
		return nil, err
	}
	checkUnknownKeys(r, configured)
	if err := r.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// read reads a stack's config in two phases, as kind splits its config into types, defaults
// and validation: declare reads every key with its default (reporting a value of the wrong
// type), then validate checks the rules between values. Both add to r's problems, so every
// problem is reported at once.
func read(r *reader, stack string) *Config {
	c := declare(r, stack)
	if r.src.get != nil {
		validate(r, c, stack)
	}
	return c
}

// declare declares every key, in the order the README lists them, with its default, and reads
// it into the config.
func declare(r *reader, stack string) *Config {
	c := &Config{Services: map[string]*ServiceConfig{}, Secrets: map[string]string{}}
	c.Environment = r.str("environment", "", "Environment kind, dev or prod; empty means the stack's name. prod turns guardrail warnings into errors.")
	if c.Environment == "" {
		c.Environment = stack
	}
	c.Orchestrator = r.str("orchestrator", "docker", "Where the stack runs: docker (containers on one engine) or swarm (services on a Docker Swarm cluster; README: Running on a cluster).")
	c.SwarmEndpointMode = r.str("swarmEndpointMode", components.EndpointVIP, "swarm only: vip (each service one virtual IP, ports published through the routing mesh) or dnsrr (one DNS record per task, nothing published), for kernels without IPVS.")
	c.DockerHost = r.str("dockerHost", "", "Docker daemon to deploy to (unix://, tcp:// or ssh://user@host); empty follows DOCKER_HOST, then the local socket.")
	c.EngineAPIVersion = r.str("dockerApiVersion", "", "Docker Engine API version of the target, e.g. 1.41; empty asks the engine. From 1.44 (Docker 25) on, healthchecks get the fast start phase.")
	c.Prefix = r.str("namePrefix", "maricusco", "Prefix of every Docker name: containers <prefix>-<service>, volumes <prefix>_<service>_data, network <prefix>-network.")
	c.Protect = r.boolean("protect", false, "Protect stateful resources (data volumes) from deletion by Pulumi; set it in prod.")
	c.DeleteVolumesOnDestroy = r.boolean("deleteVolumesOnDestroy", false, "Let `pulumi destroy` delete the data volumes; by default Docker keeps them.")
	c.Restart = r.str("restartPolicy", "unless-stopped", "Docker restart policy of every container: no, always, unless-stopped or on-failure.")

	c.Health.Interval = readDuration(r, "healthcheckInterval", "30s", "Time between two healthchecks of a running container (the seed: 30s).")
	c.Health.Timeout = readDuration(r, "healthcheckTimeout", "2s", "Time a healthcheck may take (the seed: 2s).")
	c.Health.Retries = r.integer("healthcheckRetries", 3, "Consecutive failed healthchecks that make a container unhealthy.")
	c.Health.StartPeriod = readDuration(r, "healthcheckStartPeriod", "60s", "Start phase in which failed healthchecks do not count.")
	c.Health.StartInterval = readDuration(r, "healthcheckStartInterval", "2s", "Time between healthchecks during the start phase, so a healthy container is known in seconds, not after a full interval.")
	c.Health.WaitTimeout = readDuration(r, "healthyTimeout", "5m", "How long `pulumi up` waits for a new container to become healthy.")

	c.Logging.MaxSize = r.str("logMaxSize", "10m", "Largest json-file log of a container before Docker rotates it (e.g. 10m).")
	c.Logging.MaxFile = r.integer("logMaxFile", 3, "Rotated log files Docker keeps per container.")

	for _, img := range []struct{ service, def, desc string }{
		{"app", "maricusco:1.0.0", "Application image, pinned by tag or digest."},
		{"postgres", "timescale/timescaledb:2.17.2-pg16", "PostgreSQL image: TimescaleDB, pinned."},
		{"redis", "redis:7.4.1-alpine", "Redis image, pinned."},
		{"chromadb", "chromadb/chroma:1.5.3", "ChromaDB image, pinned to a 1.x release (heartbeat on /api/v2)."},
		{"prometheus", "prom/prometheus:v2.55.1", "Prometheus image, pinned."},
		{"grafana", "grafana/grafana:11.3.1", "Grafana image, pinned."},
		{"lb", "nginx:1.27.3-alpine", "Load balancer image (nginx), used when appReplicas is above 1."},
	} {
		c.Service(img.service).Image = r.str(img.service+"Image", img.def, img.desc)
	}
	// The backup client is the server's own image, so pg_dump matches the server.
	c.Service("backup").Image = c.Service("postgres").Image

	declareResources(r, c)
	declarePorts(r, c)
	declareApp(r, c)

	c.PostgresDB = r.str("postgresDb", "maricusco", "Database created on PostgreSQL's first start.")
	c.PostgresUser = r.str("postgresUser", "maricusco", "PostgreSQL role the app logs in as: it owns the database and is no superuser.")
	c.GrafanaAdminUser = r.str("grafanaAdminUser", "admin", "Grafana administrator login.")
	for _, s := range []struct{ key, desc string }{
		{PostgresPasswordKey, "Password of the app's PostgreSQL role, postgresUser (secret); generated and kept in the state when unset."},
		{PostgresSuperuserPasswordKey, "Password of PostgreSQL's superuser, postgres, for maintenance only (secret); generated and kept in the state when unset."},
		{PostgresBackupPasswordKey, "Password of the backup service's PostgreSQL role, backup (secret); generated and kept in the state when unset."},
		{RedisPasswordKey, "Redis password (secret); generated and kept in the state when unset."},
		{GrafanaAdminPasswordKey, "Grafana administrator password (secret); generated and kept in the state when unset."},
	} {
		if v, ok := r.secret(s.key, s.desc); ok {
			c.Secrets[s.key] = v
		}
	}

	c.ScrapeInterval = r.str("prometheusScrapeInterval", "15s", "How often Prometheus scrapes the application (Prometheus notation, e.g. 15s).")
	c.Retention = r.str("prometheusRetention", "15d", "How long Prometheus keeps samples (Prometheus notation, e.g. 15d).")
	ratio := r.str("alertErrorRatio", "0.05", "Share of 5xx responses (0 to 1) that fires the error alert after 5 minutes.")
	var err error
	if c.AlertErrorRatio, err = strconv.ParseFloat(ratio, 64); err != nil || c.AlertErrorRatio <= 0 || c.AlertErrorRatio >= 1 {
		r.fail("alertErrorRatio", "%q is not a ratio; write a number between 0 and 1, e.g. 0.05", ratio)
	}
	declareBackup(r, c)
	c.Waivers = r.list("waivers", "Guardrails this stack lifts deliberately (pinned-images, published-ports, restart-policy); each still logs a warning.")
	return c
}

func declareBackup(r *reader, c *Config) {
	b := BackupConfig{Enabled: true, Interval: "24h", Keep: 7, WALMaxAge: "2m", WALRetainedLimit: 1 << 30}
	r.object("backup", "Database backups: backup.enabled (default true); backup.interval between base backups and dumps (default 24h, at least 15m); backup.keep of each kept (default 7); backup.walMaxAge, how long written WAL may wait for the archive (default 2m); backup.walRetainedLimit, WAL the slot may hold back on the database's disk (default 1G). docs/backups.md.", &b, false)
	var err error
	if b.Every, err = time.ParseDuration(b.Interval); err != nil {
		r.fail("backup.interval", "%q is not a duration; write e.g. 24h, 6h or 15m", b.Interval)
	}
	if b.MaxAge, err = time.ParseDuration(b.WALMaxAge); err != nil {
		r.fail("backup.walMaxAge", "%q is not a duration; write e.g. 2m or 30s", b.WALMaxAge)
	}
	c.Backup = b
}

func readDuration(r *reader, key, def, desc string) time.Duration {
	v := r.str(key, def, desc)
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.fail(key, "%q is not a positive duration; write e.g. 30s, 2s or 1m30s", v)
		return 0
	}
	return d
}

// declareResources reads each service's limits and reservations: the seed's table, over which
// the stack's `resources` object. Each amount parses itself (components.NanoCPUs, UnitBytes).
func declareResources(r *reader, c *Config) {
	seed, err := SeedResources()
	if err != nil {
		r.fail("resources", "%v", err)
		return
	}
	var overrides map[string]ResourceSpec
	r.object("resources", "Per-service limits and reservations in compose notation, over the seed's defaults: resources.<service>.{limits,reservations}.{cpus,memory}.", &overrides, false)
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		if _, ok := seed[name]; !ok {
			r.fail("resources."+name, "unknown service; use one of %s", strings.Join(Services, ", "))
		}
	}
	for _, svc := range Services {
		spec := seed[svc].overlay(overrides[svc])
		key := "resources." + svc
		res := &c.Service(svc).Resources
		for _, f := range []struct {
			field, value string
			into         any
		}{
			{"limits.cpus", spec.Limits.CPUs, &res.CPULimit},
			{"limits.memory", spec.Limits.Memory, &res.MemoryLimit},
			{"reservations.cpus", spec.Reservations.CPUs, &res.CPUReservation},
			{"reservations.memory", spec.Reservations.Memory, &res.MemoryReservation},
		} {
			if err := f.into.(encoding.TextUnmarshaler).UnmarshalText([]byte(f.value)); err != nil {
				r.fail(key+"."+f.field, "%v", err)
			}
		}
	}
}

// defaultPorts publishes what the seed exposes: the application and Grafana.
var defaultPorts = map[string]string{"app": "0.0.0.0:8000", "grafana": "0.0.0.0:3000"}

// declarePorts reads each published service's host port: the defaults, over which the stack's
// `ports` object.
func declarePorts(r *reader, c *Config) {
	ports := maps.Clone(defaultPorts)
	var overrides map[string]string
	r.object("ports", "Host ports by service as [ip:]port, over the defaults app 0.0.0.0:8000 and grafana 0.0.0.0:3000; an empty value unpublishes.", &overrides, false)
	maps.Copy(ports, overrides)
	for _, svc := range slices.Sorted(maps.Keys(ports)) {
		key := "ports." + svc
		if !slices.Contains(publishable, svc) {
			r.fail(key, "unknown service; use one of %s", strings.Join(publishable, ", "))
			continue
		}
		spec := strings.TrimSpace(ports[svc])
		if spec == "" {
			continue
		}
		hp, err := parseHostPort(spec)
		if err != nil {
			r.fail(key, "%v", err)
			continue
		}
		c.Service(svc).Publish = hp
	}
}

// parseHostPort reads compose's [ip:]port notation; without an address, the port binds to 127.0.0.1.
func parseHostPort(spec string) (*components.HostPort, error) {
	host, port := "127.0.0.1", spec
	if strings.Contains(spec, ":") {
		var err error
		host, port, err = net.SplitHostPort(spec)
		if err != nil {
			return nil, fmt.Errorf("%q is not [ip:]port (%v)", spec, err)
		}
	}
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("%q: %q is not an IP address; bind to an address such as 127.0.0.1 or 0.0.0.0", spec, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("%q: port %q is out of range; use 1 to 65535", spec, port)
	}
	return &components.HostPort{IP: host, Port: n}, nil
}

func declareApp(r *reader, c *Config) {
	a := &c.App
	a.Replicas = r.integer("appReplicas", 1, "Number of application instances; above 1, nginx balances them and publishes the app's port, and image changes roll without downtime.")
	a.Module = r.str("appModule", "maricusco.api.app:app", "APP_MODULE: the ASGI application Uvicorn serves.")
	a.Host = r.str("appHost", "0.0.0.0", "APP_HOST: the address Uvicorn listens on inside the container.")
	a.Port = r.integer("appPort", 8000, "APP_PORT: the port Uvicorn listens on inside the container.")
	a.Workers = r.integer("appUvicornWorkers", 1, "UVICORN_WORKERS: worker processes per instance.")
	a.Reload = r.boolean("appUvicornReload", false, "UVICORN_RELOAD: reload on code change (development only).")
	a.ExtraArgs = r.str("appExtraUvicornArgs", "--log-level info", "EXTRA_UVICORN_ARGS: further Uvicorn arguments.")
	r.object("appEnv", "Extra plain environment variables of the application, NAME: value.", &a.Env, false)
	r.object("appSecretEnv", "Extra secret environment variables of the application; set each with `pulumi config set --secret --path 'appSecretEnv.NAME' value`.", &a.SecretEnv, true)
}
