// Package recovery puts a stack back in a state a deploy can start from after a deploy was killed:
// it removes the file backend's locks whose process is gone, stops the provider plugins the
// killed CLI left running, and resolves the operations the state still records as pending
// against what the Docker engine really has.
package recovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Lock is one lock file of Pulumi's file backend, as the CLI writes it when an operation starts
// (pkg/backend/diy/lock.go: pid, username, hostname, timestamp).
type Lock struct {
	ID        string    `json:"-"`
	Path      string    `json:"-"`
	Pid       int       `json:"pid"`
	Username  string    `json:"username"`
	Hostname  string    `json:"hostname"`
	Timestamp time.Time `json:"timestamp"`
}

// Holder says who holds the lock since when, in an operator's words.
func (l Lock) Holder() string {
	return fmt.Sprintf("pid %d of %s on host %s since %s", l.Pid, l.Username, l.Hostname, l.Timestamp.UTC().Format(time.RFC3339))
}

// LockDir is where the file backend rooted at stateDir keeps the locks of a project's stack.
func LockDir(stateDir, project, stack string) string {
	return filepath.Join(stateDir, ".pulumi", "locks", "organization", project, stack)
}

// ReadLocks reads every lock of the stack; a stack never locked has none.
func ReadLocks(stateDir, project, stack string) ([]Lock, error) {
	dir := LockDir(stateDir, project, stack)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the stack's locks: %w", err)
	}
	var locks []Lock
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading lock %s: %w", path, err)
		}
		l := Lock{ID: strings.TrimSuffix(e.Name(), ".json"), Path: path}
		if err := json.Unmarshal(data, &l); err != nil {
			return nil, fmt.Errorf("lock %s is not a Pulumi lock: %w", path, err)
		}
		locks = append(locks, l)
	}
	sort.Slice(locks, func(i, j int) bool { return locks[i].Timestamp.Before(locks[j].Timestamp) })
	return locks, nil
}

// Verdict is what to do with one lock.
type Verdict struct {
	Remove bool
	// Why explains the decision, for the log when removed and for the error when not.
	Why string
}

// Judge decides on a lock found before a deploy starts, which deploy.sh runs only while it holds
// the machine's deploy lock of the stack: a lock of this host whose process is gone was left by a
// killed run and goes; a live process's lock, or another host's (whose processes this host cannot
// see), stays unless the operator names its ID to take it over.
func Judge(l Lock, hostname string, pulumiRunning func(pid int) bool, takeOver string) Verdict {
	switch {
	case takeOver != "" && takeOver == l.ID:
		return Verdict{true, fmt.Sprintf("lock %s (%s) taken over as asked with --take-lock", l.ID, l.Holder())}
	case l.Hostname != hostname:
		return Verdict{false, fmt.Sprintf("lock %s is held by %s, another host: it may be deploying now. Wait for it; if that run is gone, take the lock over with `--take-lock %s`", l.ID, l.Holder(), l.ID)}
	case pulumiRunning(l.Pid):
		return Verdict{false, fmt.Sprintf("lock %s is held by %s, a pulumi process still running: wait for it, or stop it; `--take-lock %s` takes the lock from it", l.ID, l.Holder(), l.ID)}
	default:
		return Verdict{true, fmt.Sprintf("lock %s (%s) removed: that process is gone, killed before it could unlock", l.ID, l.Holder())}
	}
}
