package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mattn/go-shellwords"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// started is deploy.sh running in its own process group, as a CI job's shell runs it.
type started struct {
	cmd   *exec.Cmd
	out   *strings.Builder
	begun time.Time
	done  chan error
}

func (p *project) start(t *testing.T, args ...string) *started {
	t.Helper()
	cmd := p.command("./deploy.sh", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	s := &started{cmd: cmd, out: &out, begun: time.Now(), done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return s
}

// killWhen sends SIGKILL to the deploy's whole process group as soon as ready holds, as a CI
// runner that dies does; it fails the test if the deploy ends first.
func (s *started) killWhen(t *testing.T, what string, ready func() bool) {
	t.Helper()
	for !ready() {
		select {
		case err := <-s.done:
			t.Fatalf("the deploy ended (%v) before %s:\n%s", err, what, tail(s.out.String(), 30))
		case <-time.After(200 * time.Millisecond):
		}
	}
	require.NoError(t, syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL))
	<-s.done
}

// wait is the deploy's exit status and how long it ran.
func (s *started) wait() (int, time.Duration) {
	err := <-s.done
	took := time.Since(s.begun)
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), took
	}
	return 0, took
}

// locks are the file backend's lock files of the stack.
func (p *project) locks(t *testing.T, stack string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(p.dir, ".pulumi-state", ".pulumi", "locks", "organization", "maricusco", stack, "*.json"))
	require.NoError(t, err)
	return m
}

// recovered runs the plain up an operator runs after a killed deploy, and checks the stack
// converged: all healthy, and a preview with nothing to change.
func (p *project) recovered(t *testing.T, stack string, names []string) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	out := p.must(t, stack, "up", "--yes", "--skip-preview")
	p.waitHealthy(t, names, 2*time.Minute)
	took := time.Since(start).Round(time.Second)
	assert.Empty(t, p.changes(t, stack), "recovered, the stack is at rest")
	return took, out
}

// TestTheDeployPathOnDocker26 kills deploys as a dying CI runner does and proves the next plain up
// recovers by itself, and runs prod's path through CI (a saved plan, applied after approval), on
// Docker 26, whose healthchecks' start interval keeps the waits short.
func TestTheDeployPathOnDocker26(t *testing.T) {
	requireRealEngine(t)
	const stack = "dev"
	e := modernEngine(t)
	p := forStack(t, e, stack)
	// Its own ports, so that it can run beside a stack on the machine's engine.
	p.shiftPorts(t, stack, 10000)

	t.Run("killed while the first containers are created, the next up converges", func(t *testing.T) {
		s := p.start(t, stack, "up", "--yes", "--skip-preview")
		s.killWhen(t, "its first container", func() bool { return len(p.containers(t, stack)) > 0 })
		require.NotEmpty(t, p.locks(t, stack), "a killed deploy leaves the file backend's lock")
		took, out := p.recovered(t, stack, devContainers)
		assert.Contains(t, out, "that process is gone", "the stale lock is named and removed")
		assert.Contains(t, out, "pending", "the pending creates are settled")
		assert.Empty(t, p.locks(t, stack))
		assert.Equal(t, devContainers, p.containers(t, stack))
		figure(t, e.name, "dev recovery after a deploy killed while creating containers (s)", took.Seconds())
	})

	t.Run("killed while waiting for the app's health, no row is lost and the next up converges", func(t *testing.T) {
		p.psql(t, container("postgres"), "CREATE TABLE e2e_kept AS SELECT g AS id FROM generate_series(1, 1000) g")
		rolled := e.mustDocker(t, "image", "inspect", "--format", "{{.Id}}", rolledAppImage)
		p.config(t, stack, "set", "appImage", rolledAppImage)
		s := p.start(t, stack, "up", "--yes", "--skip-preview")
		s.killWhen(t, "the new app container waits for health", func() bool {
			state, _ := e.docker("inspect", "--format", "{{.Image}} {{.State.Health.Status}}", container("app-1"))
			return state == rolled+" starting"
		})
		took, _ := p.recovered(t, stack, devContainers)
		assert.Equal(t, rolled, e.mustDocker(t, "inspect", "--format", "{{.Image}}", container("app-1")))
		assert.Equal(t, "1000", p.psql(t, container("postgres"), "SELECT count(*) FROM e2e_kept"))
		figure(t, e.name, "dev recovery after a deploy killed waiting for the app's health (s)", took.Seconds())
		figure(t, e.name, "rows lost of 1000 across a killed deploy and its recovery", 1000-len(strings.Fields(p.psql(t, container("postgres"), "SELECT id FROM e2e_kept"))))
		p.psql(t, container("postgres"), "DROP TABLE e2e_kept")
	})

	t.Run("of two deploys started together, the second is refused at once and the first goes on", func(t *testing.T) {
		lockfile := filepath.Join(p.dir, ".deploy-"+stack+".lock")
		require.NoError(t, os.Remove(lockfile), "the earlier deploys left the machine's lock file, unlocked")
		first := p.start(t, stack, "up", "--yes", "--skip-preview")
		require.Eventually(t, func() bool {
			pid, _ := os.ReadFile(lockfile)
			return strings.TrimSpace(string(pid)) != ""
		}, time.Minute, 50*time.Millisecond, "the first deploy takes the machine's lock")
		second := p.start(t, stack, "up", "--yes", "--skip-preview")
		code, took := second.wait()
		assert.Equal(t, 3, code, second.out.String())
		assert.Contains(t, second.out.String(), "another deploy of the dev stack runs on this machine")
		select {
		case <-first.done:
			t.Fatal("the first deploy ended before the second was refused")
		default:
		}
		firstCode, _ := first.wait()
		assert.Zero(t, firstCode, first.out.String())
		figure(t, e.name, "a second deploy refused while one runs (s)", took.Round(10*time.Millisecond).Seconds())
	})

	t.Run("a lock of another host stays until its ID is named", func(t *testing.T) {
		dir := filepath.Join(p.dir, ".pulumi-state", ".pulumi", "locks", "organization", "maricusco", stack)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		lock, err := json.Marshal(map[string]any{"pid": 1, "username": "ci", "hostname": "runner-elsewhere", "timestamp": time.Now().UTC()})
		require.NoError(t, err)
		file := filepath.Join(dir, "e2e-foreign.json")
		require.NoError(t, os.WriteFile(file, lock, 0o644))

		out, err := p.run(stack, "preview")
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, out)
		assert.Equal(t, 3, exit.ExitCode(), out)
		assert.Contains(t, out, "runner-elsewhere")
		assert.Contains(t, out, "--take-lock e2e-foreign")
		assert.FileExists(t, file, "another host's lock is never removed silently")

		out = p.must(t, stack, "preview", "--take-lock", "e2e-foreign")
		assert.Contains(t, out, "taken over")
		assert.NoFileExists(t, file)
	})

	t.Run("a saved plan is applied as previewed, and refused once the stack moved", func(t *testing.T) {
		// The command lines of deploy.yml's prod-preview and prod jobs.
		plan := filepath.Join(t.TempDir(), "plan.json")
		p.config(t, stack, "set", "prometheusScrapeInterval", "20s")
		p.must(t, stack, "preview", "--diff", "--non-interactive", "--save-plan", plan)
		p.must(t, stack, "up", "--yes", "--diff", "--non-interactive", "--plan", plan)
		assert.Empty(t, p.changes(t, stack), "the plan brought the stack to its config")

		stale := filepath.Join(t.TempDir(), "stale.json")
		p.config(t, stack, "set", "prometheusScrapeInterval", "25s")
		p.must(t, stack, "preview", "--diff", "--non-interactive", "--save-plan", stale)
		p.config(t, stack, "rm", "prometheusScrapeInterval")
		before := e.mustDocker(t, "inspect", "--format", "{{.Id}}", container("prometheus"))
		out, err := p.run(stack, "up", "--yes", "--diff", "--non-interactive", "--plan", stale)
		require.Error(t, err, "a plan the stack moved away from must not apply:\n%s", tail(out, 20))
		assert.Contains(t, out, "violates plan")
		assert.Equal(t, before, e.mustDocker(t, "inspect", "--format", "{{.Id}}", container("prometheus")), "nothing was applied")
		p.up(t, stack)
		assert.Empty(t, p.changes(t, stack))
	})

	t.Run("every command line the workflows run works, in their order, on dev", func(t *testing.T) {
		tmp := t.TempDir()
		lines := workflowCommands(t)
		require.GreaterOrEqual(t, len(lines), 6, "the workflows' deploy.sh and drift.sh lines: %q", lines)
		for _, line := range lines {
			// As a job runs it, on this suite's stack: prod's lines too, in dev's place.
			line = strings.NewReplacer(`"$STACK"`, stack, `"$RUNNER_TEMP`, `"`+tmp, " prod ", " "+stack+" ").Replace(line)
			args, err := shellwords.Parse(line)
			require.NoError(t, err, line)
			out, err := p.script(args[0], args[1:]...)
			require.NoError(t, err, "%s:\n%s", line, tail(out, 30))
		}
		assert.Empty(t, p.changes(t, stack))
	})

	t.Run("a container lost out of band comes back with a plain up", func(t *testing.T) {
		e.mustDocker(t, "rm", "-f", container("redis"))
		took := p.up(t, stack)
		p.waitHealthy(t, []string{container("redis")}, time.Minute)
		assert.Empty(t, p.changes(t, stack))
		figure(t, e.name, "dev plain `up` that recreates a lost container (s)", took.Seconds())
	})
}

// workflowCommands are the project commands the workflows run (deploy.sh, scripts/drift.sh), in
// the order of their files and lines, without the redirections around them.
func workflowCommands(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, ".github", "workflows", "*.yml"))
	require.NoError(t, err)
	var lines []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, line := range strings.Split(string(raw), "\n") {
			line = strings.TrimPrefix(strings.TrimSpace(line), "run: ")
			if !strings.HasPrefix(line, "./deploy.sh ") && !strings.HasPrefix(line, "scripts/drift.sh ") {
				continue
			}
			line, _, _ = strings.Cut(line, " 2>&1")
			line, _, _ = strings.Cut(line, " |")
			lines = append(lines, line)
		}
	}
	return lines
}
