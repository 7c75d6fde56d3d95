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

// modernEngine is the second engine, Docker 26, started once for the suite when it is not running
// and stopped after the suite. Asked for, the suite fails when it cannot start.
func modernEngine(t *testing.T) engine {
	t.Helper()
	exclusive(t, "modern")
	modern.once.Do(func() {
		script := modernScript()
		modern.startedHere = exec.Command("bash", script, "host").Run() != nil
		out, err := exec.Command("bash", script, "start").CombinedOutput()
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

// modernScript is docker-modern.sh, which starts and stops the second engine and installs Compose v2.
func modernScript() string { return filepath.Join(sharedDir, "docker-modern", "docker-modern.sh") }

// stopModernEngine stops the second engine if the suite started it.
func stopModernEngine() {
	if modern.startedHere {
		_ = exec.Command("bash", modernScript(), "stop").Run()
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

// TestDocker26 runs both stacks on the current engine (on ports of their own), where healthchecks get their start
// interval: each deployed first by the code of unchangedSince, then previewed with this tree,
// which must change nothing, then taken over by it.
func TestDocker26(t *testing.T) {
	requireRealEngine(t)
	e := modernEngine(t)
	base := unchangedSince(t)
	for _, stack := range []string{"dev", "prod"} {
		t.Run(stack, func(t *testing.T) {
			p := forStack(t, e, stack)
			p.backend = "file://" + t.TempDir()
			old := p.atCommit(t, base)
			// The stack's config as forStack left it (prod's edge certificate), for the old code.
			file := "Pulumi." + stack + ".yaml"
			raw, err := os.ReadFile(filepath.Join(p.dir, file))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(old.dir, file), raw, 0o644))
			old.shiftPorts(t, stack, 10000) // beside the lane of the machine's engine
			took := old.up(t, stack)
			figure(t, e.name, fmt.Sprintf("%s `up` from nothing to all healthy, by %.7s (s)", stack, base), took.Seconds())
			// The stack file holds the stack's encryption salt and its config, as the old code left it.
			raw, err = os.ReadFile(filepath.Join(old.dir, file))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(p.dir, file), raw, 0o644))

			changes := p.changes(t, stack)
			assert.Empty(t, changes, "this tree replaces or updates nothing %.7s deployed", base)
			figure(t, e.name, fmt.Sprintf("%s changes in this tree's preview of a stack deployed by %.7s", stack, base), len(changes))
			p.up(t, stack)
			containers := p.containers(t, stack)
			p.waitHealthy(t, containers, time.Minute)
			interval := e.mustDocker(t, "inspect", "--format", "{{json .Config.Healthcheck.StartInterval}}", container("postgres"))
			want, err := time.ParseDuration(programDefault(t, "healthcheckStartInterval"))
			require.NoError(t, err)
			assert.Equal(t, strconv.FormatInt(want.Nanoseconds(), 10), interval, "the engine takes the start interval, so the program sends it")
			p.must(t, stack, "refresh", "--yes", "--skip-preview")
			assert.Empty(t, p.changes(t, stack), "no change after refresh either")
			if stack == "prod" {
				p.config(t, stack, "set", "protect", "false")
				p.up(t, stack)
			}
			p.must(t, stack, "destroy", "--yes", "--skip-preview")
		})
	}
}
