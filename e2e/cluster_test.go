package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The cluster's own addresses: a host bridge and one veth per node, on a range no engine of this
// machine uses (the host's pools, docker-modern's 10.213.0.0/16 and 10.214.0.0/24). The nodes
// have no route beyond it: a swarm task pulls its image before it starts, and the machine's DNS
// server, out of reach, would hold every pull and lookup until it times out; unreachable, they
// fail at once and the task starts from the loaded image.
const (
	clusterBridge   = "mclbr0"
	clusterSubnet   = "10.215.0.0/24"
	clusterHostAddr = "10.215.0.1"
)

// clusterNode is one Docker 26 engine in a network namespace and a hostname of its own.
type clusterNode struct {
	hostname string // as `docker node ls` shows it
	addr     string // its address on the cluster's bridge
	netns    string // the network namespace, and the host end of its veth
	dir      string // data root, exec root, socket, config and log
	engine   engine
	daemon   *exec.Cmd
	exited   chan struct{}
}

// cluster is three swarm nodes on this machine, each in a zone of its own: manager1, the manager
// and the data node, and worker1 and worker2. Every engine runs in a network namespace the suite makes, so nothing of the
// host's network changes but one bridge, its veths and one ACCEPT rule, all removed after.
type cluster struct {
	nodes   []*clusterNode
	dockerd string // Docker 26's dockerd, as docker-modern.sh installs it
	driver  string // the host engine's storage driver, which this kernel is known to carry
	// torn runs the teardown once.
	torn sync.Once
}

func (c *cluster) manager() *clusterNode { return c.nodes[0] }

// node is the node of the given hostname.
func (c *cluster) node(t *testing.T, hostname string) *clusterNode {
	t.Helper()
	for _, n := range c.nodes {
		if n.hostname == hostname {
			return n
		}
	}
	t.Fatalf("no node %s in the cluster", hostname)
	return nil
}

// sh runs a command of the host's and fails the test on an error.
func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

// inNetns runs a command of the host's inside the node's network namespace.
func (n *clusterNode) inNetns(args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=/var/run/netns/" + n.netns}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// newCluster makes the three nodes, joins them in one swarm with manager1 labelled the data node,
// loads the stand-in images of from into each, and removes all of it when the test ends.
func newCluster(t *testing.T, from engine) *cluster {
	t.Helper()
	modernBin := filepath.Join(envOr("DOCKER_MODERN_ROOT", "/var/lib/docker-modern"), "bin")
	c := &cluster{dockerd: filepath.Join(modernBin, "usr", "sbin", "dockerd"), driver: from.mustDocker(t, "info", "--format", "{{.Driver}}")}
	if _, err := os.Stat(c.dockerd); err != nil {
		t.Fatalf("no Docker 26 dockerd at %s: docker-modern.sh start installs it", c.dockerd)
	}
	if out, err := exec.Command("ip", "link", "show", clusterBridge).CombinedOutput(); err == nil {
		t.Fatalf("%s already exists (a cluster of another run?): %s; remove it with `ip link del %s`", clusterBridge, out, clusterBridge)
	}
	root, err := os.MkdirTemp("", "maricusco-cluster-")
	require.NoError(t, err)
	for i, hostname := range []string{"manager1", "worker1", "worker2"} {
		c.nodes = append(c.nodes, &clusterNode{
			hostname: hostname,
			addr:     fmt.Sprintf("10.215.0.%d", 11+i),
			netns:    "mcl-" + hostname,
			dir:      filepath.Join(root, hostname),
		})
	}
	t.Cleanup(func() { c.teardown(t, root) })

	sh(t, "ip", "link", "add", clusterBridge, "type", "bridge")
	sh(t, "ip", "addr", "add", clusterHostAddr+"/24", "dev", clusterBridge)
	sh(t, "ip", "link", "set", clusterBridge, "up")
	// The host engine's FORWARD policy drops bridged traffic it has no rule for.
	sh(t, "iptables", "-I", forwardChain(), "-s", clusterSubnet, "-d", clusterSubnet, "-j", "ACCEPT")
	for _, n := range c.nodes {
		require.NoError(t, os.MkdirAll(n.dir, 0o700))
		n.engine = engine{host: "unix://" + filepath.Join(n.dir, "docker.sock")}
		sh(t, "ip", "netns", "add", n.netns)
		sh(t, "ip", "link", "add", n.netns, "type", "veth", "peer", "name", "eth0", "netns", n.netns)
		sh(t, "ip", "link", "set", n.netns, "master", clusterBridge, "up")
		for _, cmd := range [][]string{
			{"ip", "addr", "add", n.addr + "/24", "dev", "eth0"},
			{"ip", "link", "set", "eth0", "up"},
			{"ip", "link", "set", "lo", "up"},
		} {
			out, err := n.inNetns(cmd...)
			require.NoError(t, err, "%s: %s: %s", n.netns, strings.Join(cmd, " "), out)
		}
		config, err := json.Marshal(map[string]any{"storage-driver": c.driver, "log-driver": "json-file",
			"log-opts": map[string]string{"max-size": "10m", "max-file": "3"}})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(n.dir, "daemon.json"), config, 0o600))
	}
	parallel(t, c.nodes, func(n *clusterNode) error { return c.start(n) })

	m := c.manager()
	m.engine.mustDocker(t, "swarm", "init", "--advertise-addr", m.addr)
	token := m.engine.mustDocker(t, "swarm", "join-token", "-q", "worker")
	for _, n := range c.nodes[1:] {
		n.engine.mustDocker(t, "swarm", "join", "--token", token, m.addr+":2377")
	}
	m.engine.mustDocker(t, "node", "update", "--label-add", "maricusco.data=true", m.hostname)
	// Three nodes in three zones (racks, availability zones): the app spreads over the zones.
	for i, n := range c.nodes {
		m.engine.mustDocker(t, "node", "update", "--label-add", fmt.Sprintf("maricusco.zone=zone-%c", 'a'+i), n.hostname)
	}

	refs := []string{rolledAppImage}
	for _, byRole := range imageRefs(t) {
		refs = append(refs, byRole...)
	}
	images := filepath.Join(root, "images.tar")
	from.mustDocker(t, append([]string{"save", "-o", images}, refs...)...)
	parallel(t, c.nodes, func(n *clusterNode) error {
		if out, err := n.engine.docker("load", "-q", "-i", images); err != nil {
			return fmt.Errorf("docker load into %s: %w: %s", n.hostname, err, out)
		}
		return nil
	})
	return c
}

// parallel runs f for every node at once and fails the test with every error.
func parallel(t *testing.T, nodes []*clusterNode, f func(*clusterNode) error) {
	t.Helper()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(n)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

// forwardChain is where the host engine lets other traffic through its FORWARD policy.
func forwardChain() string {
	if exec.Command("iptables", "-L", "DOCKER-USER", "-n").Run() == nil {
		return "DOCKER-USER"
	}
	return "FORWARD"
}

// start starts the node's engine under its hostname (a UTS namespace of its own) and waits for
// it to answer. On its own network, the default bridge is none: there is no docker0 to share.
func (c *cluster) start(n *clusterNode) error {
	log, err := os.OpenFile(filepath.Join(n.dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command("nsenter", "--net=/var/run/netns/"+n.netns, "unshare", "--uts",
		"sh", "-c", `hostname "$0" && exec "$@"`, n.hostname,
		c.dockerd, "--config-file", filepath.Join(n.dir, "daemon.json"), "--host", n.engine.host,
		"--data-root", filepath.Join(n.dir, "data"), "--exec-root", filepath.Join(n.dir, "exec"),
		"--pidfile", filepath.Join(n.dir, "docker.pid"), "--bridge", "none")
	// docker-proxy and docker-init of Docker 26 first; containerd and runc are the host's.
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(c.dockerd)+":"+filepath.Join(filepath.Dir(filepath.Dir(c.dockerd)), "bin")+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s's engine: %w", n.hostname, err)
	}
	n.daemon, n.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(n.exited)
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := n.engine.docker("version"); err == nil {
			break
		}
		select {
		case <-n.exited:
			return fmt.Errorf("%s's engine stopped at start: %s", n.hostname, tail(readFile(filepath.Join(n.dir, "dockerd.log")), 10))
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s's engine does not answer after a minute: %s", n.hostname, tail(readFile(filepath.Join(n.dir, "dockerd.log")), 10))
		}
	}
	var err2 error
	n.engine, err2 = describe(n.engine.host)
	return err2
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// lose takes the node off the cluster as a machine that dies does: its engine killed (SIGKILL)
// and its link down, so that nothing it still ran answers.
func (c *cluster) lose(t *testing.T, n *clusterNode) {
	t.Helper()
	require.NoError(t, n.daemon.Process.Signal(syscall.SIGKILL))
	<-n.exited
	sh(t, "ip", "link", "set", n.netns, "down")
}

// restore brings the lost node back: its link up and its engine started on the same data root.
func (c *cluster) restore(t *testing.T, n *clusterNode) {
	t.Helper()
	sh(t, "ip", "link", "set", n.netns, "up")
	require.NoError(t, c.start(n))
}

// running tells whether the node's engine process lives.
func (n *clusterNode) running() bool {
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// teardown removes every container, stops every engine, and deletes what newCluster made: the
// data roots, namespaces, links, the bridge and the rule. It goes on past errors.
func (c *cluster) teardown(t *testing.T, root string) {
	c.torn.Do(func() {
		var wg sync.WaitGroup
		for _, n := range c.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if n.exited != nil && !n.running() {
					// A lost node's engine comes back once, to stop what it left running.
					_, _ = exec.Command("ip", "link", "set", n.netns, "up").CombinedOutput()
					_ = c.start(n)
				}
				if n.running() {
					_, _ = n.engine.docker("swarm", "leave", "--force")
					if ids, err := n.engine.docker("ps", "-aq"); err == nil && ids != "" {
						_, _ = n.engine.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
					}
					_ = n.daemon.Process.Signal(syscall.SIGTERM)
					select {
					case <-n.exited:
					case <-time.After(30 * time.Second):
						_ = n.daemon.Process.Kill()
						<-n.exited
					}
				}
				killProcessesUnder(n.dir)
				unmountUnder(n.dir)
				_, _ = exec.Command("ip", "netns", "del", n.netns).CombinedOutput()
				_, _ = exec.Command("ip", "link", "del", n.netns).CombinedOutput()
			}()
		}
		wg.Wait()
		_, _ = exec.Command("ip", "link", "del", clusterBridge).CombinedOutput()
		_, _ = exec.Command("iptables", "-D", forwardChain(), "-s", clusterSubnet, "-d", clusterSubnet, "-j", "ACCEPT").CombinedOutput()
		if err := os.RemoveAll(root); err != nil {
			t.Logf("the cluster's files stay at %s: %v", root, err)
		}
	})
}

// killProcessesUnder kills what an engine left running of its own: containerd and its shims name
// the engine's exec root on their command line.
func killProcessesUnder(dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), dir) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountUnder unmounts what is still mounted under dir, deepest first.
func unmountUnder(dir string) {
	mounts, _ := os.ReadFile("/proc/self/mounts")
	lines := strings.Split(string(mounts), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		fields := strings.Fields(lines[i])
		if len(fields) > 1 && strings.HasPrefix(fields[1], dir) {
			_ = syscall.Unmount(fields[1], syscall.MNT_DETACH)
		}
	}
}

// xfrmAEAD tells whether the kernel can carry an encrypted overlay between nodes: Docker's
// encrypted VXLAN uses ESP with AES-GCM (rfc4106), and where the kernel lacks that algorithm the
// engine logs "function not implemented" and no packet crosses (seen on this CI machine).
func (n *clusterNode) xfrmAEAD() bool {
	_, err := n.inNetns("ip", "xfrm", "state", "add", "src", "10.215.0.250", "dst", "10.215.0.251", "proto", "esp",
		"spi", "0x100", "reqid", "1", "mode", "transport", "aead", "rfc4106(gcm(aes))", "0x0102030405060708091011121314151617181920", "64")
	_, _ = n.inNetns("ip", "xfrm", "state", "delete", "src", "10.215.0.250", "dst", "10.215.0.251", "proto", "esp", "spi", "0x100")
	return err == nil
}

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
// and loses a worker under load. Healthchecks run every 5 s, as in TestSwarmLifecycle.
func TestSwarmCluster(t *testing.T) {
	requireRealEngine(t)
	from := modernEngine(t)
	buildImages(t, from)
	start := time.Now()
	c := newCluster(t, from)
	m := c.manager()
	label := m.engine.name + ", swarm of 3 nodes"
	figure(t, label, "three nodes started, joined and loaded with the images (s)", time.Since(start).Round(time.Second).Seconds())
	const stack = "prod"
	p := projectFor(t, m.engine, stack)
	app := imageRefs(t)["app"][0]

	nodes := m.engine.mustDocker(t, "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}} {{.EngineVersion}}")
	require.ElementsMatch(t, []string{"manager1 Ready Leader " + strings.Fields(m.engine.name)[1], "worker1 Ready  " + strings.Fields(m.engine.name)[1], "worker2 Ready  " + strings.Fields(m.engine.name)[1]},
		strings.Split(nodes, "\n"), "three nodes, each under its own hostname")

	// The deploys reach the manager over ssh, as a CI job does; the suite's own checks use its socket.
	p.env = c.serveSSH(t)
	p.config(t, stack, "set", "dockerHost", "ssh://root@"+m.addr)
	p.config(t, stack, "set", "orchestrator", "swarm")
	p.config(t, stack, "set", "healthcheckInterval", "5s")
	p.config(t, stack, "set", "healthcheckStartPeriod", "20s")
	for _, svc := range swarmServices {
		p.config(t, stack, "set", "--path", "resources."+strings.TrimPrefix(svc, "maricusco-")+".reservations.cpus", "0.1")
	}
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
		for _, s := range swarmServices {
			requireConverged(t, m.engine, s, map[bool]int{true: 2, false: 1}[s == "maricusco-app"])
		}
		for _, s := range statefulServices {
			require.Equal(t, map[string]int{"manager1": 1}, tasksByNode(t, m.engine, s), "%s runs on the data node", s)
		}
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

	// The worker to lose runs app replicas (two of the six) but not nginx, the single front door.
	lbNodes := tasksByNode(t, m.engine, "maricusco-lb")
	lost := c.nodes[1]
	if lbNodes[lost.hostname] > 0 {
		lost = c.nodes[2]
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

	t.Run("replicas 6 to 2 under load", func(t *testing.T) { scale(t, 2) })
}

// sshd is OpenSSH's server from Debian's package: the machine's own, or extracted (not installed:
// an installed openssh-server would start serving the machine's port 22) into the user's cache.
func sshd(t *testing.T) (path string, env []string) {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		return "/usr/sbin/sshd", nil
	}
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	dir := filepath.Join(cache, "maricusco-e2e", "openssh-server")
	path = filepath.Join(dir, "usr", "sbin", "sshd")
	// libwrap0 is the one library sshd links that a machine without the server may lack.
	env = []string{"LD_LIBRARY_PATH=" + filepath.Join(dir, "lib", "x86_64-linux-gnu") + ":" + filepath.Join(dir, "usr", "lib", "x86_64-linux-gnu")}
	if _, err := os.Stat(path); err == nil {
		return path, env
	}
	debs := t.TempDir()
	download := exec.Command("apt-get", "download", "openssh-server", "libwrap0")
	download.Dir = debs
	if out, err := download.CombinedOutput(); err != nil {
		out2, err2 := exec.Command("apt-get", "update", "-qq").CombinedOutput()
		require.NoError(t, err2, "apt-get update: %s", out2)
		download = exec.Command("apt-get", "download", "openssh-server", "libwrap0")
		download.Dir = debs
		out, err = download.CombinedOutput()
		require.NoError(t, err, "apt-get download openssh-server libwrap0: %s", out)
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	for _, deb := range files {
		sh(t, "dpkg-deb", "-x", deb, dir)
	}
	return path, env
}

// serveSSH runs sshd in the manager's namespace, where a login runs the docker CLI against the
// manager's engine, as on a manager a deploy job reaches over ssh. It returns the environment
// that gives a deploy an ssh client trusting that server with a key it accepts.
func (c *cluster) serveSSH(t *testing.T) []string {
	t.Helper()
	m := c.manager()
	dir := filepath.Join(m.dir, "ssh")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	sh(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host_key"))
	sh(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "deploy_key"))
	pub, err := os.ReadFile(filepath.Join(dir, "deploy_key.pub"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600))
	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(m.addr+" "+string(hostPub)), 0o600))
	server := strings.Join([]string{
		"ListenAddress " + m.addr + ":22",
		"HostKey " + filepath.Join(dir, "host_key"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"SetEnv DOCKER_HOST=" + m.engine.host,
	}, "\n") + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(server), 0o600))
	client := strings.Join([]string{
		"Host " + m.addr,
		"  IdentityFile " + filepath.Join(dir, "deploy_key"),
		"  IdentitiesOnly yes",
		"  UserKnownHostsFile " + filepath.Join(dir, "known_hosts"),
		"  StrictHostKeyChecking yes",
		"  BatchMode yes",
	}, "\n") + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ssh_config"), []byte(client), 0o600))
	// The docker provider and CLI run `ssh` from the PATH: this one reads the suite's config.
	bin := filepath.Join(dir, "bin")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	wrapper := fmt.Sprintf("#!/bin/sh\nexec /usr/bin/ssh -F %s \"$@\"\n", filepath.Join(dir, "ssh_config"))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "ssh"), []byte(wrapper), 0o755))

	path, env := sshd(t)
	// sshd insists on its privilege separation user and directory, which the package would make.
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	if exec.Command("id", "sshd").Run() != nil {
		sh(t, "useradd", "--system", "--home-dir", "/run/sshd", "--shell", "/usr/sbin/nologin", "sshd")
	}
	cmd := exec.Command("nsenter", "--net=/var/run/netns/"+m.netns, path, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	cmd.Env = append(os.Environ(), env...)
	log, err := os.Create(filepath.Join(dir, "sshd.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited); log.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	env = []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
	eventually(t, 30*time.Second, "sshd answers on "+m.addr, func() bool {
		cli := exec.Command("docker", "--host", "ssh://root@"+m.addr, "version", "--format", "{{.Server.Version}}")
		cli.Env = append(os.Environ(), env...)
		out, err := cli.CombinedOutput()
		if err != nil {
			select {
			case <-exited:
				t.Fatalf("sshd stopped: %s\n%s", readFile(filepath.Join(dir, "sshd.log")), out)
			default:
			}
		}
		return err == nil
	})
	return env
}
