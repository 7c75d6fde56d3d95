// Package e2e deploys the real program with the shipped stack files on real Docker engines,
// through deploy.sh and the Pulumi CLI, as a user does. It runs only with MARICUSCO_E2E=1 and
// skips, naming what is missing, when the toolchain or an engine is not there.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/maricusco/infra/internal/worktree"
	"github.com/maricusco/infra/stacks"
)

// repoRoot is the project; shared/ (stand-in images, the second engine) lies beside it.
var (
	repoRoot, _ = filepath.Abs("..")
	sharedDir   = envOr("MARICUSCO_SHARED", filepath.Join(repoRoot, "..", "shared"))
)

const passphrase = "e2e-only-passphrase"

// container is the Docker name of a service's container with the default namePrefix.
func container(service string) string { return "maricusco-" + service }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// missingToolchain names every piece a real deploy needs that this machine lacks.
func missingToolchain() []string {
	var missing []string
	if _, err := exec.LookPath("pulumi"); err != nil {
		missing = append(missing, "the pulumi CLI (scripts/install-pulumi-cli.sh, or Pulumi's installer)")
	}
	if _, err := exec.LookPath("pulumi-language-go"); err != nil {
		missing = append(missing, "Pulumi's Go language host pulumi-language-go on the PATH (Pulumi's installer ships it)")
	}
	home := envOr("PULUMI_HOME", filepath.Join(os.Getenv("HOME"), ".pulumi"))
	for _, plugin := range []string{"docker", "random"} {
		if m, _ := filepath.Glob(filepath.Join(home, "plugins", "resource-"+plugin+"-v*")); len(m) == 0 {
			missing = append(missing, "the "+plugin+" provider plugin (`pulumi plugin install resource "+plugin+"`)")
		}
	}
	if err := exec.Command("docker", "version").Run(); err != nil {
		missing = append(missing, "a Docker engine that answers `docker version`")
	}
	if _, err := os.Stat(filepath.Join(sharedDir, "e2e-images", "build.sh")); err != nil {
		missing = append(missing, "the stand-in images' build.sh under "+sharedDir+" (set MARICUSCO_SHARED)")
	}
	return missing
}

// requireRealEngine skips the test unless the suite is asked for; asked for, it fails when the
// machine lacks a piece, never passing green without having deployed anything.
func requireRealEngine(t *testing.T) {
	t.Helper()
	if os.Getenv("MARICUSCO_E2E") != "1" {
		t.Skip("the real-engine suite runs with MARICUSCO_E2E=1 (docs/testing.md)")
	}
	if missing := missingToolchain(); len(missing) > 0 {
		t.Fatal("REAL-ENGINE SUITE CANNOT RUN: this machine lacks " + strings.Join(missing, "; "))
	}
}

// TestTheRealEngineToolchainIsHere is what .ci/run asks first, to leave the suite out, loudly,
// on a machine that cannot run it.
func TestTheRealEngineToolchainIsHere(t *testing.T) {
	requireRealEngine(t)
}

// figures are the measurements the suite prints at the end, for docs/testing.md's table.
var figures struct {
	sync.Mutex
	rows []string
}

// figure records and prints one measurement.
func figure(t *testing.T, engine, what string, value any) {
	t.Helper()
	row := fmt.Sprintf("| %s | %s | %v |", engine, what, value)
	figures.Lock()
	figures.rows = append(figures.rows, row)
	figures.Unlock()
	t.Logf("FIGURE %s", row)
}

// lanes keep each engine to one test at a time while the two engines' tests run side by side:
// a test on the machine's engine and one on Docker 26 (on ports of its own) never meet, and the
// suite takes the time of the longer lane instead of the sum.
var lanes sync.Map

// suiteStart is when the suite began, for the figures that say when each test held its lane.
var suiteStart = time.Now()

// exclusive runs the test in parallel with the other lane's, alone on its own.
func exclusive(t *testing.T, lane string) {
	t.Helper()
	t.Parallel()
	mu, _ := lanes.LoadOrStore(lane, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	held := time.Since(suiteStart)
	t.Cleanup(func() {
		mu.(*sync.Mutex).Unlock()
		figure(t, "lane "+lane, t.Name()+": seconds from the suite's start, holding the lane", fmt.Sprintf("%.0f to %.0f", held.Seconds(), time.Since(suiteStart).Seconds()))
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopModernEngine()
	if len(figures.rows) > 0 {
		fmt.Println("\nFigures of the real-engine suite:\n| engine | measurement | value |\n|---|---|---|")
		for _, r := range figures.rows {
			fmt.Println(r)
		}
	}
	os.Exit(code)
}

// engine is one Docker engine the suite deploys to.
type engine struct {
	name string // how the figures name it, e.g. "Docker 20.10 (API 1.41)"
	host string // DOCKER_HOST
}

func (e engine) docker(args ...string) (string, error) {
	cmd := exec.Command("docker", append([]string{"--host", e.host}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (e engine) mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.docker(args...)
	require.NoError(t, err, "docker %s: %s", strings.Join(args, " "), out)
	return out
}

// describe names an engine by its version, as `docker version` reports it.
func describe(host string) (engine, error) {
	e := engine{host: host}
	out, err := e.docker("version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}")
	if err != nil {
		return e, fmt.Errorf("docker --host %s version: %v: %s", host, err, out)
	}
	v, api, _ := strings.Cut(out, " ")
	e.name = fmt.Sprintf("Docker %s (API %s)", v, api)
	return e, nil
}

// project is a copy of the repository that the suite deploys from, with its own state backend,
// so that `pulumi config set` never touches the shipped stack files.
type project struct {
	dir    string
	engine engine
	// backend is the state backend's URL (empty: deploy.sh's ./.pulumi-state in dir).
	backend string
	// portOffset is how far shiftPorts moved the stack's published ports.
	portOffset int
	// stack is the stack the project deploys.
	stack string
	// startRequests starts the request loop of upUnderLoad (nil: against the published port).
	startRequests func(t *testing.T) requests
	// env is added to the environment of the project's commands.
	env []string
}

func newProject(t *testing.T, e engine) *project {
	t.Helper()
	// The suite deletes what it deploys, volumes included: it must not meet a deployment of
	// someone else's.
	containers := e.mustDocker(t, "ps", "-a", "--filter", "name=maricusco", "--format", "{{.Names}}")
	volumes := e.mustDocker(t, "volume", "ls", "--filter", "name=maricusco_", "--format", "{{.Name}}")
	if containers != "" || volumes != "" {
		t.Fatalf("%s already holds a maricusco deployment (containers: %q, volumes: %q); the suite removes what it deploys, so run it on an engine without one, or remove them first", e.name, containers, volumes)
	}
	dir := t.TempDir()
	require.NoError(t, worktree.Copy(repoRoot, dir))
	return &project{dir: dir, engine: e}
}

// forStack readies a test that deploys stack to the engine: the stand-in images there, a copy of
// the project, and a cleanup that leaves the engine as it was.
func forStack(t *testing.T, e engine, stack string) *project {
	t.Helper()
	buildImages(t, e)
	return projectFor(t, e, stack)
}

// projectFor readies a test that deploys stack to an engine that has the stand-in images.
func projectFor(t *testing.T, e engine, stack string) *project {
	t.Helper()
	p := newProject(t, e)
	p.stack = stack
	t.Cleanup(func() { p.cleanup(t, stack) })
	if stack == "prod" {
		// prod's edge serves a certificate of files: the suite's own CA, for maricusco.test.
		p.issueEdge(t, stack, "maricusco.test")
	}
	return p
}

// run runs deploy.sh with the arguments, as a user would, and returns its output.
func (p *project) run(args ...string) (string, error) {
	return p.script("./deploy.sh", args...)
}

// commandTimeout bounds one command of the suite: a deploy that hangs fails its test with what it
// printed, instead of the whole binary at go test's deadline with nothing but goroutine dumps.
// The longest legitimate command (a 30 s healthcheck layer or two, a swarm rollback) takes under
// three minutes.
const commandTimeout = 12 * time.Minute

// script runs one of the project's commands (deploy.sh, scripts/drift.sh) as a user would, in a
// process group of its own so that a timeout kills Pulumi and its plugins with it.
func (p *project) script(path string, args ...string) (string, error) {
	cmd := p.command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	timer := time.AfterFunc(commandTimeout, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err := cmd.Wait()
	if !timer.Stop() {
		err = fmt.Errorf("killed after %s: %w", commandTimeout, err)
	}
	return out.String(), err
}

// command is one of the project's commands with the suite's environment: its passphrase, engine
// and backend.
func (p *project) command(path string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(),
		"PULUMI_CONFIG_PASSPHRASE="+passphrase,
		"DOCKER_HOST="+p.engine.host,
		"PULUMI_SKIP_UPDATE_CHECK=true",
		"CI=", // the suite is no CI deploy job: its backend is deploy.sh's local default
	)
	if p.backend != "" {
		cmd.Env = append(cmd.Env, "PULUMI_BACKEND_URL="+p.backend)
	}
	cmd.Env = append(cmd.Env, p.env...)
	return cmd
}

func (p *project) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.run(args...)
	require.NoError(t, err, "./deploy.sh %s:\n%s", strings.Join(args, " "), tail(out, 60))
	return out
}

// timed runs deploy.sh and returns how long it took.
func (p *project) timed(t *testing.T, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	p.must(t, args...)
	return time.Since(start).Round(time.Second)
}

func (p *project) up(t *testing.T, stack string, flags ...string) time.Duration {
	t.Helper()
	return p.timed(t, append([]string{stack, "up", "--yes", "--skip-preview"}, flags...)...)
}

func (p *project) config(t *testing.T, stack string, args ...string) {
	t.Helper()
	p.must(t, append([]string{stack, "config"}, args...)...)
}

// testStackHealth sets the healthchecks of a test stack, in one `config set-all` with more: every
// 5 s (the seed's are every 30 s), so that a step waiting for a replaced container's health waits
// seconds; a 4 s probe timeout and five retries (the seed's: 2 s, three), so that probes slowed
// by a busy 2-core machine do not mark a good container unhealthy (seen: the dev stack's backup
// service, on a machine at load 20).
func (p *project) testStackHealth(t *testing.T, stack string, more ...string) {
	t.Helper()
	p.config(t, stack, append([]string{"set-all", "--path",
		"--plaintext", "healthcheckInterval=5s",
		"--plaintext", "healthcheckTimeout=4s",
		"--plaintext", "healthcheckRetries=5",
	}, more...)...)
}

// changes is what `preview` would do: every step that is not "same", by resource.
func (p *project) changes(t *testing.T, stack string, flags ...string) []string {
	t.Helper()
	out := p.must(t, append([]string{stack, "preview", "--json"}, flags...)...)
	var doc struct {
		Steps []struct {
			Op          string   `json:"op"`
			URN         string   `json:"urn"`
			DiffReasons []string `json:"diffReasons"`
		} `json:"steps"`
	}
	require.NoError(t, json.Unmarshal([]byte(jsonPart(out)), &doc), out)
	var changed []string
	for _, s := range doc.Steps {
		// --refresh adds a read of every resource; only what would change counts.
		if s.Op != "same" && s.Op != "refresh" {
			changed = append(changed, fmt.Sprintf("%s %s %v", s.Op, s.URN[strings.LastIndex(s.URN, "::")+2:], s.DiffReasons))
		}
	}
	sort.Strings(changed)
	return changed
}

// jsonPart drops what deploy.sh prints before pulumi's JSON document.
func jsonPart(out string) string {
	if i := strings.Index(out, "{"); i > 0 {
		return out[i:]
	}
	return out
}

// outputs are the stack's outputs, secrets shown.
func (p *project) outputs(t *testing.T, stack string) map[string]any {
	t.Helper()
	out := p.must(t, stack, "stack", "output", "--json", "--show-secrets")
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(jsonPart(out)), &m), out)
	return m
}

// urn finds the URN of the resource with the given logical name.
func (p *project) urn(t *testing.T, stack, name string) string {
	t.Helper()
	out := p.must(t, stack, "stack", "--show-urns")
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "urn:pulumi:") && strings.HasSuffix(f, "::"+name) {
			return f
		}
	}
	t.Fatalf("no resource %s in stack %s:\n%s", name, stack, out)
	return ""
}

// containers are the names of the containers that carry the stack's label.
func (p *project) containers(t *testing.T, stack string) []string {
	t.Helper()
	return p.labelled(t, stack, "{{.Names}}", "ps", "-a")
}

// labelled lists, sorted, the names (name, as the list's --format spells it) of the Docker
// objects that `docker <list...>` shows with the stack's label.
func (p *project) labelled(t *testing.T, stack, name string, list ...string) []string {
	t.Helper()
	out := p.engine.mustDocker(t, append(list, "--filter", "label=maricusco.stack="+stack, "--format", name)...)
	names := strings.Fields(out)
	sort.Strings(names)
	return names
}

// waitHealthy waits until every named container reports healthy.
func (p *project) waitHealthy(t *testing.T, names []string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var notYet []string
		for _, n := range names {
			if s, _ := p.engine.docker("inspect", "--format", "{{.State.Health.Status}}", n); s != "healthy" {
				notYet = append(notYet, n+"="+s)
			}
		}
		if len(notYet) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy after %s: %v\n%s", limit, notYet, p.lastProbes(names))
		}
		time.Sleep(time.Second)
	}
}

// lastProbes is what the last healthcheck probes of each container not healthy said: why a wait
// for health failed.
func (p *project) lastProbes(names []string) string {
	var why []string
	for _, n := range names {
		out, err := p.engine.docker("inspect", "--format",
			`{{.State.Health.Status}}{{range .State.Health.Log}} | exit {{.ExitCode}} at {{.End.Format "15:04:05"}}: {{printf "%.200s" .Output}}{{end}}`, n)
		if err != nil || !strings.HasPrefix(out, "healthy") {
			why = append(why, fmt.Sprintf("%s: %s", n, strings.TrimSpace(out)))
		}
	}
	return strings.Join(why, "\n")
}

// explainEdgeOnFailure logs, when the test fails, what nginx said of its upstreams (its error log
// is its stderr), before the stack is removed: a failed request's 502 is nginx's, and only its
// log says whether an instance refused, closed, or could not be resolved.
func explainEdgeOnFailure(t *testing.T, p *project) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		out, _ := p.engine.docker("logs", "--tail", "2000", "maricusco-lb")
		var said []string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "[error]") || strings.Contains(line, "[warn]") {
				said = append(said, line)
			}
		}
		t.Logf("nginx's errors and warnings, the last 20:\n%s", strings.Join(said[max(0, len(said)-20):], "\n"))
	})
}

// psql runs SQL in the postgres container over its local socket.
func (p *project) psql(t *testing.T, container, sql string) string {
	t.Helper()
	return p.engine.mustDocker(t, "exec", container, "psql", "-U", "maricusco", "-d", "maricusco", "-tAc", sql)
}

// cleanup removes what a stack left on the engine: containers, the network and the volumes
// Docker keeps on destroy.
func (p *project) cleanup(t *testing.T, stack string) {
	t.Helper()
	_, _ = p.run(stack, "config", "set", "protect", "false")
	_, _ = p.run(stack, "up", "--yes", "--skip-preview")
	_, _ = p.run(stack, "destroy", "--yes", "--skip-preview")
	for _, c := range p.containers(t, stack) {
		_, _ = p.engine.docker("rm", "-f", c)
	}
	for _, n := range stackNetworks {
		_, _ = p.engine.docker("network", "rm", n)
	}
	for _, v := range stackVolumes {
		_, _ = p.engine.docker("volume", "rm", v)
	}
}

// assertVolumesKept checks that every volume the stack keeps is still on the engine.
func (p *project) assertVolumesKept(t *testing.T, when string) {
	t.Helper()
	for _, v := range stackVolumes {
		_, err := p.engine.docker("volume", "inspect", v)
		assert.NoError(t, err, "%s is kept %s", v, when)
	}
}

// stackVolumes are the volumes every stack keeps, named as compose names them: the five data
// volumes and the backups.
var stackVolumes = []string{"maricusco_postgres_data", "maricusco_redis_data", "maricusco_chromadb_data",
	"maricusco_prometheus_data", "maricusco_grafana_data", "maricusco_backups"}

// stackNetworks are the stack's networks: the edge, the data services' and monitoring's.
var stackNetworks = []string{"maricusco-edge", "maricusco-data", "maricusco-monitoring"}

// load is a bounded request loop against a published URL, counting failed requests.
type load struct {
	sent, failed atomic.Int64
	stop         chan struct{}
	done         chan struct{}
	firstErr     atomic.Value
}

// startLoad sends GET requests to url with client, one every 50 ms, until stopped or for at most
// limit.
func startLoad(client *http.Client, url string, limit time.Duration) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			l.sent.Add(1)
			resp, err := client.Get(url)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				l.failed.Add(1)
				l.firstErr.CompareAndSwap(nil, err.Error())
			}
		}
	}()
	return l
}

// rollout is what one `up` under load did: how long it took, and the requests it failed.
type rollout struct {
	took         time.Duration
	sent, failed int64
	firstErr     any
}

func (r rollout) failures() string { return fmt.Sprintf("%d of %d", r.failed, r.sent) }

// requests is a bounded request loop against the app that counts failed requests.
type requests interface {
	finish() (sent, failed int64)
	first() any
}

func (l *load) first() any { return l.firstErr.Load() }

// requestLoop starts the project's request loop: by default through the edge, at the stack's
// appUrl, as a client that trusts its tlsCertificate.
func (p *project) requestLoop(t *testing.T) requests {
	if p.startRequests != nil {
		return p.startRequests(t)
	}
	client, url := p.edgeClient(t)
	return startLoad(client, url+"/", 10*time.Minute)
}

// edgeClient is a client of the stack's edge as a user's: it trusts the stack output
// tlsCertificate (and the extra PEM certificates given), and reaches every name on this machine,
// as curl --resolve does. It returns the stack's appUrl beside it.
func (p *project) edgeClient(t *testing.T, extraTrusted ...string) (*http.Client, string) {
	t.Helper()
	outputs := p.outputs(t, p.stack)
	appURL, _ := outputs["appUrl"].(string)
	u, err := neturl.Parse(appURL)
	require.NoError(t, err, "appUrl %q", appURL)
	port := u.Port()
	if port == "" {
		port = "443"
	}
	roots := x509.NewCertPool()
	chain, _ := outputs["tlsCertificate"].(string)
	for _, pem := range append(extraTrusted, chain) {
		require.True(t, roots.AppendCertsFromPEM([]byte(pem)), "tlsCertificate is PEM")
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, appURL
}

// issueEdge gives the stack's edge a certificate of files for hostname, as an operator does with
// one from their CA (`config set --path edge.certificate`, `config set --secret edgePrivateKey`),
// and returns the chain.
func (p *project) issueEdge(t *testing.T, stack, hostname string) string {
	t.Helper()
	chain, key, err := stacks.NewSelfSignedEdge("e2e-ca", hostname, time.Now())
	require.NoError(t, err)
	p.config(t, stack, "set", "--path", "edge.hostname", hostname)
	p.config(t, stack, "set", "--path", "edge.certificate", "--", chain)
	p.config(t, stack, "set", "--secret", stacks.EdgePrivateKeyKey, "--", key)
	return chain
}

// upUnderLoad sets one config key and runs `up` while the request loop hits the app.
func (p *project) upUnderLoad(t *testing.T, stack, key, value string) rollout {
	t.Helper()
	l := p.requestLoop(t)
	p.config(t, stack, "set", key, value)
	took := p.up(t, stack)
	sent, failed := l.finish()
	return rollout{took: took, sent: sent, failed: failed, firstErr: l.first()}
}

// finish stops the loop and returns the requests sent and failed.
func (l *load) finish() (sent, failed int64) {
	close(l.stop)
	<-l.done
	return l.sent.Load(), l.failed.Load()
}

// imageRefs are the image refs the shipped stacks deploy, by stand-in role.
func imageRefs(t *testing.T) map[string][]string {
	t.Helper()
	refs, err := standInRefs()
	require.NoError(t, err)
	return refs
}

// standInRefs are imageRefs, prod's first.
func standInRefs() (map[string][]string, error) {
	roles := map[string]string{"app": "app", "postgres": "postgres", "redis": "redis", "chromadb": "chromadb",
		"prometheus": "prometheus", "grafana": "grafana", "lb": "nginx"}
	refs := map[string][]string{}
	for _, stack := range []string{"prod", "dev"} {
		raw, err := os.ReadFile(filepath.Join(repoRoot, "Pulumi."+stack+".yaml"))
		if err != nil {
			return nil, err
		}
		byService, err := stacks.ImageRefs(raw)
		if err != nil {
			return nil, fmt.Errorf("%s's image refs: %w", stack, err)
		}
		for service, ref := range byService {
			role, ok := roles[service]
			if !ok {
				return nil, fmt.Errorf("no stand-in role for %s", service)
			}
			if !slices.Contains(refs[role], ref) {
				refs[role] = append(refs[role], ref)
			}
		}
	}
	return refs, nil
}

// programDefault is the program's default of a scalar config key, as Pulumi.yaml declares it.
func programDefault(t *testing.T, key string) string {
	t.Helper()
	for _, k := range stacks.Keys() {
		if k.Name == key && k.Default != nil {
			return fmt.Sprint(k.Default)
		}
	}
	t.Fatalf("the program has no default for %s", key)
	return ""
}

// buildImages readies on e the stand-in images under the stacks' refs and the rolled app image.
// build.sh makes them once, on the machine's engine; another engine loads them from there, as
// docker-modern.sh advises: on a fresh machine, build.sh on Docker 26 took minutes of the busy
// suite's CPU where a load takes seconds, and the images are the same, IDs included.
func buildImages(t *testing.T, e engine) {
	t.Helper()
	machine := machineEngine(t)
	standIns.once.Do(func() { standIns.refs, standIns.err = buildStandIns(machine) })
	require.NoError(t, standIns.err, "REAL-ENGINE SUITE CANNOT RUN: the stand-in images did not build")
	if e.host != machine.host {
		// One load at a time: a second test asking for the same engine then finds the images there.
		loading.Lock()
		defer loading.Unlock()
		loadImages(t, machine, e, standIns.refs)
	}
}

var loading sync.Mutex

// standIns are the images build.sh made on the machine's engine, once for the suite.
var standIns struct {
	once sync.Once
	refs []string
	err  error
}

// buildStandIns runs build.sh on the machine's engine for every ref the stacks deploy, builds the
// rolled app image, and returns all their refs.
func buildStandIns(machine engine) ([]string, error) {
	byRole, err := standInRefs()
	if err != nil {
		return nil, err
	}
	var lines bytes.Buffer
	var refs []string
	for role, ofRole := range byRole {
		for _, ref := range ofRole {
			fmt.Fprintf(&lines, "%s %s\n", role, ref)
			refs = append(refs, ref)
		}
	}
	cmd := exec.Command("bash", filepath.Join(sharedDir, "e2e-images", "build.sh"))
	cmd.Stdin = &lines
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+machine.host)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build.sh: %w:\n%s", err, tail(string(out), 30))
	}
	dir, err := os.MkdirTemp("", "maricusco-rolled-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	dockerfile := "FROM " + byRole["app"][0] + "\nLABEL version=" + rolledAppImage + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return nil, err
	}
	if out, err := machine.docker("build", "-q", "-t", rolledAppImage, dir); err != nil {
		return nil, fmt.Errorf("the rolled app image: %w: %s", err, out)
	}
	return append(refs, rolledAppImage), nil
}

// loadImages copies into to the images of refs that it lacks or holds under another ID.
func loadImages(t *testing.T, from, to engine, refs []string) {
	t.Helper()
	var missing []string
	for _, ref := range refs {
		want := from.mustDocker(t, "image", "inspect", "--format", "{{.Id}}", ref)
		if got, err := to.docker("image", "inspect", "--format", "{{.Id}}", ref); err != nil || got != want {
			missing = append(missing, ref)
		}
	}
	if len(missing) == 0 {
		return
	}
	images := filepath.Join(t.TempDir(), "images.tar")
	from.mustDocker(t, append([]string{"save", "-o", images}, missing...)...)
	to.mustDocker(t, "load", "-q", "-i", images)
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// shiftPorts moves every port the stack file publishes by offset, the edge's included, so that a
// stack on the second engine can run beside one on the first: both publish on this host.
func (p *project) shiftPorts(t *testing.T, stack string, offset int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(p.dir, "Pulumi."+stack+".yaml"))
	require.NoError(t, err)
	var file struct {
		Config struct {
			Ports map[string]string `yaml:"maricusco:ports"`
			Edge  map[string]any    `yaml:"maricusco:edge"`
		} `yaml:"config"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &file))
	// What the program publishes when a stack file names no port: the edge (stacks/edge.go).
	bindings := map[string]string{"edge.https": "0.0.0.0:443", "edge.http": "0.0.0.0:80"}
	for service, binding := range file.Config.Ports {
		bindings["ports."+service] = binding
	}
	for _, key := range []string{"https", "http"} {
		if b, ok := file.Config.Edge[key].(string); ok {
			bindings["edge."+key] = b
		}
	}
	p.portOffset = offset
	setAll := []string{"set-all", "--path"}
	for key, binding := range bindings {
		ip, port, ok := strings.Cut(binding, ":")
		require.True(t, ok, "%s is ip:port", key)
		n, err := strconv.Atoi(port)
		require.NoError(t, err)
		setAll = append(setAll, "--plaintext", fmt.Sprintf("%s=%s:%d", key, ip, n+offset))
	}
	p.config(t, stack, setAll...)
}

// assertNetworksSplit proves the networks' split from inside the containers: Grafana and nginx
// reach neither PostgreSQL, Redis nor ChromaDB, by name or by address, while the app does and
// Grafana reaches Prometheus.
func (p *project) assertNetworksSplit(t *testing.T) {
	t.Helper()
	// bash's /dev/tcp: every stand-in image has bash (the real Grafana and nginx images do not,
	// which is why this is the suite's probe and no healthcheck's).
	connects := func(from, host string, port int) bool {
		_, err := p.engine.docker("exec", from, "timeout", "3", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", host, port))
		return err == nil
	}
	address := func(c string) string {
		return p.engine.mustDocker(t, "inspect", "--format", `{{(index .NetworkSettings.Networks "maricusco-data").IPAddress}}`, c)
	}
	data := map[string]int{"postgres": 5432, "redis": 6379, "chromadb": 8000}
	require.True(t, connects("maricusco-app-1", "postgres", 5432), "the app reaches PostgreSQL: the probe works")
	require.True(t, connects("maricusco-grafana", "prometheus", 9090), "Grafana reaches Prometheus: the probe works")
	require.True(t, connects("maricusco-lb", "app", 8000), "nginx reaches the app: the probe works there too")
	for _, outside := range []string{"maricusco-grafana", "maricusco-lb"} {
		for service, port := range data {
			assert.False(t, connects(outside, service, port), "%s cannot reach %s by name", outside, service)
			assert.False(t, connects(outside, address("maricusco-"+service), port), "%s cannot reach %s by address", outside, service)
		}
	}
}

// assertEdge proves what the edge serves, at appURL as the stack outputs it and redirectURL,
// where plain HTTP answers: the app and Grafana's sub-path over TLS to a client that trusts the
// stack's tlsCertificate, HTTP/2, HSTS where asked for, TLS 1.1 refused and 1.2 served, and a
// redirect to https for plain HTTP.
func (p *project) assertEdge(t *testing.T, appURL, redirectURL string, hsts bool) {
	t.Helper()
	client, url := p.edgeClient(t)
	require.Equal(t, appURL, url, "the stack output appUrl")
	for path, want := range map[string]int{"/health": http.StatusOK, "/grafana/api/health": http.StatusOK, "/grafana/login": http.StatusOK} {
		resp, err := client.Get(url + path)
		require.NoError(t, err, "%s through the edge, trusting tlsCertificate", path)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, path)
		assert.Equal(t, 2, resp.ProtoMajor, "%s over HTTP/2", path)
		if hsts {
			assert.Equal(t, "max-age=63072000", resp.Header.Get("Strict-Transport-Security"), path)
		} else {
			assert.Empty(t, resp.Header.Get("Strict-Transport-Security"), path)
		}
	}
	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := plain.Get(redirectURL + "/health?x=1")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode, "plain HTTP only redirects")
	host := strings.TrimPrefix(redirectURL, "http://")
	host, _, _ = strings.Cut(host, ":")
	wantPort := ""
	if u, err := neturl.Parse(appURL); err == nil && u.Port() != "" {
		wantPort = ":" + u.Port()
	}
	assert.Equal(t, "https://"+host+wantPort+"/health?x=1", resp.Header.Get("Location"))

	tlsConfig := client.Transport.(*http.Transport).TLSClientConfig
	u, err := neturl.Parse(appURL)
	require.NoError(t, err)
	port := u.Port()
	if port == "" {
		port = "443"
	}
	handshake := func(minVersion, maxVersion uint16) error {
		cfg := &tls.Config{RootCAs: tlsConfig.RootCAs, ServerName: u.Hostname(), MinVersion: minVersion, MaxVersion: maxVersion}
		conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), cfg)
		if err == nil {
			conn.Close()
		}
		return err
	}
	// For its version, not only for want of a shared cipher (no TLS 1.1 cipher is on the list).
	assert.ErrorContains(t, handshake(tls.VersionTLS10, tls.VersionTLS11), "protocol version not supported", "a TLS 1.1 handshake is refused")
	assert.NoError(t, handshake(tls.VersionTLS12, tls.VersionTLS12), "a TLS 1.2 handshake succeeds")
}
