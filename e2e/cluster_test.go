package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clusterNet is a cluster's own addresses: a host bridge and one veth per node, on a range no
// engine of this machine uses (the host's pools, docker-modern's 10.213.0.0/16 and 10.214.0.0/24),
// a /24 of 10.215.0.0/16 for each cluster, so that clusters run side by side. The nodes have no
// route beyond it: a swarm task pulls its image before it starts, and the machine's DNS server,
// out of reach, would hold every pull and lookup until it times out; unreachable, they fail at
// once and the task starts from the loaded image.
type clusterNet int

const (
	threeNodeNet  clusterNet = 0 // TestSwarmCluster's: 10.215.0.0/24 on mclbr0
	singleNodeNet clusterNet = 1 // TestSwarmLifecycle's: 10.215.1.0/24 on mclbr1
)

func (n clusterNet) bridge() string        { return fmt.Sprintf("mclbr%d", n) }
func (n clusterNet) subnet() string        { return fmt.Sprintf("10.215.%d.0/24", n) }
func (n clusterNet) hostAddr() string      { return fmt.Sprintf("10.215.%d.1", n) }
func (n clusterNet) nodeAddr(i int) string { return fmt.Sprintf("10.215.%d.%d", n, 11+i) }

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

// cluster is swarm nodes on this machine, each in a zone of its own: the first is the manager and
// the data node, the others are workers. Every engine runs in a network namespace the suite
// makes, so nothing of the host's network changes but the cluster's bridge, its veths and one
// ACCEPT rule, all removed after.
type cluster struct {
	net     clusterNet
	nodes   []*clusterNode
	dockerd string // the engines' dockerd: Docker 26's, as docker-modern.sh installs it, or the machine's
	driver  string // the storage driver of the engine the images come from, which this kernel carries
	// torn runs the teardown once.
	torn sync.Once
}

func (c *cluster) manager() *clusterNode { return c.nodes[0] }

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

// modernDockerd is Docker 26's dockerd, as docker-modern.sh installs it.
func modernDockerd(t *testing.T) string {
	t.Helper()
	dockerd := filepath.Join(envOr("DOCKER_MODERN_ROOT", "/var/lib/docker-modern"), "bin", "usr", "sbin", "dockerd")
	if _, err := os.Stat(dockerd); err != nil {
		t.Fatalf("no Docker 26 dockerd at %s: docker-modern.sh start installs it", dockerd)
	}
	return dockerd
}

// newCluster makes a node per hostname with dockerd, joins them in one swarm with the first the
// manager and labelled the data node, loads the stand-in images of from into each, and removes all
// of it when the test ends.
func newCluster(t *testing.T, net clusterNet, from engine, dockerd string, hostnames ...string) *cluster {
	t.Helper()
	c := &cluster{net: net, dockerd: dockerd, driver: from.mustDocker(t, "info", "--format", "{{.Driver}}")}
	if out, err := exec.Command("ip", "link", "show", net.bridge()).CombinedOutput(); err == nil {
		t.Fatalf("%s already exists (a cluster of another run?): %s; remove it with `ip link del %s`", net.bridge(), out, net.bridge())
	}
	root, err := os.MkdirTemp("", "maricusco-cluster-")
	require.NoError(t, err)
	for i, hostname := range hostnames {
		c.nodes = append(c.nodes, &clusterNode{
			hostname: hostname,
			addr:     net.nodeAddr(i),
			netns:    "mcl-" + hostname,
			dir:      filepath.Join(root, hostname),
		})
	}
	t.Cleanup(func() { c.teardown(t, root) })

	sh(t, "ip", "link", "add", net.bridge(), "type", "bridge")
	sh(t, "ip", "addr", "add", net.hostAddr()+"/24", "dev", net.bridge())
	sh(t, "ip", "link", "set", net.bridge(), "up")
	// The host engine's FORWARD policy drops bridged traffic it has no rule for.
	sh(t, "iptables", "-I", forwardChain(), "-s", net.subnet(), "-d", net.subnet(), "-j", "ACCEPT")
	for _, n := range c.nodes {
		require.NoError(t, os.MkdirAll(n.dir, 0o700))
		n.engine = engine{host: "unix://" + filepath.Join(n.dir, "docker.sock")}
		sh(t, "ip", "netns", "add", n.netns)
		sh(t, "ip", "link", "add", n.netns, "type", "veth", "peer", "name", "eth0", "netns", n.netns)
		sh(t, "ip", "link", "set", n.netns, "master", net.bridge(), "up")
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

	require.NotEmpty(t, standIns.refs, "buildImages(from) readies the images before a cluster loads them")
	images := filepath.Join(root, "images.tar")
	from.mustDocker(t, append([]string{"save", "-o", images}, standIns.refs...)...)
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
		_, _ = exec.Command("ip", "link", "del", c.net.bridge()).CombinedOutput()
		_, _ = exec.Command("iptables", "-D", forwardChain(), "-s", c.net.subnet(), "-d", c.net.subnet(), "-j", "ACCEPT").CombinedOutput()
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
