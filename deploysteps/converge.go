package deploysteps

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
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
// convergeConfig timeout, or the engine could not be asked.
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
	errs := make([]error, len(services))
	var wg sync.WaitGroup
	for i, s := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = awaitConverged(host, s)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// awaitConverged polls the service every second until it has converged or its timeout passed.
func awaitConverged(host string, s recovery.SwarmService) error {
	start := time.Now()
	for {
		r, err := engine.Docker{}.Rollout(host, s.Name)
		if err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
		if r.Converged() {
			if waited := time.Since(start); waited >= time.Second {
				fmt.Fprintf(os.Stderr, "converge: %s converged %.0f s after up returned (%s)\n", s.Name, waited.Seconds(), r)
			}
			return nil
		}
		if time.Since(start) > s.Timeout {
			return fmt.Errorf("service %s has not converged %s after up returned: %s; `docker service ps %s` says why", s.Name, s.Timeout, r, s.Name)
		}
		time.Sleep(time.Second)
	}
}
