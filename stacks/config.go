package stacks

import (
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	units "github.com/docker/go-units"
	"github.com/prometheus/common/model"
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
	// Images are the pinned image references, by service.
	Images map[string]string
	// Resources are the limits and reservations, by service.
	Resources map[string]components.Resources
	// Ports are the host ports, by service; a service that is absent is not published.
	Ports map[string]*components.HostPort
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

// BackupConfig is the database backups' part of the config, set with
// `pulumi config set --path backup.<field> <value>`.
type BackupConfig struct {
	// Enabled runs the backup service.
	Enabled bool `yaml:"enabled"`
	// Interval is the time between two scheduled dumps (Go notation: 24h, 15m).
	Interval string `yaml:"interval"`
	// Keep is how many good dumps are kept.
	Keep int `yaml:"keep"`
	// Every is Interval, parsed.
	Every time.Duration `yaml:"-"`
}

// minBackupInterval keeps a dump of a large database from starting before the last one ends.
const minBackupInterval = 15 * time.Minute

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
	PostgresPasswordKey     = "postgresPassword"
	RedisPasswordKey        = "redisPassword"
	GrafanaAdminPasswordKey = "grafanaAdminPassword"
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

var (
	prefixPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	sizePattern     = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?[bkmgBKMG]$`)
	identPattern    = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	envNamePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	modulePattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$`)
	passwordPattern = regexp.MustCompile(`^[ -~]{12,}$`)
)

// read declares every key, in the order the README lists them, and validates the values.
func read(r *reader, stack string) *Config {
	c := &Config{Images: map[string]string{}, Resources: map[string]components.Resources{}, Ports: map[string]*components.HostPort{}, Secrets: map[string]string{}}

	c.Environment = r.str("environment", "", "Environment kind, dev or prod; empty means the stack's name. prod turns guardrail warnings into errors.")
	if c.Environment == "" {
		c.Environment = stack
	}
	if r.src.get != nil && c.Environment != "dev" && c.Environment != "prod" {
		r.fail("environment", "%q is not an environment; set dev or prod (the stack is named %q)", c.Environment, stack)
	}
	c.DockerHost = r.str("dockerHost", "", "Docker daemon to deploy to (unix://, tcp:// or ssh://user@host); empty follows DOCKER_HOST, then the local socket.")
	if c.DockerHost != "" {
		if u, err := url.Parse(c.DockerHost); err != nil || (u.Scheme != "unix" && u.Scheme != "tcp" && u.Scheme != "ssh" && u.Scheme != "npipe") {
			r.fail("dockerHost", "%q is not a Docker host; write unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host", c.DockerHost)
		}
	}
	c.EngineAPIVersion = r.str("dockerApiVersion", "", "Docker Engine API version of the target, e.g. 1.41; empty asks the engine. From 1.44 (Docker 25) on, healthchecks get the fast start phase.")
	if c.EngineAPIVersion != "" && !validAPIVersion(c.EngineAPIVersion) {
		r.fail("dockerApiVersion", "%q is not an API version; write it as `docker version` shows it (e.g. 1.41), or leave it empty to ask the engine", c.EngineAPIVersion)
	}
	c.Prefix = r.str("namePrefix", "maricusco", "Prefix of every Docker name: containers <prefix>-<service>, volumes <prefix>_<service>_data, network <prefix>-network.")
	if !prefixPattern.MatchString(c.Prefix) {
		r.fail("namePrefix", "%q is not a valid prefix; use lower-case letters, digits, '-' and '_', starting with a letter or digit", c.Prefix)
	}
	c.Protect = r.boolean("protect", false, "Protect stateful resources (data volumes) from deletion by Pulumi; set it in prod.")
	c.DeleteVolumesOnDestroy = r.boolean("deleteVolumesOnDestroy", false, "Let `pulumi destroy` delete the data volumes; by default Docker keeps them.")
	c.Restart = r.str("restartPolicy", "unless-stopped", "Docker restart policy of every container: no, always, unless-stopped or on-failure.")
	switch c.Restart {
	case "no", "always", "unless-stopped", "on-failure":
	default:
		r.fail("restartPolicy", "%q is not a restart policy; use no, always, unless-stopped or on-failure", c.Restart)
	}

	c.Health.Interval = readDuration(r, "healthcheckInterval", "30s", "Time between two healthchecks of a running container (the seed: 30s).")
	c.Health.Timeout = readDuration(r, "healthcheckTimeout", "2s", "Time a healthcheck may take (the seed: 2s).")
	c.Health.Retries = r.integer("healthcheckRetries", 3, "Consecutive failed healthchecks that make a container unhealthy.")
	c.Health.StartPeriod = readDuration(r, "healthcheckStartPeriod", "60s", "Start phase in which failed healthchecks do not count.")
	c.Health.StartInterval = readDuration(r, "healthcheckStartInterval", "2s", "Time between healthchecks during the start phase, so a healthy container is known in seconds, not after a full interval.")
	c.Health.WaitTimeout = readDuration(r, "healthyTimeout", "5m", "How long `pulumi up` waits for a new container to become healthy.")
	if c.Health.Timeout >= c.Health.Interval && c.Health.Interval > 0 {
		r.fail("healthcheckTimeout", "%s must be shorter than healthcheckInterval (%s)", c.Health.Timeout, c.Health.Interval)
	}
	if c.Health.StartInterval > c.Health.StartPeriod && c.Health.StartPeriod > 0 {
		r.fail("healthcheckStartInterval", "%s must not be longer than healthcheckStartPeriod (%s)", c.Health.StartInterval, c.Health.StartPeriod)
	}
	if c.Health.Retries < 1 {
		r.fail("healthcheckRetries", "%d is too small; use 1 or more", c.Health.Retries)
	}
	if c.Health.WaitTimeout > 0 && c.Health.WaitTimeout < c.Health.StartInterval {
		r.fail("healthyTimeout", "%s is shorter than one start-phase healthcheck; use at least healthcheckStartInterval", c.Health.WaitTimeout)
	}

	c.Logging.MaxSize = r.str("logMaxSize", "10m", "Largest json-file log of a container before Docker rotates it (e.g. 10m).")
	if _, err := readSize(c.Logging.MaxSize); err != nil {
		r.fail("logMaxSize", "%v", err)
	}
	c.Logging.MaxFile = r.integer("logMaxFile", 3, "Rotated log files Docker keeps per container.")
	if c.Logging.MaxFile < 1 {
		r.fail("logMaxFile", "%d is too small; keep at least 1 file", c.Logging.MaxFile)
	}

	for _, img := range []struct{ service, def, desc string }{
		{"app", "maricusco:1.0.0", "Application image, pinned by tag or digest."},
		{"postgres", "timescale/timescaledb:2.17.2-pg16", "PostgreSQL image: TimescaleDB, pinned."},
		{"redis", "redis:7.4.1-alpine", "Redis image, pinned."},
		{"chromadb", "chromadb/chroma:1.5.3", "ChromaDB image, pinned to a 1.x release (heartbeat on /api/v2)."},
		{"prometheus", "prom/prometheus:v2.55.1", "Prometheus image, pinned."},
		{"grafana", "grafana/grafana:11.3.1", "Grafana image, pinned."},
		{"lb", "nginx:1.27.3-alpine", "Load balancer image (nginx), used when appReplicas is above 1."},
	} {
		key := img.service + "Image"
		ref := r.str(key, img.def, img.desc)
		c.Images[img.service] = ref
		checkImage(r, key, ref)
	}

	readResources(r, c)
	readPorts(r, c)
	readApp(r, c)

	c.PostgresDB = r.str("postgresDb", "maricusco", "Database created on PostgreSQL's first start.")
	c.PostgresUser = r.str("postgresUser", "maricusco", "PostgreSQL role that owns the database.")
	for key, v := range map[string]string{"postgresDb": c.PostgresDB, "postgresUser": c.PostgresUser} {
		if !identPattern.MatchString(v) {
			r.fail(key, "%q is not a plain identifier; use lower-case letters, digits and '_'", v)
		}
	}
	c.GrafanaAdminUser = r.str("grafanaAdminUser", "admin", "Grafana administrator login.")
	if strings.TrimSpace(c.GrafanaAdminUser) == "" {
		r.fail("grafanaAdminUser", "must not be empty")
	}
	for _, s := range []struct{ key, desc string }{
		{PostgresPasswordKey, "PostgreSQL password (secret); generated and kept in the state when unset."},
		{RedisPasswordKey, "Redis password (secret); generated and kept in the state when unset."},
		{GrafanaAdminPasswordKey, "Grafana administrator password (secret); generated and kept in the state when unset."},
	} {
		if v, ok := r.secret(s.key, s.desc); ok {
			if !passwordPattern.MatchString(v) {
				r.fail(s.key, "the secret is too weak; use at least 12 printable ASCII characters (the value is not shown)")
			}
			c.Secrets[s.key] = v
		}
	}

	c.ScrapeInterval = r.str("prometheusScrapeInterval", "15s", "How often Prometheus scrapes the application (Prometheus notation, e.g. 15s).")
	scrape, err := model.ParseDuration(c.ScrapeInterval)
	if err != nil || scrape <= 0 {
		r.fail("prometheusScrapeInterval", "%q is not a positive Prometheus duration; write e.g. 15s or 1m", c.ScrapeInterval)
	}
	c.Retention = r.str("prometheusRetention", "15d", "How long Prometheus keeps samples (Prometheus notation, e.g. 15d).")
	retention, err := model.ParseDuration(c.Retention)
	if err != nil || retention <= 0 {
		r.fail("prometheusRetention", "%q is not a positive Prometheus duration; write e.g. 15d or 12h", c.Retention)
	} else if scrape > 0 && time.Duration(retention) < time.Duration(scrape) {
		r.fail("prometheusRetention", "%q is shorter than one scrape interval (%s)", c.Retention, c.ScrapeInterval)
	}
	ratio := r.str("alertErrorRatio", "0.05", "Share of 5xx responses (0 to 1) that fires the error alert after 5 minutes.")
	c.AlertErrorRatio, err = strconv.ParseFloat(ratio, 64)
	if err != nil || c.AlertErrorRatio <= 0 || c.AlertErrorRatio >= 1 {
		r.fail("alertErrorRatio", "%q is not a ratio; write a number between 0 and 1, e.g. 0.05", ratio)
	}
	readBackup(r, c)
	c.Waivers = r.list("waivers", "Guardrails this stack lifts deliberately (pinned-images, published-ports, restart-policy); each still logs a warning.")
	checkGuardrails(r, c)
	return c
}

func readBackup(r *reader, c *Config) {
	b := BackupConfig{Enabled: true, Interval: "24h", Keep: 7}
	r.object("backup", "Database backups: backup.enabled (default true), backup.interval between dumps (default 24h, at least 15m), backup.keep good dumps kept (default 7).", &b, false)
	every, err := time.ParseDuration(b.Interval)
	switch {
	case err != nil:
		r.fail("backup.interval", "%q is not a duration; write e.g. 24h, 6h or 15m", b.Interval)
	case every < minBackupInterval:
		r.fail("backup.interval", "%s is too often; take a dump at most every %s", b.Interval, minBackupInterval)
	}
	if b.Keep < 1 {
		r.fail("backup.keep", "%d keeps no dump; keep at least 1", b.Keep)
	}
	b.Every = every
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

// checkImage refuses a reference Docker cannot pull; the pinned-images guardrail judges the tag.
func checkImage(r *reader, key, ref string) {
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		r.fail(key, "%q is not an image reference (%v); write name:tag or name@sha256:digest", ref, err)
	}
}

// readSize parses a size as the seed writes it: a number and one of b, k, m, g.
func readSize(v string) (int64, error) {
	if !sizePattern.MatchString(v) {
		return 0, fmt.Errorf("%q is not a size; write a positive number and one of b, k, m, g as the seed does (e.g. 4G, 512M)", v)
	}
	n, err := units.RAMInBytes(v)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", v, err)
	}
	return n, nil
}

// memoryMB converts a size to the whole MiB Docker's provider takes.
func memoryMB(v string) (int, error) {
	n, err := readSize(v)
	if err != nil {
		return 0, err
	}
	if n%units.MiB != 0 {
		return 0, fmt.Errorf("%q is not a whole number of megabytes; Docker's provider takes MiB", v)
	}
	return int(n / units.MiB), nil
}

func cpus(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a CPU count; write a positive number such as '2.0' or '0.5'", v)
	}
	return f, nil
}

func readResources(r *reader, c *Config) {
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
		var res components.Resources
		var errs []error
		add := func(field string, err error) {
			if err != nil {
				r.fail(key+"."+field, "%v", err)
				errs = append(errs, err)
			}
		}
		res.CPULimit, err = cpus(spec.Limits.CPUs)
		add("limits.cpus", err)
		res.CPUReservation, err = cpus(spec.Reservations.CPUs)
		add("reservations.cpus", err)
		res.MemoryLimitMB, err = memoryMB(spec.Limits.Memory)
		add("limits.memory", err)
		res.MemoryReservationMB, err = memoryMB(spec.Reservations.Memory)
		add("reservations.memory", err)
		if len(errs) == 0 {
			if res.MemoryLimitMB < 6 {
				r.fail(key+".limits.memory", "%q is below Docker's minimum of 6M", spec.Limits.Memory)
			}
			if res.CPUReservation > res.CPULimit {
				r.fail(key+".reservations.cpus", "%s is above the limit %s; a reservation must not exceed its limit", spec.Reservations.CPUs, spec.Limits.CPUs)
			}
			if res.MemoryReservationMB > res.MemoryLimitMB {
				r.fail(key+".reservations.memory", "%s is above the limit %s; a reservation must not exceed its limit", spec.Reservations.Memory, spec.Limits.Memory)
			}
		}
		c.Resources[svc] = res
	}
}

// defaultPorts publishes what the seed exposes: the application and Grafana.
var defaultPorts = map[string]string{"app": "0.0.0.0:8000", "grafana": "0.0.0.0:3000"}

func readPorts(r *reader, c *Config) {
	ports := map[string]string{}
	for k, v := range defaultPorts {
		ports[k] = v
	}
	var overrides map[string]string
	r.object("ports", "Host ports by service as [ip:]port, over the defaults app 0.0.0.0:8000 and grafana 0.0.0.0:3000; an empty value unpublishes.", &overrides, false)
	for k, v := range overrides {
		ports[k] = v
	}
	known := map[string]bool{}
	for _, s := range publishable {
		known[s] = true
	}
	type binding struct {
		service string
		hp      *components.HostPort
	}
	var bound []binding
	for _, svc := range slices.Sorted(maps.Keys(ports)) {
		key := "ports." + svc
		if !known[svc] {
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
		for _, b := range bound {
			if b.hp.Port == hp.Port && (b.hp.IP == hp.IP || b.hp.IP == "0.0.0.0" || hp.IP == "0.0.0.0") {
				r.fail(key, "host port %d is already taken by %s; give each service its own host port", hp.Port, b.service)
			}
		}
		bound = append(bound, binding{svc, hp})
		c.Ports[svc] = hp
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

// managedAppEnv are the variables the program sets itself; appEnv may not override them.
var managedAppEnv = []string{"APP_MODULE", "APP_HOST", "APP_PORT", "UVICORN_WORKERS", "UVICORN_RELOAD", "EXTRA_UVICORN_ARGS",
	"POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD_FILE",
	"REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD_FILE", "CHROMADB_HOST", "CHROMADB_PORT"}

func readApp(r *reader, c *Config) {
	a := &c.App
	a.Replicas = r.integer("appReplicas", 1, "Number of application instances; above 1, nginx balances them and publishes the app's port, and image changes roll without downtime.")
	if a.Replicas < 1 || a.Replicas > 100 {
		r.fail("appReplicas", "%d is out of range; run 1 to 100 instances", a.Replicas)
	}
	a.Module = r.str("appModule", "maricusco.api.app:app", "APP_MODULE: the ASGI application Uvicorn serves.")
	if !modulePattern.MatchString(a.Module) {
		r.fail("appModule", "%q is not module:attribute (e.g. maricusco.api.app:app)", a.Module)
	}
	a.Host = r.str("appHost", "0.0.0.0", "APP_HOST: the address Uvicorn listens on inside the container.")
	if net.ParseIP(a.Host) == nil {
		r.fail("appHost", "%q is not an IP address; use 0.0.0.0 to listen on the network", a.Host)
	}
	a.Port = r.integer("appPort", 8000, "APP_PORT: the port Uvicorn listens on inside the container.")
	if a.Port < 1 || a.Port > 65535 {
		r.fail("appPort", "%d is out of range; use 1 to 65535", a.Port)
	}
	a.Workers = r.integer("appUvicornWorkers", 1, "UVICORN_WORKERS: worker processes per instance.")
	if a.Workers < 1 || a.Workers > 64 {
		r.fail("appUvicornWorkers", "%d is out of range; use 1 to 64 workers", a.Workers)
	}
	a.Reload = r.boolean("appUvicornReload", false, "UVICORN_RELOAD: reload on code change (development only).")
	if a.Reload && c.Environment == "prod" {
		r.fail("appUvicornReload", "true is for development; prod must run with false")
	}
	a.ExtraArgs = r.str("appExtraUvicornArgs", "--log-level info", "EXTRA_UVICORN_ARGS: further Uvicorn arguments.")
	r.object("appEnv", "Extra plain environment variables of the application, NAME: value.", &a.Env, false)
	r.object("appSecretEnv", "Extra secret environment variables of the application; set each with `pulumi config set --secret --path 'appSecretEnv.NAME' value`.", &a.SecretEnv, true)
	for _, group := range []struct {
		key string
		env map[string]string
	}{{"appEnv", a.Env}, {"appSecretEnv", a.SecretEnv}} {
		for _, name := range slices.Sorted(maps.Keys(group.env)) {
			if !envNamePattern.MatchString(name) {
				r.fail(group.key+"."+name, "is not an environment variable name; use letters, digits and '_'")
			}
			for _, m := range managedAppEnv {
				if name == m {
					r.fail(group.key+"."+name, "is set by the program; use its own config key instead")
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a.Env)) {
		if _, dup := a.SecretEnv[name]; dup {
			r.fail("appSecretEnv."+name, "is also in appEnv; keep each variable in one of them")
		}
	}
}
