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

// brokenAppImage is an app image that never becomes healthy, for the rollback step.
const brokenAppImage = "maricusco:broken-e2e"

// buildBrokenAppImage tags brokenAppImage on e: the app's stand-in, which never starts its server.
func buildBrokenAppImage(t *testing.T, e engine) {
	t.Helper()
	dockerfile := fmt.Sprintf("FROM %s\nENTRYPOINT [\"sleep\", \"infinity\"]\n", imageRefs(t)["app"][0])
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644))
	e.mustDocker(t, "build", "-q", "-t", brokenAppImage, dir)
}

// swarmServices are the services the swarm target runs: the seed's six and the backups, no nginx.
var swarmServices = []string{"maricusco-app", "maricusco-backup", "maricusco-chromadb", "maricusco-grafana", "maricusco-lb", "maricusco-postgres", "maricusco-prometheus", "maricusco-redis"}

// services are the names of the swarm services that carry the stack's label.
func (p *project) services(t *testing.T, stack string) []string {
	t.Helper()
	return p.labelled(t, stack, "{{.Name}}", "service", "ls")
}

// task is the container of the service's running task on this node.
func (p *project) task(t *testing.T, service string) string {
	t.Helper()
	out := p.engine.mustDocker(t, "ps", "--filter", "label=com.docker.swarm.service.name="+service, "--filter", "health=healthy", "--format", "{{.Names}}")
	names := strings.Fields(out)
	require.NotEmpty(t, names, "no healthy task of %s", service)
	return names[0]
}

// healthyTasks counts the service's tasks that should run and do: with a healthcheck, a swarm
// task is Running only once healthy. (An old task still stopping is not counted.)
func (p *project) healthyTasks(t *testing.T, service string) int {
	t.Helper()
	n := 0
	for _, running := range tasksByNode(t, p.engine, service) {
		n += running
	}
	return n
}

// serviceImage is the image a service's spec runs now.
func (p *project) serviceImage(t *testing.T, service string) string {
	t.Helper()
	return p.engine.mustDocker(t, "service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", service)
}

// networkLoad is a request loop inside a container on the stack's attachable edge network, for a
// swarm without a routing mesh: it asks a URL there (app:8000, as a proxy in front would, or the
// proxy itself) every 50 ms.
type networkLoad struct {
	e    engine
	name string
	t    *testing.T
	err  any
}

func startNetworkLoad(t *testing.T, e engine, image, url string) *networkLoad {
	t.Helper()
	const loop = `sent=0 failed=0 first=
while [ ! -e /tmp/stop ]; do
  sent=$((sent+1))
  code=$(curl -sk -m 10 -o /dev/null -w '%{http_code}' "$0")
  if [ "$code" != 200 ]; then failed=$((failed+1)); [ -n "$first" ] || first="status $code"; fi
  sleep 0.05
done
echo "$sent $failed $first" > /tmp/result
sleep infinity`
	l := &networkLoad{e: e, name: "e2e-request-loop", t: t}
	_, _ = e.docker("rm", "-f", l.name)
	e.mustDocker(t, "run", "-d", "--name", l.name, "--network", "maricusco-edge", "--entrypoint", "bash", image, "-c", loop, url)
	t.Cleanup(func() { _, _ = e.docker("rm", "-f", l.name) })
	return l
}

func (l *networkLoad) finish() (sent, failed int64) {
	l.e.mustDocker(l.t, "exec", l.name, "touch", "/tmp/stop")
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := l.e.docker("exec", l.name, "cat", "/tmp/result")
		if err == nil {
			// The last line is the loop's "sent failed [first failure]"; docker may warn before it.
			lines := strings.Split(out, "\n")
			fields := strings.SplitN(lines[len(lines)-1], " ", 3)
			require.GreaterOrEqual(l.t, len(fields), 2, "the request loop's result: %q", out)
			sent, err = strconv.ParseInt(fields[0], 10, 64)
			require.NoError(l.t, err, "the request loop's result: %q", out)
			failed, err = strconv.ParseInt(fields[1], 10, 64)
			require.NoError(l.t, err, "the request loop's result: %q", out)
			if len(fields) == 3 && strings.TrimSpace(fields[2]) != "" {
				l.err = fields[2]
			}
			_, _ = l.e.docker("rm", "-f", l.name)
			return sent, failed
		}
		require.True(l.t, time.Now().Before(deadline), "the request loop did not stop: %s", out)
		time.Sleep(500 * time.Millisecond)
	}
}

func (l *networkLoad) first() any { return l.err }

// hasIPVS tells whether this machine's kernel has IPVS, which a swarm's virtual IPs and routing
// mesh are built on. Without it a connection to a service's virtual IP hangs.
func hasIPVS() bool {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		return true
	}
	return exec.Command("modprobe", "ip_vs").Run() == nil
}

// swarmTestSettings are what both swarm tests deploy prod with, set in one `config set-all`: the
// test stacks' healthchecks (testStackHealth: a swarm task has no fast start phase, so each step
// would otherwise wait half a minute per task) with a 20 s start period, and a tenth of a CPU
// reserved per service: the seed reserves 1.85 CPUs for the stateful services and 0.5 per app
// replica, more than this machine's 2 CPUs, which the program refuses up front. A tenth each fits
// the tests' replicas and a rolling one; the limits stay the seed's.
func swarmTestSettings(t *testing.T, p *project, stack string) {
	t.Helper()
	more := []string{"--plaintext", "healthcheckStartPeriod=20s"}
	for _, svc := range swarmServices {
		more = append(more, "--plaintext", "resources."+strings.TrimPrefix(svc, "maricusco-")+".reservations.cpus=0.1")
	}
	p.testStackHealth(t, stack, more...)
}

// explainTasksOnFailure logs, when the test fails, each service's last update and its tasks with
// their errors, before the stack is removed: the swarm keeps why a task failed or a roll went back
// only while the service exists.
func explainTasksOnFailure(t *testing.T, p *project) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		e := p.engine // the manager the test ended on
		for _, s := range swarmServices {
			update, _ := e.docker("service", "inspect", "--format", "{{json .UpdateStatus}}", s)
			tasks, _ := e.docker("service", "ps", "--no-trunc", "--format", "{{.Name}} {{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}", s)
			t.Logf("%s: update %s\n%s", s, update, tasks)
		}
	})
}

// TestSwarmLifecycle deploys prod, moved to the swarm target, on a single-node swarm of the machine's
// dockerd, with swarmTestSettings.
func TestSwarmLifecycle(t *testing.T) {
	requireRealEngine(t)
	const stack = "prod"
	// The machine's engine (its dockerd, its version), as a node of its own in a namespace, on
	// addresses of its own: beside the lane of the machine's engine, which only gives it the
	// images, and beside the three-node swarm.
	exclusive(t, "single-node swarm")
	machine := machineEngine(t)
	buildImages(t, machine)
	dockerd, err := exec.LookPath("dockerd")
	require.NoError(t, err, "the machine's dockerd")
	e := newCluster(t, singleNodeNet, machine, dockerd, "swarm1").manager().engine
	p := projectFor(t, e, stack)
	explainTasksOnFailure(t, p)
	buildBrokenAppImage(t, e)
	mode := "vip"
	if !hasIPVS() {
		mode = "dnsrr"
		msg := "SWARM ROUTING MESH NOT EXERCISED: this kernel has no IPVS (ip_vs), so the swarm steps run with swarmEndpointMode dnsrr and send their requests from a container on the stack's network"
		fmt.Fprintln(os.Stderr, msg)
		t.Log(msg)
	}
	label := fmt.Sprintf("%s, swarm of 1 node, %s", e.name, mode)
	if mode == "dnsrr" {
		p.startRequests = func(t *testing.T) requests { return startNetworkLoad(t, e, imageRefs(t)["app"][0], "http://app:8000/") }
	}

	if !t.Run("the move from containers keeps the data, and up returns once every service has converged", func(t *testing.T) {
		swarmTestSettings(t, p, stack)
		// First the stack as containers on the engine, holding a row.
		p.up(t, stack)
		p.psql(t, "maricusco-postgres", "CREATE TABLE e2e_rows (id serial PRIMARY KEY, note text); INSERT INTO e2e_rows (note) VALUES ('from containers')")
		p.config(t, stack, "set", "orchestrator", "swarm")
		if mode == "dnsrr" {
			p.config(t, stack, "set", "swarmEndpointMode", "dnsrr")
			p.config(t, stack, "set", "--path", "edge.https", "")
			p.config(t, stack, "set", "--path", "edge.http", "")
		}
		took := p.up(t, stack)
		figure(t, label, "prod move from containers to services, `up` to converged (s)", took.Seconds())
		assert.Equal(t, "from containers", p.psql(t, p.task(t, "maricusco-postgres"), "SELECT note FROM e2e_rows"), "the services start on the volumes the containers left")
		require.Equal(t, swarmServices, p.services(t, stack))
		owners := e.mustDocker(t, "ps", "-a", "--filter", "label=maricusco.stack="+stack, "--format", `{{.Label "com.docker.swarm.service.name"}}`)
		assert.NotContains(t, "\n"+owners+"\n", "\n\n", "no plain container: every one is a service's task")
		for _, s := range swarmServices {
			want := 1
			if s == "maricusco-app" {
				want = 2
			}
			assert.Equal(t, want, p.healthyTasks(t, s), "%s has converged when up returns", s)
		}
		for _, n := range stackNetworks {
			// nginx at the edge serves TLS on the swarm too, to the app and to Grafana's sub-path.
			for _, path := range []string{"/health", "/grafana/api/health"} {
				code := e.mustDocker(t, "run", "--rm", "--network", "maricusco-edge", "--entrypoint", "curl", imageRefs(t)["app"][0],
					"-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://lb:8443"+path)
				assert.Equal(t, "200", code, "https://lb:8443%s from the edge network", path)
			}
			network := e.mustDocker(t, "network", "inspect", "--format", "{{.Driver}} {{.Attachable}} {{json .Options}}", n)
			assert.Regexp(t, `^overlay true \{.*"encrypted":"".*\}$`, network, "%s: an attachable overlay, encrypted by default", n)
		}
		limits := e.mustDocker(t, "service", "inspect", "--format", "{{json .Spec.TaskTemplate.Resources}}", "maricusco-postgres")
		assert.JSONEq(t, `{"Limits":{"NanoCPUs":2000000000,"MemoryBytes":2147483648},"Reservations":{"NanoCPUs":100000000,"MemoryBytes":536870912}}`, limits)
	}) {
		return // every later step needs the deployment
	}

	t.Run("a second preview changes nothing", func(t *testing.T) {
		changes := p.changes(t, stack)
		assert.Empty(t, changes)
		figure(t, label, "prod changes in the preview after `up`", len(changes))
	})

	t.Run("a live overlay is never asked to change its encryption", func(t *testing.T) {
		p.config(t, stack, "set", "swarmOverlayEncrypted", "false")
		out, err := p.run(stack, "preview")
		p.config(t, stack, "rm", "swarmOverlayEncrypted")
		require.Error(t, err, "the preview is refused:\n%s", tail(out, 10))
		assert.Contains(t, out, "maricusco:swarmOverlayEncrypted is false, but the overlay network maricusco-edge is encrypted")
		assert.Empty(t, p.changes(t, stack), "nothing moved")
	})

	t.Run("each secret file is its reader's alone", func(t *testing.T) {
		for _, tc := range []struct{ service, file, reader string }{
			{"maricusco-app", "/run/secrets/postgres_password", "1000"},
			{"maricusco-grafana", "/run/secrets/grafana_admin_password", "472"},
			{"maricusco-postgres", "/run/secrets/postgres_superuser_password", "0"},
			{"maricusco-redis", "/run/secrets/redis.conf", "0"},
		} {
			task := p.task(t, tc.service)
			assert.Equal(t, "400 "+tc.reader, e.mustDocker(t, "exec", task, "stat", "-c", "%a %u", tc.file), tc.file)
			_, err := e.docker("exec", "-u", tc.reader, task, "cat", tc.file)
			assert.NoError(t, err, "%s reads %s", tc.reader, tc.file)
			_, err = e.docker("exec", "-u", "65534", task, "cat", tc.file)
			assert.Error(t, err, "no other user reads %s", tc.file)
		}
		// postgres and redis run as the users their entrypoints drop to, on copies of their own.
		for service, file := range map[string]string{"maricusco-postgres": "/var/run/postgresql/maricusco-secrets/superuser_password", "maricusco-redis": "/tmp/maricusco-secrets.*/redis.conf"} {
			user := strings.TrimPrefix(service, "maricusco-")
			owner := e.mustDocker(t, "exec", "-u", user, p.task(t, service), "sh", "-c", "stat -c '%a %U' "+file)
			assert.Equal(t, "400 "+user, owner, file)
		}
	})

	t.Run("Prometheus finds every app replica through tasks.app", func(t *testing.T) {
		prom := p.task(t, "maricusco-prometheus")
		deadline := time.Now().Add(time.Minute)
		for {
			out, _ := e.docker("exec", prom, "wget", "-q", "-O", "-", "http://127.0.0.1:9090/api/v1/targets?state=active")
			if strings.Count(out, `"scrapePool":"maricusco-app"`) == 2 && !strings.Contains(out, `"health":"down"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus does not scrape two app replicas: %s", tail(out, 5))
			}
			time.Sleep(2 * time.Second)
		}
	})

	t.Run("replicas 2 to 4 to 2 under load", func(t *testing.T) {
		for _, n := range []int{4, 2} {
			r := p.upUnderLoad(t, stack, "appReplicas", fmt.Sprint(n))
			assert.Equal(t, n, p.healthyTasks(t, "maricusco-app"))
			figure(t, label, fmt.Sprintf("prod scaling to %d replicas (s)", n), r.took.Seconds())
			figure(t, label, fmt.Sprintf("prod scaling to %d replicas: failed requests", n), r.failures())
			assert.Zero(t, r.failed, "first failure: %v", r.firstErr)
			assert.Positive(t, r.sent, "the request loop ran")
		}
	})

	t.Run("an app image rolls start-first with no failed request", func(t *testing.T) {
		r := p.upUnderLoad(t, stack, "appImage", rolledAppImage)
		figure(t, label, "prod image roll, 2 replicas (s)", r.took.Seconds())
		figure(t, label, "prod image roll, 2 replicas: failed requests", r.failures())
		assert.Zero(t, r.failed, "first failure: %v", r.firstErr)
		assert.Positive(t, r.sent)
		assert.Equal(t, rolledAppImage, p.serviceImage(t, "maricusco-app"))
		assert.Equal(t, 2, p.healthyTasks(t, "maricusco-app"))
	})

	t.Run("a broken app image rolls back by itself while the old replicas serve", func(t *testing.T) {
		l := p.requestLoop(t)
		p.config(t, stack, "set", "appImage", brokenAppImage)
		start := time.Now()
		out, err := p.run(stack, "up", "--yes", "--skip-preview")
		took := time.Since(start).Round(time.Second)
		sent, failed := l.finish()
		require.Error(t, err, "up reports the failed update:\n%s", tail(out, 20))
		assert.Contains(t, out, "rollback")
		figure(t, label, "prod broken image: up to rolled back (s)", took.Seconds())
		figure(t, label, "prod broken image: failed requests", fmt.Sprintf("%d of %d", failed, sent))
		assert.Zero(t, failed, "first failure: %v", l.first())
		assert.Equal(t, rolledAppImage, p.serviceImage(t, "maricusco-app"), "the swarm rolled back to the last good image")
		assert.Equal(t, 2, p.healthyTasks(t, "maricusco-app"))
		p.config(t, stack, "set", "appImage", rolledAppImage)
		p.up(t, stack)
		assert.Empty(t, p.changes(t, stack), "back on the good image, the stack is settled")
	})

	t.Run("a rotated postgresPassword reaches the database and the old secret is gone", func(t *testing.T) {
		old, err := url.Parse(p.outputs(t, stack)["postgresConnectionString"].(string))
		require.NoError(t, err)
		oldPassword, _ := old.User.Password()
		secretsBefore := e.mustDocker(t, "secret", "ls", "--filter", "name=maricusco-postgres-postgres_password", "--format", "{{.Name}}")
		const rotated = "rotated-by-the-e2e-suite-2"
		p.config(t, stack, "set", "--secret", "postgresPassword", rotated)
		took := p.up(t, stack)
		figure(t, label, "prod postgresPassword rotation (s)", took.Seconds())
		login := func(password string) error {
			_, err := e.docker("exec", "-e", "PGPASSWORD="+password, "-e", "PGCONNECT_TIMEOUT=5", p.task(t, "maricusco-postgres"),
				"psql", "-h", "127.0.0.1", "-U", "maricusco", "-d", "maricusco", "-tAc", "SELECT 1")
			return err
		}
		assert.NoError(t, login(rotated), "the new password logs in over TCP")
		assert.Error(t, login(oldPassword), "the old password is refused")
		secretsAfter := e.mustDocker(t, "secret", "ls", "--filter", "name=maricusco-postgres-postgres_password", "--format", "{{.Name}}")
		assert.Len(t, strings.Fields(secretsAfter), 1, "one secret of the password remains")
		assert.NotEqual(t, secretsBefore, secretsAfter, "under a new name")
		for _, s := range []string{"maricusco-app", "maricusco-backup"} {
			assert.Positive(t, p.healthyTasks(t, s), "%s rolled onto the new secret and is healthy", s)
		}
		inspect := e.mustDocker(t, append([]string{"service", "inspect"}, swarmServices...)...)
		grafana := p.outputs(t, stack)["grafanaAdminPassword"].(string)
		for _, secret := range []string{rotated, oldPassword, grafana} {
			assert.NotContains(t, inspect, secret, "docker service inspect shows no password")
		}
	})

	t.Run("an on-demand backup runs in the backup service's task", func(t *testing.T) {
		start := time.Now()
		p.must(t, stack, "backup")
		figure(t, label, "prod on-demand backup (s)", time.Since(start).Round(100*time.Millisecond).Seconds())
		out := e.mustDocker(t, "exec", p.task(t, "maricusco-backup"), "sh", "-c", "ls -1 /backups/maricusco-*.dump")
		assert.NotEmpty(t, strings.Fields(out))
	})

	t.Run("restore --to an instant stops the app, restores the database and starts them again", func(t *testing.T) {
		now := func() string {
			return p.psql(t, p.task(t, "maricusco-postgres"), `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`)
		}
		p.psql(t, p.task(t, "maricusco-postgres"), "INSERT INTO e2e_rows (note) VALUES ('before the instant')")
		time.Sleep(10 * time.Millisecond)
		at := now()
		time.Sleep(10 * time.Millisecond)
		p.psql(t, p.task(t, "maricusco-postgres"), "INSERT INTO e2e_rows (note) VALUES ('after the instant'); DROP TABLE e2e_rows")
		start := time.Now()
		p.must(t, stack, "restore", "--yes", "--to", at)
		figure(t, label, "prod restore --to an instant (s)", time.Since(start).Round(100*time.Millisecond).Seconds())
		assert.Equal(t, "from containers,before the instant", p.psql(t, p.task(t, "maricusco-postgres"), "SELECT string_agg(note, ',' ORDER BY id) FROM e2e_rows"))
		assert.Equal(t, 2, p.healthyTasks(t, "maricusco-app"), "the app runs its replicas again")
		assert.Empty(t, p.changes(t, stack), "scaled back as the stack says: no drift")
	})

	t.Run("destroy removes the services and keeps the volumes", func(t *testing.T) {
		p.config(t, stack, "set", "protect", "false")
		p.up(t, stack)
		p.must(t, stack, "destroy", "--yes", "--skip-preview")
		assert.Empty(t, p.services(t, stack))
		assert.Empty(t, e.mustDocker(t, "secret", "ls", "--filter", "name=maricusco", "--format", "{{.Name}}"))
		assert.Empty(t, e.mustDocker(t, "config", "ls", "--filter", "name=maricusco", "--format", "{{.Name}}"))
		p.assertVolumesKept(t, "by Docker after the destroy")
	})
}
