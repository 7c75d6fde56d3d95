package recovery

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// program copies a system binary under a name, as the process name /proc shows comes from it.
func program(t *testing.T, dir, from, name string) string {
	t.Helper()
	src, err := exec.LookPath(from)
	require.NoError(t, err)
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, data, 0o755))
	return path
}

func start(t *testing.T, env string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	return cmd
}

func TestOnlyPluginsOfThisBackendWithoutALiveCLIAreOrphans(t *testing.T) {
	dir := t.TempDir()
	plugin := program(t, dir, "sleep", "pulumi-resource-docker")
	cli := program(t, dir, "sh", "pulumi")
	const backend = "PULUMI_BACKEND_URL=file:///state/of/this/test"

	orphan := start(t, backend, plugin, "60")
	underCLI := start(t, backend, cli, "-c", plugin+" 60 & wait")
	otherBackend := start(t, "PULUMI_BACKEND_URL=file:///another", plugin, "60")
	procs, err := LocalProcesses()
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		all, _ := procs.fs.AllProcs()
		for _, p := range all {
			if stat, err := p.Stat(); err == nil && stat.PPID == underCLI.Process.Pid && stat.Comm == pluginPrefix {
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond, "the CLI starts its plugin")

	found, err := procs.OrphanPlugins("file:///state/of/this/test")
	require.NoError(t, err)
	assert.Equal(t, []int{orphan.Process.Pid}, found, "not the CLI's plugin %d, nor another backend's %d", underCLI.Process.Pid, otherBackend.Process.Pid)

	require.NoError(t, procs.Stop(found, 5*time.Second))
	assert.False(t, procs.PulumiRunning(orphan.Process.Pid))
	assert.True(t, procs.PulumiRunning(underCLI.Process.Pid), "the CLI runs")
	assert.False(t, procs.PulumiRunning(otherBackend.Process.Pid), "a plugin is not the CLI")
}

func TestAKilledCLINotYetReapedHoldsNoLock(t *testing.T) {
	cli := program(t, t.TempDir(), "sleep", "pulumi")
	cmd := exec.Command(cli, "60")
	require.NoError(t, cmd.Start())
	procs, err := LocalProcesses()
	require.NoError(t, err)
	require.True(t, procs.PulumiRunning(cmd.Process.Pid), "a running CLI holds its lock")

	require.NoError(t, cmd.Process.Kill())
	// Not waited for: the process stays a zombie, with its name, until reaped.
	require.Eventually(t, func() bool {
		proc, err := procs.fs.Proc(cmd.Process.Pid)
		if err != nil {
			return false
		}
		stat, err := proc.Stat()
		return err == nil && stat.State == "Z"
	}, 5*time.Second, 10*time.Millisecond)
	assert.False(t, procs.PulumiRunning(cmd.Process.Pid), "a zombie runs nothing")
	_ = cmd.Wait()
}
