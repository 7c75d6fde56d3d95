package deploysteps

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/maricusco/infra/engine"
	"github.com/maricusco/infra/recovery"
)

// recoverStack readies a stack for a deploy after an earlier one was killed, as deploy.sh runs it
// before every preview, up, refresh and destroy: stale locks of the file backend are removed,
// provider plugins the killed CLI left running are stopped, and pending operations are settled
// from what the Docker engine has (package recovery). It prints what it did, and nothing when
// there was nothing to do.
//
//	bin/infra recover -stack dev [-take-lock ID]
//
// It reads PULUMI_BACKEND_URL, and PULUMI for the CLI. Exit status 3: a lock is held by a live
// deploy or another host; 1: anything else that stops the deploy.
func recoverStack(fs *flag.FlagSet, args []string) error {
	takeOverFlag := fs.String("take-lock", "", "remove the lock with this ID even though its holder may be alive")
	stack, err := parseStack(fs, args, "the stack to recover")
	if err != nil {
		return err
	}
	takeOver := *takeOverFlag
	backend := os.Getenv("PULUMI_BACKEND_URL")
	project, err := projectName("Pulumi.yaml")
	if err != nil {
		return err
	}
	procs, err := recovery.LocalProcesses()
	if err != nil {
		return err
	}
	if u, err := url.Parse(backend); err == nil && u.Scheme == "file" {
		if err := unlock(procs, u.Path, project, stack, takeOver); err != nil {
			return err
		}
	} else if takeOver != "" {
		return errors.New("--take-lock applies to the local file backend; with another backend use `pulumi cancel`")
	}
	orphans, err := procs.OrphanPlugins(backend)
	if err != nil {
		return err
	}
	if len(orphans) > 0 {
		if err := procs.Stop(orphans, 10*time.Second); err != nil {
			return err
		}
		recoverSays("stopped %d provider plugin(s) a killed deploy left running (pids %v)", len(orphans), orphans)
	}
	return settle(stack)
}

func unlock(procs recovery.Processes, stateDir, project, stack, takeOver string) error {
	locks, err := recovery.ReadLocks(stateDir, project, stack)
	if err != nil {
		return err
	}
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("this host's name: %w", err)
	}
	held, taken := false, false
	for _, l := range locks {
		v := recovery.Judge(l, host, stillRunning(procs), takeOver)
		if !v.Remove {
			fmt.Fprintf(os.Stderr, "the %s stack is locked: %s\n", stack, v.Why)
			held = true
			continue
		}
		// The file backend keeps each lock's attributes beside it, in <lock>.attrs.
		for _, path := range []string{l.Path, l.Path + ".attrs"} {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("removing lock %s: %w", path, err)
			}
		}
		taken = taken || l.ID == takeOver
		recoverSays("%s", v.Why)
	}
	if takeOver != "" && !taken {
		return fmt.Errorf("--take-lock %s: the %s stack has no lock with that ID (its locks are in %s)", takeOver, stack, recovery.LockDir(stateDir, project, stack))
	}
	if held {
		return errHeld
	}
	return nil
}

// settle resolves the stack's pending operations, if it has any, through export and import.
func settle(stack string) error {
	export, err := recovery.StackExport(stack)
	if err != nil || len(export.Deployment.PendingOperations) == 0 {
		return err
	}
	recoverSays("the last deploy of %s was interrupted with %d operation(s) pending; settling them from what the engine has", stack, len(export.Deployment.PendingOperations))
	resolved, did, err := recovery.Resolve(export, dockerAt(export.EngineHost()))
	for _, line := range did {
		recoverSays("%s", line)
	}
	if err != nil {
		return err
	}
	out, err := resolved.Marshal()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "recover")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "state.json")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		return err
	}
	_, err = recovery.Pulumi("stack", "import", "--stack", stack, "--file", file)
	return err
}

// dockerAt is the engine at one host.
type dockerAt string

func (h dockerAt) Find(kind, name string) (engine.Object, bool, error) {
	return engine.Docker{}.Find(string(h), kind, name)
}

func (h dockerAt) RemoveContainer(name string) error {
	return engine.Docker{}.RemoveContainer(string(h), name)
}

func recoverSays(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "recover: "+format+"\n", args...)
}

// projectName is the project's name in Pulumi.yaml, which names the directory of its locks.
func projectName(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the project: %w", err)
	}
	var project struct{ Name string }
	if err := yaml.Unmarshal(raw, &project); err != nil || project.Name == "" {
		return "", fmt.Errorf("%s names no project: %v", path, err)
	}
	return project.Name, nil
}

// stillRunning gives a CLI killed a moment ago (its SIGKILL still in flight on a busy machine) the
// time to end before its lock is judged held.
func stillRunning(procs recovery.Processes) func(pid int) bool {
	return func(pid int) bool {
		deadline := time.Now().Add(3 * time.Second)
		for procs.PulumiRunning(pid) {
			if time.Now().After(deadline) {
				return true
			}
			time.Sleep(100 * time.Millisecond)
		}
		return false
	}
}
