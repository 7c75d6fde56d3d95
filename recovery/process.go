package recovery

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// cliName is the Pulumi CLI's process name; its plugins are named pulumi-resource-<provider>.
const (
	cliName      = "pulumi"
	pluginPrefix = "pulumi-resource"
)

// Processes reads this host's processes through /proc.
type Processes struct{ fs procfs.FS }

// LocalProcesses is the host's /proc.
func LocalProcesses() (Processes, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return Processes{}, fmt.Errorf("reading /proc: %w", err)
	}
	return Processes{fs}, nil
}

// PulumiRunning says whether pid is a running Pulumi CLI: a pid reused by another program since
// the lock was written does not hold it, and neither does a killed CLI that init has not reaped
// yet (a zombie keeps its name for a moment, longer on a busy machine).
func (p Processes) PulumiRunning(pid int) bool {
	proc, err := p.fs.Proc(pid)
	if err != nil || !alive(proc) {
		return false
	}
	comm, err := proc.Comm()
	return err == nil && comm == cliName
}

// alive says whether the process runs: a zombie, dead but not reaped, does not.
func alive(proc procfs.Proc) bool {
	stat, err := proc.Stat()
	return err == nil && stat.State != "Z" && stat.State != "X"
}

// OrphanPlugins are the provider plugins started for the backend whose CLI is gone: a CLI killed
// with SIGKILL leaves them running (each in its own process group), and one of them may still be
// creating a container the next deploy is about to create again.
func (p Processes) OrphanPlugins(backendURL string) ([]int, error) {
	procs, err := p.fs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var orphans []int
	for _, proc := range procs {
		comm, err := proc.Comm()
		if err != nil || !strings.HasPrefix(comm, pluginPrefix) {
			continue
		}
		env, err := proc.Environ()
		if err != nil || !slices.Contains(env, "PULUMI_BACKEND_URL="+backendURL) {
			continue
		}
		if !p.hasCLIAncestor(proc) {
			orphans = append(orphans, proc.PID)
		}
	}
	return orphans, nil
}

func (p Processes) hasCLIAncestor(proc procfs.Proc) bool {
	for {
		stat, err := proc.Stat()
		if err != nil || stat.PPID <= 1 {
			return false
		}
		if proc, err = p.fs.Proc(stat.PPID); err != nil {
			return false
		}
		if comm, err := proc.Comm(); err == nil && comm == cliName {
			return true
		}
	}
}

// Stop kills the processes and waits, up to limit, until they are gone.
func (p Processes) Stop(pids []int, limit time.Duration) error {
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("stopping plugin %d: %w", pid, err)
		}
	}
	deadline := time.Now().Add(limit)
	for _, pid := range pids {
		for {
			proc, err := p.fs.Proc(pid)
			if err != nil || !alive(proc) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("plugin %d still runs %s after SIGKILL", pid, limit)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}
