package stacks

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/maricusco/infra/components"
)

// Text a stack sets reaches a shell, a config file, a Docker name or a PostgreSQL role: each kind
// is refused unless it is what the place it goes to takes as it is.

var (
	prefixPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	identPattern     = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	loginPattern     = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)
	argsPattern      = regexp.MustCompile(`^[A-Za-z0-9 ._=:/,+@-]*$`)
	hostnamePattern  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	sshUserPattern   = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)
	maxPrefix        = 32
	maxIdentifier    = 63 // PostgreSQL's NAMEDATALEN - 1
	reservedRoles    = []string{components.PostgresSuperuser, components.BackupRole, "maricusco_migrator"}
	reservedDatabase = []string{"template0", "template1"}
)

func validateHostAndNames(r *reader, c *Config) {
	if c.DockerHost != "" {
		if err := checkDockerHost(c.DockerHost); err != nil {
			r.fail("dockerHost", "%s is not a Docker host (%v); write unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host", redacted(c.DockerHost), err)
		}
	}
	if c.EngineAPIVersion != "" && !components.ValidAPIVersion(c.EngineAPIVersion) {
		r.fail("dockerApiVersion", "%q is not an API version; write it as `docker version` shows it (e.g. 1.41), or leave it empty to ask the engine", c.EngineAPIVersion)
	}
	if !prefixPattern.MatchString(c.Prefix) || len(c.Prefix) > maxPrefix {
		r.fail("namePrefix", "%q is not a valid prefix; use up to %d lower-case letters, digits, '-' and '_', starting with a letter or digit", c.Prefix, maxPrefix)
	}
	checkIdentifier(r, "postgresDb", c.Postgres.Database, reservedDatabase)
	checkIdentifier(r, "postgresUser", c.Postgres.User, reservedRoles)
	if !loginPattern.MatchString(c.Grafana.AdminUser) {
		r.fail("grafanaAdminUser", "%q is not a login; use 1 to 64 letters, digits and ._@-", c.Grafana.AdminUser)
	}
}

// checkIdentifier refuses what PostgreSQL would refuse or keep for itself as a role or database.
func checkIdentifier(r *reader, key, v string, reserved []string) {
	switch {
	case !identPattern.MatchString(v):
		r.fail(key, "%q is not a plain identifier; use lower-case letters, digits and '_'", v)
	case len(v) > maxIdentifier:
		r.fail(key, "%q is longer than PostgreSQL's %d bytes", v, maxIdentifier)
	case strings.HasPrefix(v, "pg_"):
		r.fail(key, "%q begins with pg_, which PostgreSQL keeps for itself; choose another name", v)
	case slices.Contains(reserved, v):
		r.fail(key, "%q is the program's own; choose another name", v)
	}
}

// checkDockerHost tells why host is not a Docker daemon address the docker CLI and provider take
// safely: a known scheme, a host name or address (never an option, which ssh would obey), a
// numeric port, and nothing else.
func checkDockerHost(host string) error {
	u, err := url.Parse(host)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("no query or fragment")
	}
	switch u.Scheme {
	case "unix", "npipe":
		if u.Host != "" && u.Scheme == "unix" || u.Path == "" {
			return fmt.Errorf("a socket path, after three slashes")
		}
		return nil
	case "tcp", "ssh":
	default:
		return fmt.Errorf("the scheme is unix, npipe, tcp or ssh")
	}
	name := u.Hostname()
	if net.ParseIP(name) == nil && !hostnamePattern.MatchString(name) {
		return fmt.Errorf("%q is not a host name or address", name)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is out of range", p)
		}
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return fmt.Errorf("no password: ssh uses its keys")
	}
	if u.User != nil && (u.Scheme != "ssh" || !sshUserPattern.MatchString(u.User.Username())) {
		return fmt.Errorf("a user is for ssh, and a login name")
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("no path")
	}
	return nil
}

// forbiddenEnv tells why the app's extra environment may not set name: the program sets it, it
// would point the app at a file the program does not deliver, or it changes what runs (the loader,
// Python's start-up).
func forbiddenEnv(name string) string {
	switch {
	case slices.Contains(managedAppEnv, name):
		return "is set by the program; use its own config key instead"
	case strings.HasSuffix(name, "_FILE") || strings.HasSuffix(name, "_PASSWORD"):
		return "names a credential, which the program delivers as a file; use appSecretEnv for a secret of the app's own"
	case strings.HasPrefix(name, "LD_") || strings.HasPrefix(name, "PYTHON") || name == "PATH" || name == "GCONV_PATH":
		return "changes what runs in the container (the loader, Python's start-up, the PATH); the image decides that"
	}
	return ""
}

// redacted is a Docker host as a message may show it: without a password it may hold.
func redacted(host string) string {
	u, err := url.Parse(host)
	if err != nil {
		return "the value"
	}
	return strconv.Quote(u.Redacted())
}
