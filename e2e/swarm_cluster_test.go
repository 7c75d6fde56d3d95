package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tasksByNode counts the service's running tasks on each node, by hostname.
func tasksByNode(t *testing.T, e engine, service string) map[string]int {
	t.Helper()
	out := e.mustDocker(t, "service", "ps", service, "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}")
	byNode := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		node, state, _ := strings.Cut(line, " ")
		if strings.HasPrefix(state, "Running") {
			byNode[node]++
		}
	}
	return byNode
}

// requireConverged checks that the service runs as declared when up returns: n tasks meant to
// run, every one running (none still starting, no old one of a start-first roll left), and no
// update under way.
func requireConverged(t *testing.T, e engine, service string, n int) {
	t.Helper()
	states := e.mustDocker(t, "service", "ps", service, "--filter", "desired-state=running", "--format", "{{.CurrentState}}")
	var running []string
	for _, line := range strings.Split(states, "\n") {
		if fields := strings.Fields(line); len(fields) > 0 {
			running = append(running, fields[0])
		}
	}
	require.Equal(t, slices.Repeat([]string{"Running"}, n), running, "%s: the tasks meant to run, when up returned", service)
	update := e.mustDocker(t, "service", "inspect", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", service)
	require.NotContains(t, []string{"updating", "rollback_started"}, update, "%s: no update under way when up returned", service)
}

// requireStackConverged is requireConverged for every service of prod with two app replicas,
// and checks that each stateful service runs its one task on the data node.
func requireStackConverged(t *testing.T, e engine, dataNode string) {
	t.Helper()
	for _, s := range swarmServices {
		requireConverged(t, e, s, map[bool]int{true: 2, false: 1}[s == "maricusco-app"])
	}
	for _, s := range statefulServices {
		require.Equal(t, map[string]int{dataNode: 1}, tasksByNode(t, e, s), "%s runs on the data node, %s", s, dataNode)
	}
}

// scrapedAppTargets is how many app replicas Prometheus scrapes, and whether every one is up.
func scrapedAppTargets(t *testing.T, p *project) (targets int, allUp bool) {
	t.Helper()
	out, _ := p.engine.docker("exec", p.task(t, "maricusco-prometheus"), "wget", "-q", "-O", "-", "http://127.0.0.1:9090/api/v1/targets?state=active")
	var doc struct {
		Data struct {
			ActiveTargets []struct {
				ScrapePool string `json:"scrapePool"`
				Health     string `json:"health"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if json.Unmarshal([]byte(out), &doc) != nil {
		return 0, false
	}
	allUp = true
	for _, target := range doc.Data.ActiveTargets {
		if target.ScrapePool == "maricusco-app" {
			targets++
			allUp = allUp && target.Health == "up"
		}
	}
	return targets, allUp
}

// eventually polls check every second until it holds or limit passes, and returns how long it took.
func eventually(t *testing.T, limit time.Duration, what string, check func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !check() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %s", what, limit)
		}
		time.Sleep(time.Second)
	}
	return time.Since(start).Round(time.Second)
}

// statefulServices are pinned to the data node; the app and nginx go where the scheduler puts them.
var statefulServices = []string{"maricusco-backup", "maricusco-chromadb", "maricusco-grafana", "maricusco-postgres", "maricusco-prometheus", "maricusco-redis"}

// TestSwarmCluster deploys prod with orchestrator swarm on three nodes (newCluster), scales it,
// loses a worker under load, and at last loses the data node, with swarmTestSettings.
func TestSwarmCluster(t *testing.T) {
	requireRealEngine(t)
	// Beside the two engines' lanes and the single-node swarm: its engines and its addresses are
	// its own, in namespaces, and it publishes nothing on this host. Of Docker 26 it takes the
	// binaries, which starting it installs; the images come from the machine's engine, where they
	// were built.
	exclusive(t, "three-node swarm")
	startedModernEngine(t)
	from := machineEngine(t)
	buildImages(t, from)
	start := time.Now()
	c := newCluster(t, threeNodeNet, from, modernDockerd(t), "manager1", "worker1", "worker2")
	m := c.manager()
	label := m.engine.name + ", swarm of 3 nodes"
	figure(t, label, "three nodes started, joined and loaded with the images (s)", time.Since(start).Round(time.Second).Seconds())
	const stack = "prod"
	p := projectFor(t, m.engine, stack)
	explainTasksOnFailure(t, p)
	app := imageRefs(t)["app"][0]

	nodes := m.engine.mustDocker(t, "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}} {{.EngineVersion}}")
	require.ElementsMatch(t, []string{"manager1 Ready Leader " + strings.Fields(m.engine.name)[1], "worker1 Ready  " + strings.Fields(m.engine.name)[1], "worker2 Ready  " + strings.Fields(m.engine.name)[1]},
		strings.Split(nodes, "\n"), "three nodes, each under its own hostname")

	// The deploys reach the manager over ssh, as a CI job does; the suite's own checks use its socket.
	p.env = c.serveSSH(t, m, c.nodes[1])
	p.config(t, stack, "set", "dockerHost", "ssh://root@"+m.addr)
	p.config(t, stack, "set", "orchestrator", "swarm")
	swarmTestSettings(t, p, stack)
	if !hasIPVS() {
		p.config(t, stack, "set", "swarmEndpointMode", "dnsrr")
		p.config(t, stack, "set", "--path", "edge.https", "")
		p.config(t, stack, "set", "--path", "edge.http", "")
		label += ", dnsrr"
	}
	if !m.xfrmAEAD() {
		msg := "ENCRYPTED OVERLAY NOT EXERCISED ACROSS NODES: this kernel has no rfc4106(gcm(aes)) for ESP, so no packet would cross an encrypted overlay; the cluster runs with swarmOverlayEncrypted false"
		fmt.Fprintln(os.Stderr, msg)
		t.Log(msg)
		p.config(t, stack, "set", "swarmOverlayEncrypted", "false")
		label += ", overlay not encrypted"
	}
	// Clients on the stack's network, as nginx's are: through the edge, on the manager.
	p.startRequests = func(t *testing.T) requests { return startNetworkLoad(t, m.engine, app, "https://lb:8443/") }

	if !t.Run("up places the stateful services on the data node and spreads the app over the others", func(t *testing.T) {
		took := p.up(t, stack)
		figure(t, label, "prod `up` from nothing to converged (s)", took.Seconds())
		requireStackConverged(t, m.engine, m.hostname)
		appTasks := tasksByNode(t, m.engine, "maricusco-app")
		require.Len(t, appTasks, 2, "two replicas on two nodes: %v", appTasks)
		for node, n := range appTasks {
			require.Equal(t, 1, n, "one replica on %s", node)
		}
		code := m.engine.mustDocker(t, "run", "--rm", "--network", "maricusco-edge", "--entrypoint", "curl", app, "-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://lb:8443/health")
		require.Equal(t, "200", code, "the edge answers from the manager")
	}) {
		return
	}

	scale := func(t *testing.T, n int) {
		r := p.upUnderLoad(t, stack, "appReplicas", fmt.Sprint(n))
		requireConverged(t, m.engine, "maricusco-app", n)
		figure(t, label, fmt.Sprintf("prod scaling to %d replicas on 3 nodes (s)", n), r.took.Seconds())
		figure(t, label, fmt.Sprintf("prod scaling to %d replicas on 3 nodes: failed requests", n), r.failures())
		require.Zero(t, r.failed, "first failure: %v", r.firstErr)
		byNode := tasksByNode(t, m.engine, "maricusco-app")
		total, spread := 0, make([]string, 0, len(c.nodes))
		for _, node := range c.nodes {
			total += byNode[node.hostname]
			spread = append(spread, fmt.Sprint(byNode[node.hostname]))
		}
		figure(t, label, fmt.Sprintf("prod %d replicas on manager1/worker1/worker2", n), strings.Join(spread, "/"))
		require.Equal(t, n, total, "up returned with every replica running, and no more: %v", byNode)
		// Each new task goes to the zone with the fewest of the app's tasks, but a start-first roll
		// places it while the old one still runs, and a swarm never moves a running task: the
		// counts can end uneven (3/1/2 seen), never all on fewer nodes than they could cover.
		require.Len(t, byNode, min(n, len(c.nodes)), "the replicas cover as many nodes as they can: %v", byNode)
		eventually(t, time.Minute, fmt.Sprintf("Prometheus scrapes %d app replicas, all up", n), func() bool {
			targets, allUp := scrapedAppTargets(t, p)
			return targets == n && allUp
		})
	}

	if !t.Run("replicas 2 to 6 spread and converge in one up, under load", func(t *testing.T) { scale(t, 6) }) {
		return
	}

	t.Run("a second preview changes nothing", func(t *testing.T) {
		require.Empty(t, p.changes(t, stack))
	})

	// The worker to lose runs app replicas but not nginx, the single front door, and no more
	// replicas than nginx tries for one request (proxy_next_upstream_tries 3): a dead node's
	// tasks stay in the swarm's DNS until it is marked down, and three of them first in nginx's
	// answer fail a request (docs/cluster.md). A forced update spreads the replicas anew until it holds.
	var lost *clusterNode
	for range 3 {
		lbNodes, appNodes := tasksByNode(t, m.engine, "maricusco-lb"), tasksByNode(t, m.engine, "maricusco-app")
		lost = nil
		for _, w := range c.nodes[1:] {
			if lbNodes[w.hostname] == 0 && (lost == nil || appNodes[w.hostname] < appNodes[lost.hostname]) {
				lost = w
			}
		}
		if appNodes[lost.hostname] < 3 {
			break
		}
		m.engine.mustDocker(t, "service", "update", "--force", "--quiet", "maricusco-app")
	}
	survivors := map[string]bool{}
	for _, n := range c.nodes {
		survivors[n.hostname] = n != lost
	}

	if !t.Run("a worker lost: its replicas move to the other nodes while requests are served", func(t *testing.T) {
		l := p.requestLoop(t)
		time.Sleep(2 * time.Second)
		c.lose(t, lost)
		recovered := eventually(t, 3*time.Minute, "six app replicas running on the nodes left", func() bool {
			running := 0
			for node, n := range tasksByNode(t, m.engine, "maricusco-app") {
				if survivors[node] {
					running += n
				}
			}
			return running == 6
		})
		time.Sleep(5 * time.Second)
		sent, failed := l.finish()
		figure(t, label, "prod worker lost: seconds until its replicas run elsewhere", recovered.Seconds())
		figure(t, label, "prod worker lost: failed requests", fmt.Sprintf("%d of %d", failed, sent))
		require.Positive(t, sent)
		require.Zero(t, failed, "first failure: %v", l.first())
		require.Equal(t, "down", m.engine.mustDocker(t, "node", "inspect", "--format", "{{.Status.State}}", lost.hostname))
		require.Empty(t, p.changes(t, stack), "the swarm restored the declared replicas: nothing for Pulumi to do")
	}) {
		return
	}

	t.Run("the lost worker returns: it rejoins, stops its old tasks and takes none back", func(t *testing.T) {
		before := tasksByNode(t, m.engine, "maricusco-app")
		start := time.Now()
		c.restore(t, lost)
		eventually(t, 2*time.Minute, lost.hostname+" is ready again", func() bool {
			return m.engine.mustDocker(t, "node", "inspect", "--format", "{{.Status.State}}", lost.hostname) == "ready"
		})
		figure(t, label, "prod lost worker back: seconds from its engine's start to ready", time.Since(start).Round(time.Second).Seconds())
		eventually(t, time.Minute, lost.hostname+" runs no app container", func() bool {
			out, err := lost.engine.docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=maricusco-app")
			return err == nil && out == ""
		})
		require.Equal(t, before, tasksByNode(t, m.engine, "maricusco-app"), "the swarm does not rebalance by itself")
		require.Empty(t, p.changes(t, stack))
	})

	t.Run("an operator's forced update spreads the app over the returned node, under load", func(t *testing.T) {
		l := p.requestLoop(t)
		start := time.Now()
		m.engine.mustDocker(t, "service", "update", "--force", "--quiet", "maricusco-app")
		took := time.Since(start).Round(time.Second)
		sent, failed := l.finish()
		figure(t, label, "prod `docker service update --force maricusco-app`, 6 replicas (s)", took.Seconds())
		figure(t, label, "prod `docker service update --force maricusco-app`: failed requests", fmt.Sprintf("%d of %d", failed, sent))
		require.Zero(t, failed, "first failure: %v", l.first())
		byNode := tasksByNode(t, m.engine, "maricusco-app")
		require.Positive(t, byNode[lost.hostname], "the returned node runs app replicas again: %v", byNode)
		require.Empty(t, p.changes(t, stack), "the program's state is unaffected")
	})

	if !t.Run("replicas 6 to 2 under load", func(t *testing.T) { scale(t, 2) }) {
		return
	}

	t.Run("the data node lost: another node takes its place and the off-host copy of the backups is restored", func(t *testing.T) {
		loseDataNode(t, c, p, stack, label)
	})
}
