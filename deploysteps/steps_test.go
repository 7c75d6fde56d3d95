package deploysteps

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAStepsExitStatusSaysWhyItStopped(t *testing.T) {
	for _, tc := range []struct {
		rule   string
		err    error
		status int
	}{
		{"a step that succeeds exits 0", nil, 0},
		{"a held lock exits 3, the refusal already printed", fmt.Errorf("the dev stack: %w", errHeld), 3},
		{"a command line it cannot take exits 2", fmt.Errorf("%w: -stack is required", errUsage), 2},
		{"anything else exits 1", errors.New("the engine did not answer"), 1},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			steps["test-step"] = func(*flag.FlagSet, []string) error { return tc.err }
			defer delete(steps, "test-step")
			var stderr bytes.Buffer
			assert.Equal(t, tc.status, Run("test-step", nil, &stderr))
			if tc.status == 1 || tc.status == 2 {
				assert.Equal(t, "test-step: "+tc.err.Error()+"\n", stderr.String(), "the step is named with its error")
			} else {
				assert.Empty(t, stderr.String())
			}
		})
	}
}

func TestAnUnknownStepIsRefusedNamingTheSteps(t *testing.T) {
	var stderr bytes.Buffer
	assert.Equal(t, 2, Run("recovr", nil, &stderr))
	assert.Contains(t, stderr.String(), `unknown step "recovr"`)
	assert.Contains(t, stderr.String(), "converge, edge-cert, recover, secret-keys")
}

func TestEveryStackStepRequiresTheStack(t *testing.T) {
	for _, name := range []string{"recover", "edge-cert", "converge"} {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			assert.Equal(t, 2, Run(name, nil, &stderr))
			assert.Contains(t, stderr.String(), name+": usage: -stack is required")
		})
	}
}
