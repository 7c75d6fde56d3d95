package components

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nodes is a fake engine whose swarm has the given ready nodes.
type nodes []SwarmNode

func (n nodes) APIVersion(string) (string, error)      { return "1.45", nil }
func (n nodes) SwarmNodes(string) ([]SwarmNode, error) { return n, nil }
func service(name string, stateful bool, cpus NanoCPUs, memory UnitBytes, instances int) PlannedService {
	return PlannedService{Name: name, Stateful: stateful, Resources: Resources{CPUReservation: cpus, MemoryReservation: memory}, Instances: instances}
}

func TestTheSwarmFitCheck(t *testing.T) {
	db := service("postgres", true, 1e9, 1<<30, 1)
	app := service("app", false, 5e8, 512<<20, 2)
	for _, tc := range []struct {
		name  string
		nodes nodes
		err   string
	}{
		{"everything fits on one labelled node", nodes{{Name: "a", Data: true, CPUs: 4e9, Memory: 8 << 30}}, ""},
		{"no node carries the data label", nodes{{Name: "a", CPUs: 4e9, Memory: 8 << 30}}, "no ready node of the swarm is labelled maricusco.data=true, so the stateful services (postgres)"},
		{"the data node is too small for the stateful services", nodes{{Name: "a", Data: true, CPUs: 5e8, Memory: 8 << 30}, {Name: "b", CPUs: 8e9, Memory: 8 << 30}},
			"the stateful services reserve 1.00 CPUs and 1G on the data node a, which offers 0.50 CPUs and 8G"},
		{"a rolling app task needs room too", nodes{{Name: "a", Data: true, CPUs: 2e9, Memory: 8 << 30}},
			"all services, with one app replica more while it rolls, reserve 2.50 CPUs and 2560M"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Swarm{}.Prepare(Plan{Services: []PlannedService{db, app}}, tc.nodes, nil)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func TestASwarmGivesNoStartInterval(t *testing.T) {
	h, err := Swarm{}.Prepare(Plan{Health: HealthTiming{Interval: 30 * time.Second, StartInterval: 2 * time.Second}},
		nodes{{Data: true, CPUs: 1e9, Memory: 1 << 30}}, nil)
	require.NoError(t, err)
	assert.Zero(t, h.StartInterval, "the provider's service healthcheck has none")
	assert.Equal(t, 30*time.Second, h.Interval)
}

type failingEngine struct{}

func (failingEngine) APIVersion(string) (string, error)      { return "", errors.New("connection refused") }
func (failingEngine) SwarmNodes(string) ([]SwarmNode, error) { return nil, errors.New("not a manager") }

func TestAnEngineThatCannotAnswerStopsTheDeploy(t *testing.T) {
	_, err := Swarm{}.Prepare(Plan{}, failingEngine{}, nil)
	assert.ErrorContains(t, err, "docker swarm: not a manager")
	_, err = DockerEngine{}.Prepare(Plan{Namespace: "ns", Host: "unix:///x"}, failingEngine{}, nil)
	assert.ErrorContains(t, err, "cannot ask unix:///x for its API version (connection refused); start it, or set ns:dockerApiVersion")
}

func TestTheStartIntervalGoesOnlyToEnginesThatTakeIt(t *testing.T) {
	health := HealthTiming{Interval: 30 * time.Second, StartInterval: 2 * time.Second}
	for api, want := range map[string]time.Duration{"1.41": 0, "1.43": 0, "1.44": 2 * time.Second, "1.45": 2 * time.Second} {
		var noted string
		h, err := DockerEngine{}.Prepare(Plan{APIVersion: api, Health: health}, failingEngine{}, func(s string) { noted = s })
		require.NoError(t, err, "a configured version asks the engine nothing")
		assert.Equal(t, want, h.StartInterval, api)
		assert.Equal(t, want == 0, noted != "", "%s: an engine without one is noted", api)
	}
}

func TestSwarmRefusesWhatItCannotPublishOrHide(t *testing.T) {
	vip, dnsrr := Swarm{EndpointMode: EndpointVIP}, Swarm{EndpointMode: EndpointDNSRR}
	everywhere, loopback := &HostPort{IP: "0.0.0.0", Port: 8000}, &HostPort{IP: "127.0.0.1", Port: 8000}
	for _, tc := range []struct {
		name   string
		target Swarm
		svc    PlannedService
		keys   []string
	}{
		{"vip publishes on every address", vip, PlannedService{Name: "app", Publish: everywhere}, nil},
		{"vip cannot publish on one address", vip, PlannedService{Name: "app", Publish: loopback}, []string{"ports.app"}},
		{"dnsrr publishes nothing", dnsrr, PlannedService{Name: "app", Publish: everywhere}, []string{"ports.app"}},
		{"secret environment would show in service inspect", vip, PlannedService{Name: "app", SecretEnvKey: "appSecretEnv"}, []string{"appSecretEnv"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var keys []string
			for _, p := range tc.target.Check(Plan{Services: []PlannedService{tc.svc}}) {
				keys = append(keys, p.Key)
			}
			assert.Equal(t, tc.keys, keys)
		})
	}
}

func TestDurationsAreWrittenAsTheProviderReadsServicesBack(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", 90 * time.Second: "1m30s", 2 * time.Hour: "2h", 5 * time.Second: "5s", 24 * time.Hour: "24h"} {
		assert.Equal(t, want, shortDuration(d))
	}
}
