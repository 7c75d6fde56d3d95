package components

import (
	"fmt"
	"sync"
	"time"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Health is a container's health as its engine reports it.
type Health struct {
	// Status is starting, healthy or unhealthy.
	Status string
	// LastOutput is what its last probe printed.
	LastOutput string
}

// HealthGate is the program's own wait for the containers an up creates, in place of the docker
// provider's. The provider learns a container's health from the engine, once a second; the
// engine knows it only after its first probe, which an engine without a start interval (before
// Docker 25) runs a whole interval (30 s) after the start. The gate reads the engine's health
// four times a second, and where the engine has no start interval it runs the test of a
// container that something waits for itself, from the start: what needs the container is
// created as soon as the test passes, as the engine would find it with a start interval. The
// `up` still ends only once the engine reports every new container healthy.
type HealthGate struct {
	// Engine runs the probes and reports health.
	Engine HealthEngine
	// Host is the engine the stack deploys to.
	Host string
	// Existing are the IDs of the stack's containers before this deployment, by name: as with the
	// provider's wait, only a container this deployment creates is waited for.
	Existing map[string]string
	// Timing bounds each probe (Timeout) and the whole wait (WaitTimeout).
	Timing HealthTiming
	// DryRun is a preview, which creates nothing and waits for nothing.
	DryRun bool
}

// probeEvery is how often the gate runs a new container's healthcheck test, as often as the
// engine's default start interval: each run is an exec in the container, which costs a busy
// 2-core machine more than reading the engine's health.
const probeEvery = 500 * time.Millisecond

// readEvery is how often the gate reads a new container's health from its engine.
const readEvery = 250 * time.Millisecond

// gated is a container's Workload whose Ready resolves once the container passed its healthcheck
// and whose Healthy once its engine reports it healthy. Ready is made only when a workload waits
// for the container: nothing is probed that nothing needs. Where the engine has a start interval
// it probes the container that often itself, so Ready reads the engine's health too; only an
// engine without one (before Docker 25) makes the gate run the test.
func (g *HealthGate) gated(c *docker.Container, spec ContainerSpec) Workload {
	untilHealthy := func() error { return g.untilHealthy(spec.Name) }
	passed := untilHealthy
	if g.Timing.StartInterval == 0 {
		passed = func() error { return g.untilProbePasses(spec) }
	}
	ready := sync.OnceValue(func() pulumi.ResourceArrayOutput {
		return c.ID().ApplyT(func(id pulumi.ID) ([]pulumi.Resource, error) {
			if g.waitsFor(spec.Name, id) {
				if err := passed(); err != nil {
					return nil, err
				}
			}
			return []pulumi.Resource{c}, nil
		}).(pulumi.ResourceArrayOutput)
	})
	healthy := c.ID().ApplyT(func(id pulumi.ID) (string, error) {
		if g.waitsFor(spec.Name, id) {
			return "", untilHealthy()
		}
		return "", nil
	}).(pulumi.StringOutput)
	return Workload{Resource: c, Name: c.Name, ready: ready, Healthy: healthy}
}

// waitsFor tells whether the container of that name and ID is one this deployment created: a
// preview waits for nothing, and a container that ran before the up is not waited for.
func (g *HealthGate) waitsFor(name string, id pulumi.ID) bool {
	return !g.DryRun && g.Existing[name] != string(id)
}

// untilProbePasses runs the container's healthcheck test until it passes, for at most the wait
// timeout.
func (g *HealthGate) untilProbePasses(spec ContainerSpec) error {
	return g.until(spec.Name, "did not pass its healthcheck", probeEvery, func() (bool, error) {
		return g.Engine.Probe(g.Host, spec.Name, spec.HealthCheck, g.Timing.Timeout)
	})
}

// untilHealthy waits for the engine to report the container healthy, for at most the wait
// timeout: without a start interval, its first probe comes an interval after the start.
func (g *HealthGate) untilHealthy(name string) error {
	return g.until(name, "was not reported healthy by its engine", readEvery, func() (bool, error) {
		h, err := g.Engine.Health(g.Host, name)
		return h.Status == "healthy", err
	})
}

// until asks done every interval until it holds, for at most the wait timeout. An engine that
// cannot answer for a moment (a container restarting refuses an exec) is asked again, as the
// provider's wait did; the last error it gave goes into the one that ends the wait.
func (g *HealthGate) until(name, failure string, interval time.Duration, done func() (bool, error)) error {
	deadline := time.Now().Add(g.Timing.WaitTimeout)
	for {
		ok, err := done()
		if ok && err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return g.notHealthy(name, failure, err)
		}
		time.Sleep(interval)
	}
}

// notHealthy says which container failed to become healthy in time, and what its engine's last
// probe of it printed, or why the engine could not be asked.
func (g *HealthGate) notHealthy(name, what string, lastErr error) error {
	msg := fmt.Sprintf("%s %s within %s (healthyTimeout)", name, what, g.Timing.WaitTimeout)
	if lastErr != nil {
		return fmt.Errorf("%s: %w", msg, lastErr)
	}
	if h, err := g.Engine.Health(g.Host, name); err == nil {
		msg += fmt.Sprintf("; the engine reports it %s", h.Status)
		if h.LastOutput != "" {
			msg += fmt.Sprintf(", its last probe printed: %q", h.LastOutput)
		}
	}
	return fmt.Errorf("%s", msg)
}
