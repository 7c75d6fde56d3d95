package deploysteps

import (
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/engine"
	"github.com/maricusco/infra/internal/fakecli"
)

// With MARICUSCO_ASKING_STEP set, this test binary is a step that asks an engine over
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
	childPID := fakecli.DockerWithAChild(t)
	step := exec.Command(os.Args[0])
	step.Env = append(os.Environ(), "MARICUSCO_ASKING_STEP=1") // the fake CLI's PATH with it
	var stderr strings.Builder
	step.Stderr = &stderr
	require.NoError(t, step.Start())
	pid := childPID()

	// As a terminal's Ctrl-C, to the step alone: the CLI runs in a process group of its own.
	require.NoError(t, step.Process.Signal(os.Interrupt))
	err := step.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "stderr: %s", stderr.String())
	assert.Equal(t, 130, exit.ExitCode())
	assert.Contains(t, stderr.String(), "asking: interrupt: stopped")
	assert.Eventually(t, func() bool { return !fakecli.Alive(pid) }, 10*time.Second, 50*time.Millisecond,
		"the CLI's child ended with the step")
}
