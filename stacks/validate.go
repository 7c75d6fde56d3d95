package stacks

import (
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/prometheus/common/model"

	"github.com/maricusco/infra/components"
)

var (
	prefixPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	identPattern    = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	envNamePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	modulePattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$`)
	passwordPattern = regexp.MustCompile(`^[ -~]{12,}$`)
)

// minBackupInterval keeps a dump of a large database from starting before the last one ends.
const minBackupInterval = 15 * time.Minute

// The WAL archive's age limit: several checks long at least, and short enough to mean something.
const (
	minWALMaxAge = 30 * time.Second
	maxWALMaxAge = 24 * time.Hour
)

// The slot's retention limit: four WAL segments at least, since less would alarm on ordinary
// checkpoints, and at most a terabyte, beyond which the database's disk is the limit anyway.
const (
	minWALRetained components.UnitBytes = 64 << 20
	maxWALRetained components.UnitBytes = 1 << 40
)

// minMemory is the smallest memory limit Docker accepts.
const minMemory = 6 * 1024 * 1024

// managedAppEnv are the variables the program sets itself; appEnv may not override them.
var managedAppEnv = []string{"APP_MODULE", "APP_HOST", "APP_PORT", "UVICORN_WORKERS", "UVICORN_RELOAD", "EXTRA_UVICORN_ARGS",
	"POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD_FILE",
	"REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD_FILE", "CHROMADB_HOST", "CHROMADB_PORT"}

// validate checks the rules a declared config must meet, each problem naming its key and the fix.
func validate(r *reader, c *Config, stack string) {
	if c.Environment != "dev" && c.Environment != "prod" {
		r.fail("environment", "%q is not an environment; set dev or prod (the stack is named %q)", c.Environment, stack)
	}
	target, problems := components.NewTarget(c.Orchestrator, c.TargetOptions)
	r.add(problems)
	c.Target = target
	if c.DockerHost != "" {
		if u, err := url.Parse(c.DockerHost); err != nil || (u.Scheme != "unix" && u.Scheme != "tcp" && u.Scheme != "ssh" && u.Scheme != "npipe") {
			r.fail("dockerHost", "%q is not a Docker host; write unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host", c.DockerHost)
		}
	}
	if c.EngineAPIVersion != "" && !components.ValidAPIVersion(c.EngineAPIVersion) {
		r.fail("dockerApiVersion", "%q is not an API version; write it as `docker version` shows it (e.g. 1.41), or leave it empty to ask the engine", c.EngineAPIVersion)
	}
	if !prefixPattern.MatchString(c.Prefix) {
		r.fail("namePrefix", "%q is not a valid prefix; use lower-case letters, digits, '-' and '_', starting with a letter or digit", c.Prefix)
	}
	switch c.Restart {
	case "no", "always", "unless-stopped", "on-failure":
	default:
		r.fail("restartPolicy", "%q is not a restart policy; use no, always, unless-stopped or on-failure", c.Restart)
	}
	validateHealth(r, c.Health)
	if _, err := components.ParseUnitBytes(c.Logging.MaxSize); err != nil {
		r.fail("logMaxSize", "%v", err)
	}
	if c.Logging.MaxFile < 1 {
		r.fail("logMaxFile", "%d is too small; keep at least 1 file", c.Logging.MaxFile)
	}
	for _, s := range c.registry {
		validateService(r, s, c.Services[s.Name])
	}
	validatePorts(r, c)
	validateApp(r, c)
	for key, v := range map[string]string{"postgresDb": c.Postgres.Database, "postgresUser": c.Postgres.User} {
		if !identPattern.MatchString(v) {
			r.fail(key, "%q is not a plain identifier; use lower-case letters, digits and '_'", v)
		}
	}
	if strings.TrimSpace(c.Grafana.AdminUser) == "" {
		r.fail("grafanaAdminUser", "must not be empty")
	}
	for _, key := range slices.Sorted(maps.Keys(c.Secrets)) {
		if !passwordPattern.MatchString(c.Secrets[key]) {
			r.fail(key, "the secret is too weak; use at least 12 printable ASCII characters (the value is not shown)")
		}
	}
	validateMonitoring(r, c.Monitoring)
	validateBackup(r, c.Backup)
	if c.Target != nil {
		r.add(c.Target.Check(c.plan()))
	}
	checkGuardrails(r, c)
}

// validateBackup checks the backup schedule and the WAL archive's limits.
func validateBackup(r *reader, b BackupConfig) {
	if _, err := time.ParseDuration(b.Interval); err == nil && b.Every < minBackupInterval {
		r.fail("backup.interval", "%s is too often; back up at most every %s", b.Interval, minBackupInterval)
	}
	if b.Keep < 1 {
		r.fail("backup.keep", "%d keeps no backup; keep at least 1", b.Keep)
	}
	if _, err := time.ParseDuration(b.WALMaxAge); err == nil && (b.MaxAge < minWALMaxAge || b.MaxAge > maxWALMaxAge) {
		r.fail("backup.walMaxAge", "%s is out of range; use %s to %s (the archive is checked every %s)", b.WALMaxAge, minWALMaxAge, maxWALMaxAge, components.BackupCheckEvery)
	}
	if b.WALRetainedLimit < minWALRetained || b.WALRetainedLimit > maxWALRetained || !b.WALRetainedLimit.WholeMiB() {
		r.fail("backup.walRetainedLimit", "%s is out of range; use a whole number of megabytes from %s to %s (a WAL segment is 16M)", b.WALRetainedLimit, minWALRetained, maxWALRetained)
	}
}

func validateHealth(r *reader, h components.HealthTiming) {
	for key, d := range map[string]time.Duration{"healthcheckInterval": h.Interval, "healthcheckTimeout": h.Timeout,
		"healthcheckStartPeriod": h.StartPeriod, "healthcheckStartInterval": h.StartInterval, "healthyTimeout": h.WaitTimeout} {
		if d <= 0 && !r.has(key) {
			r.fail(key, "%q is not a positive duration; write e.g. 30s, 2s or 1m30s", d.String())
		}
	}
	if h.Timeout >= h.Interval && h.Interval > 0 {
		r.fail("healthcheckTimeout", "%s must be shorter than healthcheckInterval (%s)", h.Timeout, h.Interval)
	}
	if h.StartInterval > h.StartPeriod && h.StartPeriod > 0 {
		r.fail("healthcheckStartInterval", "%s must not be longer than healthcheckStartPeriod (%s)", h.StartInterval, h.StartPeriod)
	}
	if h.Retries < 1 {
		r.fail("healthcheckRetries", "%d is too small; use 1 or more", h.Retries)
	}
	if h.WaitTimeout > 0 && h.WaitTimeout < h.StartInterval {
		r.fail("healthyTimeout", "%s is shorter than one start-phase healthcheck; use at least healthcheckStartInterval", h.WaitTimeout)
	}
}

// validateService checks one service's record: an image Docker can pull, and limits Docker takes.
func validateService(r *reader, row Service, s *ServiceConfig) {
	name := row.Name
	if row.ImageOf == "" {
		if _, err := reference.ParseNormalizedNamed(s.Image); err != nil {
			r.fail(name+"Image", "%q is not an image reference (%v); write name:tag or name@sha256:digest", s.Image, err)
		}
	}
	res, key := s.Resources, "resources."+name
	if res.MemoryLimit == 0 || res.MemoryReservation == 0 || res.CPULimit == 0 || res.CPUReservation == 0 {
		return // a value that did not parse is already reported
	}
	for field, size := range map[string]components.UnitBytes{"limits.memory": res.MemoryLimit, "reservations.memory": res.MemoryReservation} {
		if !size.WholeMiB() {
			r.fail(key+"."+field, "%s is not a whole number of megabytes; Docker's provider takes MiB", size)
		}
	}
	if res.MemoryLimit < minMemory {
		r.fail(key+".limits.memory", "%q is below Docker's minimum of 6M", res.MemoryLimit.String())
	}
	if res.CPUReservation > res.CPULimit {
		r.fail(key+".reservations.cpus", "%s is above the limit %s; a reservation must not exceed its limit", res.CPUReservation, res.CPULimit)
	}
	if res.MemoryReservation > res.MemoryLimit {
		r.fail(key+".reservations.memory", "%s is above the limit %s; a reservation must not exceed its limit", res.MemoryReservation, res.MemoryLimit)
	}
}

// validatePorts refuses two services on one host port, however each address is written.
func validatePorts(r *reader, c *Config) {
	type binding struct {
		service string
		hp      *components.HostPort
	}
	var bound []binding
	for _, s := range c.registry {
		hp := c.Services[s.Name].Publish
		if hp == nil {
			continue
		}
		for _, b := range bound {
			if b.hp.Port == hp.Port && sameAddresses(b.hp.IP, hp.IP) {
				r.fail("ports."+s.Name, "host port %d is already taken by %s; give each service its own host port", hp.Port, b.service)
			}
		}
		bound = append(bound, binding{s.Name, hp})
	}
}

// sameAddresses tells whether two bindings share an address: the same one, or every address
// (0.0.0.0 or ::) on either side.
func sameAddresses(a, b string) bool {
	ipA, ipB := net.ParseIP(a), net.ParseIP(b)
	return ipA.Equal(ipB) || ipA.IsUnspecified() || ipB.IsUnspecified()
}

func validateApp(r *reader, c *Config) {
	a := &c.App
	if a.Replicas < 1 || a.Replicas > 100 {
		r.fail("appReplicas", "%d is out of range; run 1 to 100 instances", a.Replicas)
	}
	if !modulePattern.MatchString(a.Module) {
		r.fail("appModule", "%q is not module:attribute (e.g. maricusco.api.app:app)", a.Module)
	}
	if net.ParseIP(a.Host) == nil {
		r.fail("appHost", "%q is not an IP address; use 0.0.0.0 to listen on the network", a.Host)
	}
	if a.Port < 1 || a.Port > 65535 {
		r.fail("appPort", "%d is out of range; use 1 to 65535", a.Port)
	}
	if a.Workers < 1 || a.Workers > 64 {
		r.fail("appUvicornWorkers", "%d is out of range; use 1 to 64 workers", a.Workers)
	}
	if a.Reload && c.Environment == "prod" {
		r.fail("appUvicornReload", "true is for development; prod must run with false")
	}
	for _, group := range []struct {
		key string
		env map[string]string
	}{{"appEnv", a.Env}, {"appSecretEnv", a.SecretEnv}} {
		for _, name := range slices.Sorted(maps.Keys(group.env)) {
			if !envNamePattern.MatchString(name) {
				r.fail(group.key+"."+name, "is not an environment variable name; use letters, digits and '_'")
			}
			if slices.Contains(managedAppEnv, name) {
				r.fail(group.key+"."+name, "is set by the program; use its own config key instead")
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a.Env)) {
		if _, dup := a.SecretEnv[name]; dup {
			r.fail("appSecretEnv."+name, "is also in appEnv; keep each variable in one of them")
		}
	}
}

func validateMonitoring(r *reader, m MonitoringConfig) {
	if v := m.AlertErrorRatio; !(v > 0 && v < 1) && !r.has("alertErrorRatio") {
		r.fail("alertErrorRatio", "%q is not a ratio; write a number between 0 and 1, e.g. 0.05", m.AlertErrorRatioText)
	}
	scrape, err := model.ParseDuration(m.ScrapeInterval)
	if err != nil || scrape <= 0 {
		r.fail("prometheusScrapeInterval", "%q is not a positive Prometheus duration; write e.g. 15s or 1m", m.ScrapeInterval)
	}
	retention, err := model.ParseDuration(m.Retention)
	if err != nil || retention <= 0 {
		r.fail("prometheusRetention", "%q is not a positive Prometheus duration; write e.g. 15d or 12h", m.Retention)
	} else if scrape > 0 && time.Duration(retention) < time.Duration(scrape) {
		r.fail("prometheusRetention", "%q is shorter than one scrape interval (%s)", m.Retention, m.ScrapeInterval)
	}
}
