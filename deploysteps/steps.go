// Package deploysteps holds the steps deploy.sh runs around Pulumi: readying a stack after a
// killed deploy, the self-signed edge's certificate, the swarm's convergence, the secret keys.
// They are commands of the program's own binary (`bin/infra <step> -stack <stack>`), not binaries
// of their own: each would link the same Pulumi SDK, and a deploy from a fresh clone, as every CI
// deploy job is, would link four of them before Pulumi starts instead of one.
package deploysteps

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/maricusco/infra/engine"
)

// steps are the commands, by the name deploy.sh gives them. Each declares its flags on a set
// named after it and parses its arguments there.
var steps = map[string]func(fs *flag.FlagSet, args []string) error{
	"recover":     recoverStack,
	"edge-cert":   edgeCert,
	"converge":    converge,
	"secret-keys": secretKeys,
}

// errHeld is a lock the deploy must not take: exit status 3, as deploy.sh's own lock.
var errHeld = errors.New("held")

// Run runs the step name with its arguments, prints why it failed, and returns the exit status:
// 0, 3 when the stack is locked by a live deploy or another host, 2 for a command line it cannot
// take, 1 for anything else that stops the deploy.
func Run(name string, args []string, stderr io.Writer) int {
	step, ok := steps[name]
	if !ok {
		fmt.Fprintf(stderr, "unknown step %q: without arguments this binary is the Pulumi program; its steps are %s\n", name, strings.Join(slices.Sorted(maps.Keys(steps)), ", "))
		return 2
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	defer endQuestionsOnSignal(name, stderr)()
	err := step(fs, args)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHeld):
		return 3
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// endQuestionsOnSignal makes an interrupt (Ctrl-C, SIGTERM) end the step's questions to the
// engine, their docker CLIs and ssh logins with them, and exit with 130. The returned func lets
// signals go again once the step returned; after an interrupt, it waits for that exit instead, so
// that the step's failure, its questions ended, is not taken for the reason it stopped.
func endQuestionsOnSignal(name string, stderr io.Writer) (release func()) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	var caught atomic.Bool
	go func() {
		if sig, ok := <-signals; ok {
			caught.Store(true)
			engine.EndQuestions()
			fmt.Fprintf(stderr, "%s: %v: stopped\n", name, sig)
			os.Exit(130)
		}
	}()
	return func() {
		if caught.Load() {
			select {}
		}
		signal.Stop(signals)
		close(signals)
	}
}

// errUsage is a command line the step cannot take: exit status 2, as deploy.sh's own usage errors.
var errUsage = errors.New("usage")

// parse parses args into the flags declared on fs; arguments beyond them are refused.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}

// parseStack declares -stack (what help says of it) beside the step's other flags, parses args
// and returns the stack, which they must name.
func parseStack(fs *flag.FlagSet, args []string, help string) (string, error) {
	stack := fs.String("stack", "", help)
	if err := parse(fs, args); err != nil {
		return "", err
	}
	if *stack == "" {
		return "", fmt.Errorf("%w: -stack is required", errUsage)
	}
	return *stack, nil
}
