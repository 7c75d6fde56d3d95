package deploysteps

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/engine"
)

// When MARICUSCO_ASKING_STEP names a file, this test binary is a step that asks an engine over
// ssh:// and waits for the answer: what the signal test interrupts.
func TestMain(m *testing.M) {
	if os.Getenv("MARICUSCO_ASKING_STEP") != "" {
		steps["asking"] = func(*flag.FlagSet, []string) error {
			_, err := engine.Docker{}.APIVersion("ssh://root@10.0.0.1")
			return err
		}
		os.Exit(Run("asking", nil, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestAnInterruptedStepEndsItsQuestionsAndTheirChildren(t *testing.T) {
	bin := t.TempDir()
	childPID := filepath.Join(bin, "child.pid")
	// A docker CLI that asks over ssh: its ssh child, in the CLI's process group, outlives it.
	fake := "#!/bin/sh\nsleep 300 &\necho $! > " + childPID + "\nwait\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "docker"), []byte(fake), 0o755))
	step := exec.Command(os.Args[0])
	step.Env = append(os.Environ(), "MARICUSCO_ASKING_STEP=1", "PATH="+bin+":"+os.Getenv("PATH"))
	var stderr strings.Builder
	step.Stderr = &stderr
	require.NoError(t, step.Start())
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(childPID)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	}, time.Minute, 20*time.Millisecond, "the step's CLI started its child")
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	// As a terminal's Ctrl-C, to the step alone: the CLI runs in a process group of its own.
	require.NoError(t, step.Process.Signal(os.Interrupt))
	err := step.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "stderr: %s", stderr.String())
	assert.Equal(t, 130, exit.ExitCode())
	assert.Contains(t, stderr.String(), "asking: interrupt: stopped")
	assert.Eventually(t, func() bool { return syscall.Kill(pid, 0) != nil || zombie(pid) }, 10*time.Second, 50*time.Millisecond,
		"the CLI's child ended with the step")
}

// zombie tells whether the process has ended and waits for its parent to reap it.
func zombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return strings.HasPrefix(after, "Z")
}
