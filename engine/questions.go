package engine

import (
	"context"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// timeout bounds every question: an engine that does not answer must not hang a deploy.
var timeout = 20 * time.Second

// The questions under way: EndQuestions ends them all.
var (
	questions, endQuestions = context.WithCancel(context.Background())
	asking                  sync.WaitGroup
)

// question is the context of one question to an engine, ended by its timeout or EndQuestions, and
// the func to call when it is answered.
func question() (context.Context, func()) {
	asking.Add(1)
	ctx, cancel := context.WithTimeout(questions, timeout)
	return ctx, func() {
		cancel()
		asking.Done()
	}
}

// EndQuestions ends every question under way, the docker CLIs asking and their ssh children with
// them, and returns once they have ended. A deploy step calls it when it is interrupted: its
// CLIs run in process groups of their own (dockerCLI), which a terminal's Ctrl-C does not reach.
// Questions asked after it end at once.
func EndQuestions() {
	endQuestions()
	asking.Wait()
}

// dockerCLI is the docker CLI asking host, in a process group of its own that the end of ctx
// kills whole: over ssh://, the CLI runs ssh, which would outlive a killed CLI, hold its output
// open and leave its login on the manager.
func dockerCLI(ctx context.Context, host string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "docker", append([]string{"--host", host}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	return cmd
}
