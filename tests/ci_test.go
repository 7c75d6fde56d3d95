package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A suite whose parallel tests interleave their output and print figures, as the real-engine
// suite's do: one subtest fails with t.Errorf (no testify fields), one with testify, one passes.
const interleavedSuite = `package interleaved

import (
	"testing"
	"time"
)

func TestScaling(t *testing.T) {
	t.Parallel()
	t.Log("FIGURE | lane host | TestScaling | 1 to 2 |")
	t.Run("scaling 3 to 1 serves every request", func(t *testing.T) {
		time.Sleep(30 * time.Millisecond)
		t.Log("FIGURE | dev | failed requests | 1 of 90 |")
		t.Errorf("first failure: status 502")
	})
	t.Run("a later step passes", func(t *testing.T) { t.Log("nothing wrong here") })
}

func TestRecovery(t *testing.T) {
	t.Parallel()
	for i := 0; i < 3; i++ {
		t.Logf("FIGURE | modern | step %d |", i)
		time.Sleep(10 * time.Millisecond)
	}
	t.Run("restore brings the rows back", func(t *testing.T) {
		t.Fatalf("rows lost: 3 of 31")
	})
}

func TestPasses(t *testing.T) {
	t.Parallel()
	t.Log("a passing test's line")
}
`

func TestWhyFailedNamesEachFailedStepAndWhatItSaid(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module interleaved\n\ngo 1.22\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "suite_test.go"), []byte(interleavedSuite), 0o644))
	run := exec.Command("go", "test", "-v", "-count=1", ".")
	run.Dir = dir
	out, err := run.CombinedOutput()
	require.Error(t, err, "the suite fails:\n%s", out)
	log := filepath.Join(dir, "log")
	require.NoError(t, os.WriteFile(log, out, 0o644))

	digest, err := exec.Command(filepath.Join(repoRoot, "scripts", "why-failed.sh"), log).CombinedOutput()
	require.NoError(t, err, "%s", digest)
	got := string(digest)
	assert.Contains(t, got, "TestScaling/scaling_3_to_1_serves_every_request: ")
	assert.Contains(t, got, "first failure: status 502")
	assert.Contains(t, got, "TestRecovery/restore_brings_the_rows_back: ")
	assert.Contains(t, got, "rows lost: 3 of 31")
	for _, unwanted := range []string{"FIGURE", "nothing wrong here", "a passing test's line", "=== ", "--- FAIL"} {
		assert.NotContains(t, got, unwanted)
	}
	assert.Len(t, strings.Split(strings.TrimSpace(got), "\n"), 3, "a line each, and go test's FAIL:\n%s", got)
}

func TestCIPrintsWhyTheRealEngineSuiteFailed(t *testing.T) {
	ci, err := os.ReadFile(filepath.Join(repoRoot, ".ci", "run"))
	require.NoError(t, err)
	assert.Contains(t, string(ci), `scripts/why-failed.sh "$log"`)
}
