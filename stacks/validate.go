package stacks

import (
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/distribution/reference"

	"github.com/maricusco/infra/components"
)

var (
	envNamePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	modulePattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$`)
	passwordPattern = regexp.MustCompile(`^[ -~]{12,}$`)
)

// The memory limits a container can take: Docker's smallest, and more than any host has.
const (
	minMemory                      = 6 * 1024 * 1024
	maxMemory components.UnitBytes = 4 << 40
)

// The CPU limits a container can take: Docker's smallest, and more than any host has.
var (
	minCPUs components.NanoCPUs = 1e7
	maxCPUs components.NanoCPUs = 1024e9
)

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
	validateHostAndNames(r, c)
	switch c.Restart {
	case "no", "always", "unless-stopped", "on-failure":
	default:
		r.fail("restartPolicy", "%q is not a restart policy; use no, always, unless-stopped or on-failure", c.Restart)
	}
	validateHealth(r, c.Health)
	validateLogging(r, c.Logging)
	for _, s := range c.registry {
		validateService(r, s, c.Services[s.Name])
	}
	validatePorts(r, c)
	validateEdge(r, c.Edge, stack)
	validateApp(r, c)
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
	if res.MemoryLimit > maxMemory {
		r.fail(key+".limits.memory", "%s is out of range; use 6M to %s", res.MemoryLimit, maxMemory)
	}
	if res.CPULimit < minCPUs || res.CPULimit > maxCPUs {
		r.fail(key+".limits.cpus", "%s is out of range; use %s to %s CPUs", res.CPULimit, minCPUs, maxCPUs)
	}
	if res.CPUReservation > res.CPULimit {
		r.fail(key+".reservations.cpus", "%s is above the limit %s; a reservation must not exceed its limit", res.CPUReservation, res.CPULimit)
	}
	if res.MemoryReservation > res.MemoryLimit {
		r.fail(key+".reservations.memory", "%s is above the limit %s; a reservation must not exceed its limit", res.MemoryReservation, res.MemoryLimit)
	}
}

// validatePorts refuses two services (or the edge's redirect) on one host port, however each
// address is written, and a redirect a swarm cannot publish.
func validatePorts(r *reader, c *Config) {
	type binding struct {
		key, owner string
		hp         *components.HostPort
	}
	var bindings []binding
	for _, edge := range []struct {
		key, owner string
		hp         *components.HostPort
	}{{"edge.https", "the edge", c.Edge.Serve}, {"edge.http", "the edge's redirect", c.Edge.Redirect}} {
		hp := edge.hp
		if hp == nil {
			continue
		}
		bindings = append(bindings, binding{edge.key, edge.owner, hp})
		if c.Target != nil && c.Target.Replicates() && (c.TargetOptions.SwarmEndpointMode == components.EndpointDNSRR || !net.ParseIP(hp.IP).IsUnspecified()) {
			r.fail(edge.key, "%s:%d cannot be published under swarm: the routing mesh publishes on 0.0.0.0 of every node, and dnsrr publishes nothing; publish it on 0.0.0.0, or none (empty value)", hp.IP, hp.Port)
		}
	}
	for _, s := range c.registry {
		if hp := c.Services[s.Name].Publish; hp != nil {
			bindings = append(bindings, binding{"ports." + s.Name, s.Name, hp})
		}
	}
	for i, b := range bindings {
		for _, before := range bindings[:i] {
			if before.hp.Port == b.hp.Port && sameAddresses(before.hp.IP, b.hp.IP) {
				r.fail(b.key, "host port %d is already taken by %s; give each its own host port", b.hp.Port, before.owner)
			}
		}
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
	if !argsPattern.MatchString(a.ExtraArgs) {
		r.fail("appExtraUvicornArgs", "may hold only letters, digits, spaces and ._=:/,+@- (the image's shell reads it); write e.g. --log-level info")
	}
	for _, name := range slices.Sorted(maps.Keys(a.Env)) {
		if strings.ContainsFunc(a.Env[name], unicode.IsControl) {
			r.fail("appEnv."+name, "holds a control character (a newline?); write the value on one line")
		}
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
			if why := forbiddenEnv(name); why != "" {
				r.fail(group.key+"."+name, "%s", why)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a.Env)) {
		if _, dup := a.SecretEnv[name]; dup {
			r.fail("appSecretEnv."+name, "is also in appEnv; keep each variable in one of them")
		}
	}
}
