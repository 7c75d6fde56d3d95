// Package stacks composes the platform's components from a stack's config.
package stacks

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/maricusco/infra/components"
)

// DefaultDockerHost is the local Docker socket, used when neither config nor DOCKER_HOST names a host.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// Platform is the deployed system.
type Platform struct {
	Config     *Config
	Provider   *docker.Provider
	Network    *components.Network
	Secrets    *components.Secrets
	Postgres   *components.Postgres
	Redis      *components.Redis
	ChromaDB   *components.ChromaDB
	App        *components.App
	Prometheus *components.Prometheus
	Grafana    *components.Grafana
	// Backup is nil when the stack turns backups off.
	Backup *components.Backup
}

// Run is the Pulumi program: it deploys the platform and exports its outputs.
func Run(ctx *pulumi.Context) error {
	return RunWith(ctx)
}

// RunWith is Run with options.
func RunWith(ctx *pulumi.Context, opts ...Option) error {
	p, err := Deploy(ctx, opts...)
	if err != nil {
		return err
	}
	p.export(ctx)
	return nil
}

// DockerHost is the Docker daemon the stack deploys to: config, then DOCKER_HOST as the docker CLI
// reads it, then the local socket.
func DockerHost(configured string) string {
	if configured != "" {
		return configured
	}
	if env := os.Getenv("DOCKER_HOST"); env != "" {
		return env
	}
	return DefaultDockerHost
}

// Option changes what Deploy provisions beyond the stack's config.
type Option func(*options)

type options struct {
	dashboards fs.FS
	engineAPI  func(host string) (string, error)
	swarmNodes func(host string) ([]SwarmNode, error)
}

// WithSwarmNodes asks nodes, instead of the Docker engine, for the swarm's ready nodes.
func WithSwarmNodes(nodes func(host string) ([]SwarmNode, error)) Option {
	return func(o *options) { o.swarmNodes = nodes }
}

// WithEngineAPIVersion asks probe, instead of the Docker engine, for the engine's API version
// when the stack does not set dockerApiVersion.
func WithEngineAPIVersion(probe func(host string) (string, error)) Option {
	return func(o *options) { o.engineAPI = probe }
}

// WithDashboards provisions the dashboards in fsys (one JSON file each) instead of the embedded ones.
func WithDashboards(fsys fs.FS) Option {
	return func(o *options) { o.dashboards = fsys }
}

// Deploy validates the config, then declares every resource. Nothing is registered when the
// config is invalid.
func Deploy(ctx *pulumi.Context, opts ...Option) (*Platform, error) {
	o := options{engineAPI: EngineAPIVersion, swarmNodes: SwarmNodes}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := Load(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		if err := ctx.Log.Warn(w, nil); err != nil {
			return nil, fmt.Errorf("log: %w", err)
		}
	}
	if err := checkTarget(cfg, o); err != nil {
		return nil, err
	}
	health, err := healthFor(ctx, cfg, o.engineAPI)
	if err != nil {
		return nil, err
	}
	p := &Platform{Config: cfg}
	p.Provider, err = docker.NewProvider(ctx, "docker", &docker.ProviderArgs{Host: pulumi.String(DockerHost(cfg.DockerHost))})
	if err != nil {
		return nil, fmt.Errorf("docker provider: %w", err)
	}
	onDocker := pulumi.Providers(p.Provider)
	target := cfg.Target()
	if p.Network, err = components.NewNetwork(ctx, "network", &components.NetworkArgs{Name: cfg.Prefix + "-network", Target: target}, onDocker); err != nil {
		return nil, err
	}
	if p.Secrets, err = components.NewSecrets(ctx, "secrets", &components.SecretsArgs{
		PostgresPassword:          cfg.Secrets[PostgresPasswordKey],
		PostgresSuperuserPassword: cfg.Secrets[PostgresSuperuserPasswordKey],
		PostgresBackupPassword:    cfg.Secrets[PostgresBackupPasswordKey],
		RedisPassword:             cfg.Secrets[RedisPasswordKey],
		GrafanaAdminPassword:      cfg.Secrets[GrafanaAdminPasswordKey],
	}); err != nil {
		return nil, err
	}
	runtime := components.Runtime{
		Target:  target,
		Network: p.Network.Name,
		Restart: cfg.Restart,
		Health:  health,
		Logging: cfg.Logging,
		Labels:  map[string]string{"maricusco.stack": ctx.Stack(), "maricusco.project": ctx.Project()},
	}
	service := func(name string) components.ServiceArgs {
		s := cfg.Service(name)
		return components.ServiceArgs{
			Prefix:    cfg.Prefix,
			Runtime:   runtime,
			Image:     s.Image,
			Resources: s.Resources,
			Publish:   s.Publish,
			Volumes:   components.VolumePolicy{Protect: cfg.Protect, DeleteOnDestroy: cfg.DeleteVolumesOnDestroy},
		}
	}
	var backups *components.PostgresBackups
	if cfg.Backup.Enabled {
		backups = &components.PostgresBackups{Password: p.Secrets.PostgresBackupPassword, RetainedLimit: cfg.Backup.WALRetainedLimit}
	}
	if p.Postgres, err = components.NewPostgres(ctx, "postgres", &components.PostgresArgs{
		ServiceArgs:       service("postgres"),
		Database:          cfg.PostgresDB,
		User:              cfg.PostgresUser,
		Password:          p.Secrets.PostgresPassword,
		SuperuserPassword: p.Secrets.PostgresSuperuserPassword,
		Backups:           backups,
	}, onDocker); err != nil {
		return nil, err
	}
	if p.Redis, err = components.NewRedis(ctx, "redis", &components.RedisArgs{
		ServiceArgs: service("redis"),
		Password:    p.Secrets.RedisPassword,
	}, onDocker); err != nil {
		return nil, err
	}
	if p.ChromaDB, err = components.NewChromaDB(ctx, "chromadb", &components.ChromaDBArgs{ServiceArgs: service("chromadb")}, onDocker); err != nil {
		return nil, err
	}
	loadBalancer := service("lb")
	loadBalancer.Publish = cfg.Service("app").Publish
	secretEnv := map[string]pulumi.StringInput{}
	for k, v := range cfg.App.SecretEnv {
		secretEnv[k] = pulumi.ToSecret(pulumi.String(v)).(pulumi.StringOutput)
	}
	if p.App, err = components.NewApp(ctx, "app", &components.AppArgs{
		ServiceArgs:      service("app"),
		AppSettings:      cfg.App.AppSettings,
		SecretEnv:        secretEnv,
		PostgresDB:       cfg.PostgresDB,
		PostgresUser:     cfg.PostgresUser,
		PostgresPassword: p.Secrets.PostgresPassword,
		RedisPassword:    p.Secrets.RedisPassword,
		Replicas:         cfg.App.Replicas,
		LoadBalancer:     loadBalancer,
		DependsOn:        []pulumi.Resource{p.Postgres.Workload.Resource, p.Redis.Workload.Resource, p.ChromaDB.Workload.Resource},
	}, onDocker); err != nil {
		return nil, err
	}
	if p.Prometheus, err = components.NewPrometheus(ctx, "prometheus", &components.PrometheusArgs{
		ServiceArgs: service("prometheus"),
		PrometheusConfig: components.PrometheusConfig{
			Stack:          ctx.Stack(),
			ScrapeInterval: cfg.ScrapeInterval,
			AppPort:        cfg.App.Port,
			ErrorRatio:     cfg.AlertErrorRatio,
			Backups:        cfg.backupAlerting(),
		},
		Retention: cfg.Retention,
	}, onDocker); err != nil {
		return nil, err
	}
	if p.Grafana, err = components.NewGrafana(ctx, "grafana", &components.GrafanaArgs{
		ServiceArgs:   service("grafana"),
		AdminUser:     cfg.GrafanaAdminUser,
		AdminPassword: p.Secrets.GrafanaAdminPassword,
		Dashboards:    o.dashboards,
	}, onDocker); err != nil {
		return nil, err
	}
	if cfg.Backup.Enabled {
		if p.Backup, err = components.NewBackup(ctx, "backup", &components.BackupArgs{
			ServiceArgs:      service("backup"),
			Interval:         cfg.Backup.Every,
			Keep:             cfg.Backup.Keep,
			WALMaxAge:        cfg.Backup.MaxAge,
			WALRetainedLimit: cfg.Backup.WALRetainedLimit,
			Database:         cfg.PostgresDB,
			Password:         p.Secrets.PostgresBackupPassword,
			Postgres:         p.Postgres.Workload.Resource,
		}, onDocker); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// backupAlerting is what Prometheus alerts on when the stack runs backups (nil: none).
func (c *Config) backupAlerting() *components.BackupAlerting {
	if !c.Backup.Enabled {
		return nil
	}
	return &components.BackupAlerting{WALMaxAge: c.Backup.MaxAge, WALRetainedLimit: c.Backup.WALRetainedLimit, Interval: c.Backup.Every}
}

// checkTarget tells why the target cannot run the stack, before anything is declared: on a swarm,
// the engine must be a manager whose nodes have room for what the services reserve.
func checkTarget(cfg *Config, o options) error {
	if cfg.Orchestrator != "swarm" {
		return nil
	}
	nodes, err := o.swarmNodes(DockerHost(cfg.DockerHost))
	if err == nil {
		err = checkSwarmFits(cfg, cfg.deployed(), nodes)
	}
	if err != nil {
		return fmt.Errorf("docker swarm: %w", err)
	}
	return nil
}

// healthFor is the stack's healthcheck timing on its target: without the start interval on an
// engine too old to take one, or on a swarm, whose services the docker provider gives none.
func healthFor(ctx *pulumi.Context, cfg *Config, probe func(string) (string, error)) (components.HealthTiming, error) {
	health, api := cfg.Health, cfg.EngineAPIVersion
	if cfg.Orchestrator == "swarm" {
		health.StartInterval = 0
		return health, nil
	}
	if api == "" {
		host := DockerHost(cfg.DockerHost)
		var err error
		if api, err = probe(host); err != nil {
			return health, fmt.Errorf("docker engine: cannot ask %s for its API version (%w); start it, or set %s:dockerApiVersion", host, err, Namespace)
		}
		if !validAPIVersion(api) {
			return health, fmt.Errorf("docker engine at %s answered API version %q; set %s:dockerApiVersion", host, api, Namespace)
		}
	}
	if health.StartInterval > 0 && !SupportsStartInterval(api) {
		health.StartInterval = 0
		msg := fmt.Sprintf("Docker Engine API %s predates %s (Docker 25): healthchecks run without a start interval, so a new container is known healthy only after %s", api, startIntervalAPI, health.Interval)
		if err := ctx.Log.Info(msg, nil); err != nil {
			return health, fmt.Errorf("log: %w", err)
		}
	}
	return health, nil
}

// URL is how a user reaches a published service: the Docker host's name, or the bound address.
func (p *Platform) URL(service string) string {
	hp := p.Config.Service(service).Publish
	if hp == nil {
		return ""
	}
	host := hp.IP
	if host == "0.0.0.0" || host == "::" {
		host = "localhost"
		if u, err := url.Parse(DockerHost(p.Config.DockerHost)); err == nil && (u.Scheme == "ssh" || u.Scheme == "tcp") && u.Hostname() != "" {
			host = u.Hostname()
		}
	}
	return (&url.URL{Scheme: "http", Host: host + ":" + strconv.Itoa(hp.Port)}).String()
}

func (p *Platform) export(ctx *pulumi.Context) {
	ctx.Export("appUrl", pulumi.String(p.URL("app")))
	ctx.Export("grafanaUrl", pulumi.String(p.URL("grafana")))
	ctx.Export("networkName", p.Network.Name)
	ctx.Export("volumeNames", pulumi.StringMap{
		"postgres":   p.Postgres.Volume.Name,
		"redis":      p.Redis.Volume.Name,
		"chromadb":   p.ChromaDB.Volume.Name,
		"prometheus": p.Prometheus.Volume.Name,
		"grafana":    p.Grafana.Volume.Name,
	})
	apps := pulumi.StringArray{}
	for _, w := range p.App.Instances {
		apps = append(apps, w.Name)
	}
	names := pulumi.Map{
		"app":        apps,
		"postgres":   p.Postgres.Workload.Name,
		"redis":      p.Redis.Workload.Name,
		"chromadb":   p.ChromaDB.Workload.Name,
		"prometheus": p.Prometheus.Workload.Name,
		"grafana":    p.Grafana.Workload.Name,
	}
	if p.App.LoadBalanced {
		names["lb"] = p.App.Front.Name
	}
	if p.Backup != nil {
		names["backup"] = p.Backup.Workload.Name
	}
	namesKey := "containerNames"
	if p.Config.Orchestrator == "swarm" {
		namesKey = "serviceNames"
	}
	ctx.Export(namesKey, names)
	ctx.Export("orchestrator", pulumi.String(p.Config.Orchestrator))
	ctx.Export("postgresConnectionString", p.Postgres.ConnectionString)
	// deploy.sh's backup and restore find the engine, the workloads and the volumes here.
	ctx.Export("dockerHost", pulumi.String(DockerHost(p.Config.DockerHost)))
	if p.Backup != nil {
		ctx.Export("backup", pulumi.Map{
			"volume":   p.Backup.Volume.Name,
			"interval": pulumi.String(p.Config.Backup.Every.String()),
			"keep":     pulumi.Int(p.Config.Backup.Keep),
		})
		ctx.Export("backupContainer", p.Backup.Workload.Name)
		ctx.Export("backupVolume", p.Backup.Volume.Name)
		ctx.Export("postgresWorkload", p.Postgres.Workload.Name)
		ctx.Export("postgresVolume", p.Postgres.Volume.Name)
		ctx.Export("appWorkloads", apps.ToStringArrayOutput().ApplyT(func(names []string) string { return strings.Join(names, " ") }).(pulumi.StringOutput))
	}
	ctx.Export("grafanaAdminPassword", p.Secrets.GrafanaAdminPassword)
}
