package stacks

import (
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/maricusco/infra/components"
)

// Deployment is what a registry row's Deploy builds its component from: the stack's config, what
// every workload shares, the credentials, and the services declared before it.
type Deployment struct {
	Config   *Config
	Runtime  components.Runtime
	Secrets  *components.Secrets
	Deployed map[string]components.Deployed
	// Options are every component's resource options (the explicit docker provider).
	Options []pulumi.ResourceOption
	// dashboards replaces the embedded Grafana dashboards (nil: keep them).
	dashboards fs.FS
	// appServing tells whether the app's front answers now (see components.AppArgs.Serving).
	appServing bool
}

// Args are the settings a service's component takes from the stack: its row's image, limits,
// port, volume policy, and the services it waits for.
func (d *Deployment) Args(name string) components.ServiceArgs {
	s := d.Config.Services[name]
	args := components.ServiceArgs{
		Prefix:    d.Config.Prefix,
		Runtime:   d.Runtime,
		Image:     s.Image,
		Resources: s.Resources,
		Publish:   s.Publish,
		Volumes:   components.VolumePolicy{Protect: d.Config.Protect, DeleteOnDestroy: d.Config.DeleteVolumesOnDestroy},
	}
	if row, ok := lookup(d.Config.registry, name); ok {
		args.Runtime.Networks = map[string]pulumi.StringInput{}
		for _, role := range row.Networks {
			args.Runtime.Networks[role] = d.Runtime.Networks[role]
		}
		for _, after := range row.After {
			if dep, ok := d.Deployed[after]; ok {
				args.After = append(args.After, dep.Ready())
			}
		}
	}
	return args
}

func deployPostgres(ctx *pulumi.Context, d *Deployment) (components.Deployed, error) {
	var backups *components.PostgresBackups
	if d.Config.Backup.Enabled {
		backups = &components.PostgresBackups{Password: d.Secrets.PostgresBackupPassword, RetainedLimit: d.Config.Backup.WALRetainedLimit}
	}
	return components.NewPostgres(ctx, "postgres", &components.PostgresArgs{
		ServiceArgs:       d.Args("postgres"),
		Database:          d.Config.Postgres.Database,
		User:              d.Config.Postgres.User,
		Password:          d.Secrets.PostgresPassword,
		SuperuserPassword: d.Secrets.PostgresSuperuserPassword,
		Backups:           backups,
	}, d.Options...)
}

func postgresOutputs(dep components.Deployed, _ *Platform) map[string]pulumi.Input {
	pg := dep.(*components.Postgres)
	return map[string]pulumi.Input{
		"postgresConnectionString": pg.ConnectionString,
		// deploy.sh's restore stops this workload and lays the data down in this volume.
		"postgresWorkload": pg.Workload.Name,
		"postgresVolume":   pg.Volume.Name,
	}
}

func deployRedis(ctx *pulumi.Context, d *Deployment) (components.Deployed, error) {
	return components.NewRedis(ctx, "redis", &components.RedisArgs{ServiceArgs: d.Args("redis"), Password: d.Secrets.RedisPassword}, d.Options...)
}

func deployChromaDB(ctx *pulumi.Context, d *Deployment) (components.Deployed, error) {
	return components.NewChromaDB(ctx, "chromadb", &components.ChromaDBArgs{ServiceArgs: d.Args("chromadb")}, d.Options...)
}

func deployApp(ctx *pulumi.Context, d *Deployment) (components.Deployed, error) {
	c := d.Config
	secretEnv := map[string]pulumi.StringInput{}
	for k, v := range c.App.SecretEnv {
		secretEnv[k] = pulumi.ToSecret(pulumi.String(v)).(pulumi.StringOutput)
	}
	edge := components.EdgeTLS{
		Certificate: c.Edge.Certificate,
		PrivateKey:  pulumi.ToSecret(pulumi.String(c.Edge.PrivateKey)).(pulumi.StringOutput),
		HTTPS:       c.Edge.Serve,
		Redirect:    c.Edge.Redirect,
		HSTS:        c.Edge.HSTS,
	}
	return components.NewApp(ctx, "app", &components.AppArgs{
		ServiceArgs:      d.Args("app"),
		AppSettings:      c.App.AppSettings,
		SecretEnv:        secretEnv,
		PostgresDB:       c.Postgres.Database,
		PostgresUser:     c.Postgres.User,
		PostgresPassword: d.Secrets.PostgresPassword,
		RedisPassword:    d.Secrets.RedisPassword,
		Replicas:         c.App.Replicas,
		LoadBalancer:     d.Args("lb"),
		Edge:             edge,
		Serving:          d.appServing,
	}, d.Options...)
}

func appOutputs(dep components.Deployed, p *Platform) map[string]pulumi.Input {
	names := dep.(*components.App).InstanceNames()
	return map[string]pulumi.Input{
		"appUrl": pulumi.String(p.Config.edgeURL()),
		// The chain the edge serves: for a self-signed edge, what clients trust.
		"tlsCertificate": pulumi.String(p.Config.Edge.Certificate),
		// deploy.sh's restore stops and starts these around a physical restore.
		"appWorkloads": names.ToStringArrayOutput().ApplyT(func(n []string) string { return strings.Join(n, " ") }).(pulumi.StringOutput),
	}
}

func deployPrometheus(ctx *pulumi.Context, d *Deployment) (components.Deployed, error) {
	c := d.Config
	return components.NewPrometheus(ctx, "prometheus", &components.PrometheusArgs{
		ServiceArgs: d.Args("prometheus"),
		PrometheusConfig: components.PrometheusConfig{
			Stack:          ctx.Stack(),
			ScrapeInterval: c.Monitoring.ScrapeInterval,
			AppPort:        c.App.Port,
			ErrorRatio:     c.Monitoring.AlertErrorRatio,
			Backups:        c.backupAlerting(),
		},
		Retention: c.Monitoring.Retention,
	}, d.Options...)
}

func deployGrafana(ctx *pulumi.Context, d *Deployment) (components.Deployed, error) {
	return components.NewGrafana(ctx, "grafana", &components.GrafanaArgs{
		ServiceArgs:   d.Args("grafana"),
		AdminUser:     d.Config.Grafana.AdminUser,
		AdminPassword: d.Secrets.GrafanaAdminPassword,
		Dashboards:    d.dashboards,
		RootURL:       d.Config.edgeURL() + components.GrafanaPath,
	}, d.Options...)
}

func grafanaOutputs(_ components.Deployed, p *Platform) map[string]pulumi.Input {
	return map[string]pulumi.Input{
		"grafanaUrl":           pulumi.String(p.Config.edgeURL() + components.GrafanaPath),
		"grafanaAdminPassword": p.Secrets.GrafanaAdminPassword,
	}
}

func deployBackup(ctx *pulumi.Context, d *Deployment) (components.Deployed, error) {
	b := d.Config.Backup
	return components.NewBackup(ctx, "backup", &components.BackupArgs{
		ServiceArgs:      d.Args("backup"),
		Interval:         b.Every,
		Keep:             b.Keep,
		WALMaxAge:        b.MaxAge,
		WALRetainedLimit: b.WALRetainedLimit,
		Database:         d.Config.Postgres.Database,
		Password:         d.Secrets.PostgresBackupPassword,
	}, d.Options...)
}

func backupOutputs(dep components.Deployed, p *Platform) map[string]pulumi.Input {
	b := dep.(*components.Backup)
	return map[string]pulumi.Input{
		"backup": pulumi.Map{
			"volume":   b.Volume.Name,
			"interval": pulumi.String(p.Config.Backup.Every.String()),
			"keep":     pulumi.Int(p.Config.Backup.Keep),
		},
		// deploy.sh's backup and restore run in this workload, on this volume.
		"backupContainer": b.Workload.Name,
		"backupVolume":    b.Volume.Name,
	}
}

// backupAlerting is what Prometheus alerts on when the stack runs backups (nil: none).
func (c *Config) backupAlerting() *components.BackupAlerting {
	if !c.Backup.Enabled {
		return nil
	}
	return &components.BackupAlerting{WALMaxAge: c.Backup.MaxAge, WALRetainedLimit: c.Backup.WALRetainedLimit, Interval: c.Backup.Every}
}

// The keys particular to a service, declared by its row.

func declareApp(r *reader, c *Config) {
	a := &c.App
	a.Replicas = r.integer("appReplicas", 1, "Number of application instances, behind nginx, which publishes the app's port; from 2, image changes roll without downtime.")
	a.Module = r.str("appModule", "maricusco.api.app:app", "APP_MODULE: the ASGI application Uvicorn serves.")
	a.Host = r.str("appHost", "0.0.0.0", "APP_HOST: the address Uvicorn listens on inside the container.")
	a.Port = r.integer("appPort", 8000, "APP_PORT: the port Uvicorn listens on inside the container.")
	a.Workers = r.integer("appUvicornWorkers", 1, "UVICORN_WORKERS: worker processes per instance.")
	a.Reload = r.boolean("appUvicornReload", false, "UVICORN_RELOAD: reload on code change (development only).")
	a.ExtraArgs = r.str("appExtraUvicornArgs", "--log-level info", "EXTRA_UVICORN_ARGS: further Uvicorn arguments.")
	r.object("appEnv", "Extra plain environment variables of the application, NAME: value.", &a.Env, false)
	r.object("appSecretEnv", "Extra secret environment variables of the application; set each with `pulumi config set --secret --path 'appSecretEnv.NAME' value`.", &a.SecretEnv, true)
}

func declarePostgres(r *reader, c *Config) {
	c.Postgres.Database = r.str("postgresDb", "maricusco", "Database created on PostgreSQL's first start.")
	c.Postgres.User = r.str("postgresUser", "maricusco", "PostgreSQL role the app logs in as: it owns the database and is no superuser.")
	r.secretInto(c, PostgresPasswordKey, "Password of the app's PostgreSQL role, postgresUser (secret); generated and kept in the state when unset.")
	r.secretInto(c, PostgresSuperuserPasswordKey, "Password of PostgreSQL's superuser, postgres, for maintenance only (secret); generated and kept in the state when unset.")
}

func declareRedis(r *reader, c *Config) {
	r.secretInto(c, RedisPasswordKey, "Redis password (secret); generated and kept in the state when unset.")
}

func declarePrometheus(r *reader, c *Config) {
	c.Monitoring.ScrapeInterval = r.str("prometheusScrapeInterval", "15s", "How often Prometheus scrapes the application (Prometheus notation, e.g. 15s).")
	c.Monitoring.Retention = r.str("prometheusRetention", "15d", "How long Prometheus keeps samples (Prometheus notation, e.g. 15d).")
	c.Monitoring.AlertErrorRatioText = r.str("alertErrorRatio", "0.05", "Share of 5xx responses (0 to 1) that fires the error alert after 5 minutes.")
	if v, err := strconv.ParseFloat(c.Monitoring.AlertErrorRatioText, 64); err == nil {
		c.Monitoring.AlertErrorRatio = v
	} else {
		r.fail("alertErrorRatio", "%q is not a ratio; write a number between 0 and 1, e.g. 0.05", c.Monitoring.AlertErrorRatioText)
	}
}

func declareGrafana(r *reader, c *Config) {
	c.Grafana.AdminUser = r.str("grafanaAdminUser", "admin", "Grafana administrator login.")
	r.secretInto(c, GrafanaAdminPasswordKey, "Grafana administrator password (secret); generated and kept in the state when unset.")
}

func declareBackup(r *reader, c *Config) {
	r.secretInto(c, PostgresBackupPasswordKey, "Password of the backup service's PostgreSQL role, backup (secret); generated and kept in the state when unset.")
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
