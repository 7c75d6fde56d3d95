package tests

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/stacks"
)

// healthchecks is an engine whose containers pass their healthchecks and are reported healthy,
// but for those named in failing (their tests fail) and starting (never reported healthy).
type healthchecks struct {
	failing, starting map[string]bool
	mu                sync.Mutex
	probed            map[string]int
}

func (h *healthchecks) option() stacks.Option {
	return stacks.WithEngineHealthchecks(func(_, name string, test []string, _ time.Duration) (bool, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.probed[name]++
		return !h.failing[name], nil
	}, func(_, name string) (stacks.Health, error) {
		if h.failing[name] || h.starting[name] {
			return stacks.Health{Status: "starting", LastOutput: "connection refused"}, nil
		}
		return stacks.Health{Status: "healthy"}, nil
	})
}

func newHealthchecks(failing, starting []string) *healthchecks {
	h := &healthchecks{failing: map[string]bool{}, starting: map[string]bool{}, probed: map[string]int{}}
	for _, n := range failing {
		h.failing[n] = true
	}
	for _, n := range starting {
		h.starting[n] = true
	}
	return h
}

// onDocker20 is an engine without a start interval (API 1.41), where the gate runs the tests.
var onDocker20 = stacks.WithEngineAPIVersion(func(string) (string, error) { return "1.41", nil })

func TestTheProgramWaitsForTheContainersAnUpCreates(t *testing.T) {
	dev := loadStack(t, "dev").with("healthyTimeout", "10s")

	t.Run("what needs a service is declared only once the service's healthcheck passed", func(t *testing.T) {
		for _, tc := range []struct {
			engine string
			option stacks.Option
			probes bool
		}{
			{"without a start interval, the program runs the test", onDocker20, true},
			{"with one, the program reads what the engine found", stacks.WithEngineAPIVersion(func(string) (string, error) { return "1.45", nil }), false},
		} {
			t.Run(tc.engine, func(t *testing.T) {
				h := newHealthchecks([]string{container("postgres")}, nil)
				res, err := run(t, dev, tc.option, h.option())
				require.Error(t, err)
				assert.ErrorContains(t, err, "maricusco-postgres ")
				assert.ErrorContains(t, err, " within 10s (healthyTimeout); the engine reports it starting, its last probe printed: \"connection refused\"")
				assert.Equal(t, tc.probes, h.probed[container("postgres")] > 1, "the program runs the test again and again: %d runs", h.probed[container("postgres")])
				declared := res.Containers()
				for _, waits := range []string{"app-1", "backup"} {
					assert.NotContains(t, declared, container(waits), "%s waits for postgres", waits)
				}
				assert.Contains(t, declared, container("redis"), "what does not need postgres is not held back")
			})
		}
	})

	t.Run("the up ends only once the engine reports a new container healthy", func(t *testing.T) {
		for _, name := range []string{container("grafana"), container("app-2"), container("lb")} {
			_, err := run(t, loadStack(t, "prod").with("healthyTimeout", "10s"), newHealthchecks(nil, []string{name}).option())
			assert.ErrorContains(t, err, name+" was not reported healthy by its engine within 10s (healthyTimeout)")
		}
	})

	t.Run("an engine that cannot answer for a moment is asked again", func(t *testing.T) {
		var mu sync.Mutex
		refused := 0
		probe := func(_, name string, _ []string, _ time.Duration) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			if name == container("postgres") && refused < 3 {
				refused++
				return false, errors.New("container is restarting")
			}
			return true, nil
		}
		res := mustRun(t, dev, onDocker20, stacks.WithEngineHealthchecks(probe, func(string, string) (stacks.Health, error) { return stacks.Health{Status: "healthy"}, nil }))
		assert.Contains(t, res.Containers(), container("app-1"))
		assert.Equal(t, 3, refused)
	})

	t.Run("a container that ran before the up is not waited for", func(t *testing.T) {
		before := mustRun(t, dev)
		existing := map[string]string{}
		for name, c := range before.Containers() {
			existing[name] = c.Name + "-id" // the mocks' ID of the resource
		}
		all := make([]string, 0, len(existing))
		for name := range existing {
			all = append(all, name)
		}
		h := newHealthchecks(all, nil)
		mustRun(t, dev, onDocker20, h.option(), stacks.WithEngineContainers(func(_, label string) (map[string]string, error) {
			assert.Equal(t, "maricusco.stack=dev", label)
			return existing, nil
		}))
		assert.Empty(t, h.probed)
	})

	t.Run("a stack that sets dockerApiVersion leaves the wait to the provider", func(t *testing.T) {
		h := newHealthchecks([]string{container("postgres")}, nil)
		res := mustRun(t, dev.with("dockerApiVersion", "1.45"), h.option())
		for name, c := range res.Containers() {
			assert.True(t, c.Inputs["wait"].BoolValue(), "%s is created only once healthy", name)
		}
		assert.Empty(t, h.probed)
	})

	t.Run("the program runs the test of what something waits for, as the engine runs it, and of nothing else", func(t *testing.T) {
		var tests sync.Map
		probe := func(_, name string, test []string, timeout time.Duration) (bool, error) {
			tests.Store(name, strings.Join(test, " ")+" within "+timeout.String())
			return true, nil
		}
		res := mustRun(t, dev, onDocker20, stacks.WithEngineHealthchecks(probe, func(string, string) (stacks.Health, error) { return stacks.Health{Status: "healthy"}, nil }))
		awaited := map[string]bool{container("postgres"): true, container("redis"): true, container("chromadb"): true, container("app-1"): true}
		for name, c := range res.Containers() {
			hc := c.Inputs["healthcheck"].ObjectValue()
			got, probed := tests.Load(name)
			require.Equal(t, awaited[name], probed, "%s: probed only when something waits for it", name)
			if probed {
				assert.Equal(t, strings.Join(strs(hc["tests"]), " ")+" within "+hc["timeout"].StringValue(), got, name)
			}
		}
	})
}
