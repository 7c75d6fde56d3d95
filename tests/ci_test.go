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
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("maricusco-app: update paused")
		}
	})
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
		t.Fatalf("rows lost: 3 of 31\nthe last restored: row 28")
	})
}

func TestPasses(t *testing.T) {
	t.Parallel()
	t.Log("a passing test's line")
}
`

// goTestLog runs go test -v on a module of the one test file suite, with args, and returns its log.
func goTestLog(t *testing.T, suite string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module interleaved\n\ngo 1.22\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "suite_test.go"), []byte(suite), 0o644))
	run := exec.Command("go", append([]string{"test", "-v", "-count=1"}, append(args, ".")...)...)
	run.Dir = dir
	out, err := run.CombinedOutput()
	require.Error(t, err, "the suite fails:\n%s", out)
	log := filepath.Join(dir, "log")
	require.NoError(t, os.WriteFile(log, out, 0o644))
	return log
}

// whyFailed is what scripts/why-failed.sh prints of log.
func whyFailed(t *testing.T, log string, args ...string) string {
	t.Helper()
	digest, err := exec.Command(filepath.Join(repoRoot, "scripts", "why-failed.sh"), append([]string{log}, args...)...).CombinedOutput()
	require.NoError(t, err, "%s", digest)
	return string(digest)
}

func TestWhyFailedNamesEachFailedStepAndWhatItSaid(t *testing.T) {
	got := whyFailed(t, goTestLog(t, interleavedSuite))
	lines := strings.Split(strings.TrimSpace(got), "\n")
	require.Len(t, lines, 4, "what two failed steps and one test's cleanup said:\n%s", got)
	assert.Equal(t, "TestScaling: maricusco-app: update paused", withoutSource(lines[0]), "a test comes before its failed steps")
	assert.Equal(t, []string{
		"TestRecovery/restore_brings_the_rows_back: rows lost: 3 of 31",
		"TestRecovery/restore_brings_the_rows_back: the last restored: row 28",
		"TestScaling/scaling_3_to_1_serves_every_request: first failure: status 502",
	}, []string{withoutSource(lines[1]), withoutSource(lines[2]), withoutSource(lines[3])}, "the failed steps come last")
	for _, unwanted := range []string{"FIGURE", "nothing wrong here", "a passing test's line", "=== ", "--- FAIL"} {
		assert.NotContains(t, got, unwanted)
	}
	assert.Len(t, strings.Split(strings.TrimSpace(whyFailed(t, goTestLog(t, interleavedSuite), "1")), "\n"), 3,
		"one line per test at the most")
}

// withoutSource drops the "suite_test.go:NN: " of a test's line, and the indent around it.
func withoutSource(line string) string {
	name, said, _ := strings.Cut(line, ": ")
	if _, rest, ok := strings.Cut(said, ".go:"); ok {
		_, said, _ = strings.Cut(rest, ": ")
	}
	return name + ": " + strings.TrimSpace(said)
}

func TestWhyFailedShowsWhatATimeoutWasRunning(t *testing.T) {
	got := whyFailed(t, goTestLog(t, `package interleaved

import (
	"testing"
	"time"
)

func TestRestore(t *testing.T) {
	t.Run("waits for a base backup", func(t *testing.T) { time.Sleep(time.Minute) })
}
`, "-timeout", "1s"))
	assert.Contains(t, got, "panic: test timed out after 1s")
	assert.Contains(t, got, "TestRestore/waits_for_a_base_backup")
}
