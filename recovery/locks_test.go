package recovery

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJudge(t *testing.T) {
	since := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	lock := Lock{ID: "3f2a", Pid: 4242, Username: "ci", Hostname: "runner-1", Timestamp: since}
	running := func(pid int) bool { return pid == 4242 }
	gone := func(int) bool { return false }
	for _, tc := range []struct {
		rule     string
		host     string
		running  func(int) bool
		takeOver string
		remove   bool
		says     []string
	}{
		{"a lock whose process is gone is removed", "runner-1", gone, "", true, []string{"3f2a", "pid 4242", "gone"}},
		{"a lock of a running pulumi stays", "runner-1", running, "", false, []string{"pid 4242 of ci on host runner-1 since 2026-12-02T03:00:00Z", "--take-lock 3f2a"}},
		{"another host's lock stays, even when no such pid runs here", "laptop", gone, "", false, []string{"another host", "runner-1", "--take-lock 3f2a"}},
		{"another host's lock goes when its ID is named", "laptop", gone, "3f2a", true, []string{"taken over"}},
		{"a live lock goes when its ID is named", "runner-1", running, "3f2a", true, []string{"taken over"}},
		{"naming another lock's ID takes nothing", "laptop", gone, "9999", false, []string{"another host"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			v := Judge(lock, tc.host, tc.running, tc.takeOver)
			assert.Equal(t, tc.remove, v.Remove)
			for _, s := range tc.says {
				assert.Contains(t, v.Why, s)
			}
		})
	}
}

func TestReadLocksReadsTheFileBackendsLocksOfOneStack(t *testing.T) {
	state := t.TempDir()
	dir := LockDir(state, "maricusco", "dev")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.json"), []byte(`{"pid":2,"username":"u","hostname":"h","timestamp":"2026-12-02T02:00:00Z"}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"pid":1,"username":"u","hostname":"h","timestamp":"2026-12-02T03:00:00Z"}`), 0o644))
	other := LockDir(state, "maricusco", "prod")
	require.NoError(t, os.MkdirAll(other, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(other, "c.json"), []byte(`{"pid":3}`), 0o644))

	locks, err := ReadLocks(state, "maricusco", "dev")
	require.NoError(t, err)
	require.Len(t, locks, 2)
	assert.Equal(t, "b", locks[0].ID, "oldest first")
	assert.Equal(t, 2, locks[0].Pid)
	assert.Equal(t, filepath.Join(dir, "a.json"), locks[1].Path)

	none, err := ReadLocks(state, "maricusco", "staging")
	require.NoError(t, err)
	assert.Empty(t, none, "a stack never locked has no lock")
}

func TestALockFileThatIsNotJSONIsAnError(t *testing.T) {
	state := t.TempDir()
	dir := LockDir(state, "maricusco", "dev")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.json"), []byte("garbage"), 0o644))
	_, err := ReadLocks(state, "maricusco", "dev")
	assert.ErrorContains(t, err, "x.json")
}
