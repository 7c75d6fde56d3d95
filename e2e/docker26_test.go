package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// modernEngine is the second engine, Docker 26, for a test of its lane (exclusive).
func modernEngine(t *testing.T) engine {
	t.Helper()
	exclusive(t, "modern")
	return startedModernEngine(t)
}

// startedModernEngine is the second engine, started once for the suite when it is not running and
// stopped after the suite, whatever lane asks. Asked for, the suite fails when it cannot start.
func startedModernEngine(t *testing.T) engine {
	t.Helper()
	modern.once.Do(func() {
		_, notRunning := runModernScript("host")
		modern.startedHere = notRunning != nil
		out, err := runModernScript("start")
		if err != nil {
			modern.err = fmt.Errorf("the second engine (Docker 26) did not start: %v: %s", err, tail(string(out), 5))
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		modern.engine, modern.err = describe(lines[len(lines)-1])
	})
	require.NoError(t, modern.err)
	return modern.engine
}

var modern struct {
	once        sync.Once
	engine      engine
	err         error
	startedHere bool
}

// modernScriptRuns keeps docker-modern.sh, which starts and stops the second engine and installs
// Compose v2, to one run at a time: on a fresh machine its first start and the Compose install
// both run apt-get in one directory, and the second run found it locked.
var modernScriptRuns sync.Mutex

func runModernScript(args ...string) ([]byte, error) {
	modernScriptRuns.Lock()
	defer modernScriptRuns.Unlock()
	script := filepath.Join(sharedDir, "docker-modern", "docker-modern.sh")
	return exec.Command("bash", append([]string{script}, args...)...).CombinedOutput()
}

// stopModernEngine stops the second engine if the suite started it.
func stopModernEngine() {
	if modern.startedHere {
		_, _ = runModernScript("stop")
	}
}

// unchangedSince is the commit whose deployments this tree must leave as they are: the last one
// that changed the Docker objects on purpose. A refactor that would replace or update anything
// a deployed stack holds fails here; a deliberate change moves the commit in the file.
func unchangedSince(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "unchanged-since"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// atCommit is the project as it was at commit, sharing p's engine and state backend.
func (p *project) atCommit(t *testing.T, commit string) *project {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("bash", "-o", "pipefail", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "archive", repoRoot, commit, dir).CombinedOutput()
	require.NoError(t, err, "git archive %s (the suite needs the repository's history): %s", commit, out)
	return &project{dir: dir, engine: p.engine, backend: p.backend}
}

// TestDocker26 runs the dev stack on the current engine (on ports of its own), where healthchecks
// get their start interval: deployed first by the code of unchangedSince, then taken over by this
// tree (takeOverFromUnchangedSince). TestProdLifecycle begins with the same for prod.
func TestDocker26(t *testing.T) {
	requireRealEngine(t)
	const stack = "dev"
	e := modernEngine(t)
	p := forStack(t, e, stack)
	p.backend = "file://" + t.TempDir()
	p.shiftPorts(t, stack, 10000) // beside the lane of the machine's engine
	p.takeOverFromUnchangedSince(t, stack)
	t.Run("an app image that never passes its healthcheck fails the up in healthyTimeout, naming it, and the next up brings the app back", func(t *testing.T) {
		buildBrokenAppImage(t, e)
		p.config(t, stack, "set", "healthyTimeout", "15s")
		p.config(t, stack, "set", "appImage", brokenAppImage)
		start := time.Now()
		out, err := p.run(stack, "up", "--yes", "--skip-preview")
		require.Error(t, err, "the up fails:\n%s", tail(out, 20))
		figure(t, e.name, "dev up of an app image that never passes its healthcheck, to its failure (s)", time.Since(start).Round(time.Second).Seconds())
		// An engine with a start interval probes the container itself: the gate reads what it found.
		assert.Contains(t, out, "maricusco-app-1 was not reported healthy by its engine within 15s (healthyTimeout); the engine reports it starting")
		p.config(t, stack, "rm", "appImage")
		p.config(t, stack, "rm", "healthyTimeout")
		p.up(t, stack)
		p.waitHealthy(t, p.containers(t, stack), 10*time.Second)
	})
	p.must(t, stack, "destroy", "--yes", "--skip-preview")
}

// takeOverFromUnchangedSince deploys the stack from nothing with the code of unchangedSince, on
// p's config and state backend, then previews it with this tree, which must change nothing, takes
// it over with one up to all healthy, checks that the engine got the start interval, and that a
// refresh changes nothing either.
func (p *project) takeOverFromUnchangedSince(t *testing.T, stack string) {
	t.Helper()
	e, base := p.engine, unchangedSince(t)
	require.NotEmpty(t, p.backend, "the old code and this tree share a state backend")
	old := p.atCommit(t, base)
	// The stack file holds the stack's encryption salt and its config: the old code reads this
	// tree's, and this tree reads it back as the old code left it.
	file := "Pulumi." + stack + ".yaml"
	copyFile(t, filepath.Join(p.dir, file), filepath.Join(old.dir, file))
	took := old.up(t, stack)
	figure(t, e.name, fmt.Sprintf("%s `up` from nothing to all healthy, by %.7s (s)", stack, base), took.Seconds())
	copyFile(t, filepath.Join(old.dir, file), filepath.Join(p.dir, file))

	changes := p.changes(t, stack)
	assert.Empty(t, changes, "this tree replaces or updates nothing %.7s deployed", base)
	figure(t, e.name, fmt.Sprintf("%s changes in this tree's preview of a stack deployed by %.7s", stack, base), len(changes))
	p.up(t, stack)
	p.waitHealthy(t, p.containers(t, stack), time.Minute)
	interval := e.mustDocker(t, "inspect", "--format", "{{json .Config.Healthcheck.StartInterval}}", container("postgres"))
	want, err := time.ParseDuration(programDefault(t, "healthcheckStartInterval"))
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatInt(want.Nanoseconds(), 10), interval, "the engine takes the start interval, so the program sends it")
	p.must(t, stack, "refresh", "--yes", "--skip-preview")
	assert.Empty(t, p.changes(t, stack), "no change after refresh either")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, raw, 0o644))
}
