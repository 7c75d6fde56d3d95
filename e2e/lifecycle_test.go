package e2e

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rolledAppImage is an app image whose ID differs from the stacks' own, for image rolls.
const rolledAppImage = "maricusco:1.0.1-e2e"

// hostEngine is the machine's own Docker engine, for a test of its lane (exclusive).
func hostEngine(t *testing.T) engine {
	t.Helper()
	exclusive(t, "host")
	return machineEngine(t)
}

// machineEngine is the machine's own Docker engine, whatever lane asks.
func machineEngine(t *testing.T) engine {
	t.Helper()
	e, err := describe(envOr("DOCKER_HOST", "unix:///var/run/docker.sock"))
	require.NoError(t, err)
	return e
}

// devContainers are the dev stack's containers: the seed's six (the app as one instance behind
// nginx) and the backup service.
var devContainers = []string{"maricusco-app-1", "maricusco-backup", "maricusco-chromadb", "maricusco-grafana", "maricusco-lb", "maricusco-postgres", "maricusco-prometheus", "maricusco-redis"}

// TestDevLifecycle drives the dev stack through a user's life with it, on the host engine.
func TestDevLifecycle(t *testing.T) {
	requireRealEngine(t)
	const stack = "dev"
	e := hostEngine(t)
	p := forStack(t, e, stack)
	explainEdgeOnFailure(t, p)

	// The shipped 30 s interval makes each wait for health a 30 s step on an engine without a
	// start interval, and this test waits often; prod's lifecycle and TestDocker26 run the shipped
	// timing. A label on the figures says so.
	p.testStackHealth(t, stack)
	engineName := e.name + ", healthchecks every 5 s"
	t.Run("the move from compose keeps the data: compose down, then up from nothing to all healthy", func(t *testing.T) {
		composeDeploymentWithData(t, p)
		// docs/configuration.md's steps: stop the compose deployment, keeping its volumes, then deploy.
		compose(t, p.engine, "down")
		took := p.up(t, stack)
		require.Equal(t, devContainers, p.containers(t, stack))
		p.waitHealthy(t, devContainers, 10*time.Second)
		figure(t, engineName, "dev `up` from nothing to all healthy (s)", took.Seconds())
		assert.Equal(t, "from compose", p.psql(t, "maricusco-postgres", "SELECT note FROM e2e_rows ORDER BY id LIMIT 1"))
		// compose made the app's role the cluster's superuser; the first up migrates it.
		assert.Equal(t, "postgres", p.psql(t, "maricusco-postgres", "SELECT rolname FROM pg_roles WHERE oid = 10"), "the superuser is postgres")
		assert.Equal(t, "f|maricusco", p.psql(t, "maricusco-postgres",
			"SELECT r.rolsuper, c.relowner::regrole FROM pg_roles r, pg_class c WHERE r.rolname = 'maricusco' AND c.relname = 'e2e_rows'"),
			"the app owns its data and is no superuser")
	})

	t.Run("Grafana and nginx cannot reach the data services", func(t *testing.T) {
		p.assertNetworksSplit(t)
	})

	t.Run("the edge serves the app and Grafana over TLS 1.2+ with the stack's certificate, and plain HTTP redirects", func(t *testing.T) {
		p.assertEdge(t, "https://localhost:8443", "http://127.0.0.1:8080", false)
	})

	t.Run("a second preview changes nothing, and again after refresh", func(t *testing.T) {
		assert.Empty(t, p.changes(t, stack))
		p.must(t, stack, "refresh", "--yes", "--skip-preview")
		changes := p.changes(t, stack)
		assert.Empty(t, changes)
		figure(t, engineName, "dev changes in the preview after `up` and after `refresh`", len(changes))
	})

	t.Run("a limit beyond the engine's host is refused, naming the key, and nothing changes", func(t *testing.T) {
		cpus, err := strconv.Atoi(strings.TrimSpace(p.engine.mustDocker(t, "info", "--format", "{{.NCPU}}")))
		require.NoError(t, err)
		stackFile := filepath.Join(p.dir, "Pulumi."+stack+".yaml")
		before, err := os.ReadFile(stackFile)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, os.WriteFile(stackFile, before, 0o644)) })
		p.config(t, stack, "set", "--path", "resources.app.limits.cpus", strconv.Itoa(cpus+1))
		out, err := p.run(stack, "preview")
		require.Error(t, err, "preview must be refused:\n%s", tail(out, 30))
		assert.Contains(t, out, fmt.Sprintf("maricusco:resources.app.limits.cpus: %d.00 CPUs is more than the engine's host has (%d.00 CPUs", cpus+1, cpus))
		require.NoError(t, os.WriteFile(stackFile, before, 0o644))
		assert.Empty(t, p.changes(t, stack), "the refused preview changed nothing")
	})

	// nginx holds the port for one instance as for three: scaling adds or removes instances behind
	// it and never replaces it, so no request fails.
	edge := e.mustDocker(t, "inspect", "--format", "{{.Id}}", "maricusco-lb")
	t.Run("scaling 1 to 3 converges in one up with no failed request", func(t *testing.T) {
		r := p.upUnderLoad(t, stack, "appReplicas", "3")
		want := []string{"maricusco-app-1", "maricusco-app-2", "maricusco-app-3", "maricusco-lb"}
		assert.Subset(t, p.containers(t, stack), want)
		p.waitHealthy(t, want, 10*time.Second)
		figure(t, engineName, "dev replicas 1 → 3 (s)", r.took.Seconds())
		figure(t, engineName, "dev replicas 1 → 3: failed requests", r.failures())
		assert.Zero(t, r.failed, "first failure: %v", r.firstErr)
		assert.Positive(t, r.sent)
		assert.Equal(t, edge, e.mustDocker(t, "inspect", "--format", "{{.Id}}", "maricusco-lb"), "the same nginx holds the port")
		assert.Empty(t, p.changes(t, stack), "scaled, the stack is at rest")
	})

	t.Run("a new app image rolls across 3 instances with no failed request", func(t *testing.T) {
		r := p.upUnderLoad(t, stack, "appImage", rolledAppImage)
		figure(t, engineName, "dev image roll, 3 instances (s)", r.took.Seconds())
		figure(t, engineName, "dev image roll, 3 instances: failed requests", r.failures())
		assert.Zero(t, r.failed, "first failure: %v", r.firstErr)
		assert.Positive(t, r.sent)
		rolled := p.engine.mustDocker(t, "image", "inspect", "--format", "{{.Id}}", rolledAppImage)
		for _, c := range []string{"maricusco-app-1", "maricusco-app-2", "maricusco-app-3"} {
			assert.Equal(t, rolled, p.engine.mustDocker(t, "inspect", "--format", "{{.Image}}", c), c)
		}
	})

	t.Run("scaling 3 to 1 converges in one up with no failed request", func(t *testing.T) {
		r := p.upUnderLoad(t, stack, "appReplicas", "1")
		assert.Equal(t, devContainers, p.containers(t, stack))
		// A minute, not seconds: with every lane deploying beside it, the backup container's own
		// checks (4 s each) ran out of time and its archive watch lagged 37 s (seen in CI), then caught up.
		p.waitHealthy(t, devContainers, time.Minute)
		figure(t, engineName, "dev replicas 3 → 1 (s)", r.took.Seconds())
		figure(t, engineName, "dev replicas 3 → 1: failed requests", r.failures())
		assert.Zero(t, r.failed, "first failure: %v", r.firstErr)
		assert.Positive(t, r.sent)
		assert.Equal(t, edge, e.mustDocker(t, "inspect", "--format", "{{.Id}}", "maricusco-lb"), "the same nginx holds the port")
		assert.Empty(t, p.changes(t, stack))
	})

	t.Run("a container removed by hand shows in the drift check and the preview, and comes back with a plain up", func(t *testing.T) {
		// The drift check CI runs nightly (.github/workflows/drift.yml) finds none on a stack at rest...
		out, err := p.script("scripts/drift.sh", stack)
		require.NoError(t, err, "no drift at rest:\n%s", tail(out, 30))
		e.mustDocker(t, "rm", "-f", "maricusco-grafana")
		// ...and reports drift (exit status 1, not the 2 of a failed check), naming the resource.
		out, err = p.script("scripts/drift.sh", stack)
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "the drift check must fail on drift:\n%s", tail(out, 30))
		assert.Equal(t, 1, exit.ExitCode(), out)
		assert.Contains(t, out, "grafana-container")
		// deploy.sh's preview and up read the engine first (--refresh).
		changes := p.changes(t, stack)
		require.Len(t, changes, 1, "%v", changes)
		assert.Contains(t, changes[0], "grafana-container")
		p.up(t, stack)
		p.waitHealthy(t, []string{"maricusco-grafana"}, 10*time.Second)
		assert.Empty(t, p.changes(t, stack))
	})

	t.Run("a crashed container is brought back by its restart policy", func(t *testing.T) {
		// A crash, as an OOM kill or a fault ends a process: SIGKILL from outside. `docker kill`
		// would not do: Docker counts it as a manual stop, which unless-stopped does not restart.
		pid := e.mustDocker(t, "inspect", "--format", "{{.State.Pid}}", "maricusco-redis")
		out, err := exec.Command("kill", "-KILL", pid).CombinedOutput()
		require.NoError(t, err, string(out))
		deadline := time.Now().Add(2 * time.Minute)
		for {
			state := e.mustDocker(t, "inspect", "--format", "{{.State.Running}} {{.RestartCount}}", "maricusco-redis")
			if state != "true 0" && strings.HasPrefix(state, "true") {
				break
			}
			require.True(t, time.Now().Before(deadline), "redis not restarted: %s", state)
			time.Sleep(time.Second)
		}
		p.waitHealthy(t, []string{"maricusco-redis"}, time.Minute)
		assert.Empty(t, p.changes(t, stack, "--refresh"), "a restart is no drift")
	})

	t.Run("a row survives a postgres replacement", func(t *testing.T) {
		p.psql(t, "maricusco-postgres", "INSERT INTO e2e_rows (note) VALUES ('before replace')")
		took := p.up(t, stack, "--replace", p.urn(t, stack, "postgres-container"))
		figure(t, engineName, "dev postgres replacement (s)", took.Seconds())
		p.waitHealthy(t, []string{"maricusco-postgres"}, 10*time.Second)
		assert.Equal(t, "1", p.psql(t, "maricusco-postgres", "SELECT count(*) FROM e2e_rows WHERE note = 'before replace'"))
	})

	t.Run("a rotated postgresPassword logs in over TCP and the old one is refused", func(t *testing.T) {
		old, err := url.Parse(p.outputs(t, stack)["postgresConnectionString"].(string))
		require.NoError(t, err)
		oldPassword, _ := old.User.Password()
		const rotated = "rotated-by-the-e2e-suite-1"
		p.config(t, stack, "set", "--secret", "postgresPassword", rotated)
		took := p.up(t, stack)
		figure(t, engineName, "dev postgresPassword rotation (s)", took.Seconds())
		p.waitHealthy(t, devContainers, time.Minute) // as after scaling to 1: the backup's checks lag under load
		login := func(password string) error {
			cmd := exec.Command("psql", "-h", "127.0.0.1", "-p", "5432", "-U", "maricusco", "-d", "maricusco", "-tAc", "SELECT 1")
			cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=5")
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("%w: %s", err, out)
			}
			return nil
		}
		assert.NoError(t, login(rotated), "the new password logs in")
		assert.Error(t, login(oldPassword), "the old password is refused")
	})

	backups := func(t *testing.T) []string {
		t.Helper()
		out := e.mustDocker(t, "exec", "maricusco-backup", "sh", "-c", "ls -1 /backups/maricusco-*.dump 2>/dev/null || true")
		return strings.Fields(out)
	}

	t.Run("an on-demand backup reads back and the backup service is healthy", func(t *testing.T) {
		p.config(t, stack, "set", "--path", "backup.interval", "15m")
		p.config(t, stack, "set", "--path", "backup.keep", "2")
		p.up(t, stack)
		p.waitHealthy(t, []string{"maricusco-backup"}, time.Minute)
		start := time.Now()
		p.must(t, stack, "backup")
		figure(t, engineName, "dev on-demand backup (s)", time.Since(start).Round(100*time.Millisecond).Seconds())
		dumps := backups(t)
		require.NotEmpty(t, dumps)
		newest := dumps[len(dumps)-1]
		e.mustDocker(t, "exec", "maricusco-backup", "pg_restore", "--list", newest)
		figure(t, engineName, "dev dump size of the test data (bytes)", e.mustDocker(t, "exec", "maricusco-backup", "stat", "-c", "%s", newest))
		p.waitHealthy(t, []string{"maricusco-backup"}, 10*time.Second)
	})

	t.Run("the restore drill: back up, drop the table, restore, and the rows are back", func(t *testing.T) {
		rows := p.psql(t, "maricusco-postgres", "SELECT count(*) FROM e2e_rows")
		p.must(t, stack, "backup")
		p.psql(t, "maricusco-postgres", "DROP TABLE e2e_rows")
		dumps := p.restorePoints(t, stack, "dump")
		start := time.Now()
		p.must(t, stack, "restore", "--yes", dumps[len(dumps)-1])
		figure(t, engineName, "dev restore of the newest dump (s)", time.Since(start).Round(100*time.Millisecond).Seconds())
		assert.Equal(t, rows, p.psql(t, "maricusco-postgres", "SELECT count(*) FROM e2e_rows"))
		out, err := p.run(stack, "restore", dumps[len(dumps)-1])
		assert.Error(t, err, "without --yes and without a terminal, restore asks for a confirmation it cannot get")
		assert.Contains(t, out, "--yes")
	})

	t.Run("backup.keep 2: after three backups the two newest remain", func(t *testing.T) {
		var taken []string
		for i := 0; i < 3; i++ {
			p.must(t, stack, "backup")
			all := backups(t)
			taken = append(taken, all[len(all)-1])
		}
		assert.Equal(t, taken[1:], backups(t))
	})

	t.Run("a corrupt newest dump fails the next backup loudly and the older good dumps stay", func(t *testing.T) {
		before := backups(t)
		require.Len(t, before, 2)
		e.mustDocker(t, "exec", "maricusco-backup", "sh", "-c", "head -c 100 "+before[1]+" > /tmp/cut && cat /tmp/cut > "+before[1])
		out, err := p.run(stack, "backup")
		require.Error(t, err, "the backup must fail:\n%s", out)
		assert.Contains(t, out, "FAILED verification: "+before[1])
		after := backups(t)
		assert.Contains(t, after, before[0], "the older good dump stays")
		assert.NotContains(t, after, before[1])
		assert.Len(t, after, 2, "the older good dump and the new one")
	})

	t.Run("destroy leaves no container and keeps the volumes, and up brings the rows back", func(t *testing.T) {
		p.must(t, stack, "destroy", "--yes", "--skip-preview")
		assert.Empty(t, p.containers(t, stack))
		p.assertVolumesKept(t, "after the destroy")
		took := p.up(t, stack)
		figure(t, engineName, "dev `up` onto kept volumes (s)", took.Seconds())
		assert.Equal(t, "2", p.psql(t, "maricusco-postgres", "SELECT count(*) FROM e2e_rows"))
	})

	t.Run("the restore drill onto a new database: destroy, delete the postgres volume, up, restore", func(t *testing.T) {
		kept := backups(t)
		p.must(t, stack, "destroy", "--yes", "--skip-preview")
		e.mustDocker(t, "volume", "rm", "maricusco_postgres_data")
		p.up(t, stack)
		assert.Equal(t, "0", p.psql(t, "maricusco-postgres", "SELECT count(*) FROM pg_tables WHERE tablename = 'e2e_rows'"), "a new, empty database")
		assert.Equal(t, kept, backups(t), "the restarted service did not dump the empty database over the good dumps")
		p.must(t, stack, "restore", "--yes", filepath.Base(kept[len(kept)-1]))
		assert.Equal(t, "2", p.psql(t, "maricusco-postgres", "SELECT count(*) FROM e2e_rows"))
	})
}

// composeFile is a compose deployment as the seed runs it: project maricusco, its network and
// the five volumes, with PostgreSQL holding data.
func composeFile(t *testing.T) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("testdata", "docker-compose.yml"))
	require.NoError(t, err)
	return path
}

// compose runs docker-compose on the compose deployment, on the engine.
func compose(t *testing.T, e engine, args ...string) {
	t.Helper()
	cmd := exec.Command("docker-compose", append([]string{"-p", "maricusco", "-f", composeFile(t)}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "docker-compose %s:\n%s", strings.Join(args, " "), out)
}

// composeDeploymentWithData runs the compose deployment and writes a row into its database.
func composeDeploymentWithData(t *testing.T, p *project) {
	t.Helper()
	compose(t, p.engine, "up", "-d")
	container := "maricusco_postgres_1"
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := p.engine.docker("exec", container, "pg_isready", "-h", "127.0.0.1", "-U", "maricusco"); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the compose postgres never became ready")
		time.Sleep(time.Second)
	}
	p.psql(t, container, "CREATE TABLE e2e_rows (id serial PRIMARY KEY, note text); INSERT INTO e2e_rows (note) VALUES ('from compose')")
	net, err := p.engine.docker("network", "inspect", "--format", "{{.Name}}", "maricusco-network")
	require.NoError(t, err, "compose created the seed's network")
	require.Equal(t, "maricusco-network", net)
}
