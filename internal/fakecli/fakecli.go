// Package fakecli puts stand-ins for command-line tools on a test's PATH, for the tests of the
// code that runs them: the engine package's questions and the deploy steps that ask them.
package fakecli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// DockerWithAChild puts on the test's PATH a docker CLI that asks as over ssh: its ssh child holds
// the CLI's output open and outlives it. The func returned waits for the child's pid, and the
// test's end kills the child if it still runs.
func DockerWithAChild(t *testing.T) (childPID func() int) {
	t.Helper()
	bin := t.TempDir()
	pidFile := filepath.Join(bin, "child.pid")
	fake := "#!/bin/sh\nsleep 300 &\necho $! > " + pidFile + "\nwait\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "docker"), []byte(fake), 0o755))
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return func() int {
		t.Helper()
		var pid int
		require.Eventually(t, func() bool {
			b, err := os.ReadFile(pidFile)
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			return err == nil && pid > 0
		}, time.Minute, 20*time.Millisecond, "the CLI started its child")
		t.Cleanup(func() {
			if Alive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL) // a failed run leaves no sleep behind
			}
		})
		return pid
	}
}

// Alive tells whether the process runs: a killed child that its new parent has not reaped yet is a
// zombie, which signal 0 still finds.
func Alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(after, "Z")
}
