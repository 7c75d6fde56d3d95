package deploysteps

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/maricusco/infra/engine"
	"github.com/maricusco/infra/recovery"
)

// converge waits, after `pulumi up` on the swarm target, until every service of the stack runs as
// declared, as deploy.sh runs it: the docker provider's own wait ends when each replica
// slot has a running task, which during a start-first roll is before the old task has stopped
// or while the update is still marked under way (docs/cluster.md). It prints nothing when the
// services have converged, and each one it waited for.
//
//	bin/infra converge -stack prod
//
// It reads PULUMI for the CLI. Exit status 1: a service did not converge within its
// convergeConfig timeout, or the engine did not answer within it.
func converge(fs *flag.FlagSet, args []string) error {
	stack, err := parseStack(fs, args, "the stack whose services to wait for")
	if err != nil {
		return err
	}
	export, err := recovery.StackExport(stack)
	if err != nil {
		return err
	}
	services, err := export.SwarmServices()
	if err != nil {
		return err
	}
	host := export.EngineHost()
	rollouts := func(names []string) (map[string]engine.Rollout, error) { return engine.Docker{}.Rollouts(host, names) }
	return awaitConverged(services, rollouts, time.Second, os.Stderr)
}

// awaitConverged asks every pause how far the services have rolled, all of them in one question,
// until each has converged or passed its timeout. An engine that does not answer is asked again
// (a busy manager's ssh login can take seconds) until the longest timeout of the services still
// waited for has passed: only an engine silent that long fails the step, with its last error.
func awaitConverged(services []recovery.SwarmService, rollouts func(names []string) (map[string]engine.Rollout, error), pause time.Duration, log io.Writer) error {
	start := time.Now()
	var errs []error
	if len(services) == 0 {
		return nil
	}
	for pending := services; ; time.Sleep(pause) {
		names := make([]string, len(pending))
		longest := time.Duration(0)
		for i, s := range pending {
			names[i], longest = s.Name, max(longest, s.Timeout)
		}
		rs, err := rollouts(names)
		waited := time.Since(start)
		if errors.Is(err, engine.ErrNoService) {
			return errors.Join(append(errs, fmt.Errorf("services %s: %w", strings.Join(names, ", "), err))...)
		}
		if err != nil {
			if waited > longest {
				return errors.Join(append(errs, fmt.Errorf("services %s: no answer from the engine within %s after up returned: %w", strings.Join(names, ", "), longest, err))...)
			}
			fmt.Fprintf(log, "converge: asking again, the engine did not answer: %v\n", err)
			continue
		}
		var still []recovery.SwarmService
		for _, s := range pending {
			r, answered := rs[s.Name]
			switch {
			case answered && r.Converged():
				if waited >= time.Second {
					fmt.Fprintf(log, "converge: %s converged %.0f s after up returned (%s)\n", s.Name, waited.Seconds(), r)
				}
			case waited > s.Timeout:
				errs = append(errs, fmt.Errorf("service %s has not converged %s after up returned: %s; `docker service ps %s` says why", s.Name, s.Timeout, r, s.Name))
			default:
				still = append(still, s)
			}
		}
		if pending = still; len(pending) == 0 {
			return errors.Join(errs...)
		}
	}
}
