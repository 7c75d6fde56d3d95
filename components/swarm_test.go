package components

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nodes is a fake engine whose swarm has the given ready nodes.
type nodes []SwarmNode

func (n nodes) APIVersion(string) (string, error)      { return "1.45", nil }
func (n nodes) Machine(string) (Machine, error)        { return Machine{}, errors.New("no machine: a swarm") }
func (n nodes) SwarmNodes(string) ([]SwarmNode, error) { return n, nil }
func (n nodes) Running(string, string) (bool, error)   { return false, nil }
func (n nodes) Network(string, string) (NetworkState, bool, error) {
	return NetworkState{}, false, nil
}

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
			"all services, with a task more of each stateless one while it rolls, reserve 2.50 CPUs and 2560M"},
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

func (failingEngine) APIVersion(string) (string, error) { return "", errors.New("connection refused") }
func (failingEngine) Machine(string) (Machine, error) {
	return Machine{}, errors.New("connection refused")
}
func (failingEngine) SwarmNodes(string) ([]SwarmNode, error) { return nil, errors.New("not a manager") }
func (failingEngine) Running(string, string) (bool, error)   { return false, nil }
func (failingEngine) Network(string, string) (NetworkState, bool, error) {
	return NetworkState{}, false, errors.New("connection refused")
}

func TestAnEngineThatCannotAnswerStopsTheDeploy(t *testing.T) {
	_, err := Swarm{}.Prepare(Plan{}, failingEngine{}, nil)
	assert.ErrorContains(t, err, "docker swarm: not a manager")
	_, err = DockerEngine{}.Prepare(Plan{Namespace: "ns", Host: "unix:///x"}, failingEngine{}, nil)
	assert.ErrorContains(t, err, "cannot ask unix:///x for its API version (connection refused); start it, or set ns:dockerApiVersion")
}

func TestTheStartIntervalGoesOnlyToEnginesThatTakeIt(t *testing.T) {
	health := HealthTiming{Interval: 30 * time.Second, StartInterval: 2 * time.Second}
	for api, want := range map[string]time.Duration{"1.41": 0, "1.43": 0, "1.44": 2 * time.Second, "1.45": 2 * time.Second} {
		var noted []string
		h, err := DockerEngine{}.Prepare(Plan{APIVersion: api, Health: health}, failingEngine{}, func(s string) { noted = append(noted, s) })
		require.NoError(t, err, "a configured version needs no answer from the engine")
		assert.Equal(t, want, h.StartInterval, api)
		assert.Equal(t, want == 0, slices.ContainsFunc(noted, func(s string) bool { return strings.Contains(s, "without a start interval") }),
			"%s: an engine without one is noted", api)
	}
}

// machine is a fake engine on a host with the given CPUs and memory.
type machine Machine

func (m machine) APIVersion(string) (string, error)      { return "1.45", nil }
func (m machine) Machine(string) (Machine, error)        { return Machine(m), nil }
func (m machine) SwarmNodes(string) ([]SwarmNode, error) { return nil, errors.New("no swarm") }
func (m machine) Running(string, string) (bool, error)   { return false, nil }
func (m machine) Network(string, string) (NetworkState, bool, error) {
	return NetworkState{}, false, nil
}

func limited(name string, stateful bool, cpus NanoCPUs, memory UnitBytes) PlannedService {
	return PlannedService{Name: name, Stateful: stateful, Resources: Resources{CPULimit: cpus, MemoryLimit: memory}, Instances: 1}
}

func TestALimitBeyondTheHostIsRefusedNamingItsKey(t *testing.T) {
	host := machine{CPUs: 2e9, Memory: 8<<30 + 12345}
	for _, tc := range []struct {
		name     string
		services []PlannedService
		problems []string
	}{
		{"limits up to the host's fit", []PlannedService{limited("app", false, 2e9, 8<<30)}, nil},
		{"more CPUs than the host has", []PlannedService{limited("app", false, 3e9, 1<<30)},
			[]string{"ns:resources.app.limits.cpus: 3.00 CPUs is more than the engine's host has (2.00 CPUs and 8GiB of memory), so Docker would refuse the container; use at most 2.00"}},
		{"more memory than the host has", []PlannedService{limited("postgres", true, 1e9, 9<<30)},
			[]string{"ns:resources.postgres.limits.memory: 9G is more than the engine's host has (2.00 CPUs and 8GiB of memory), so it would limit nothing; use at most 8G"}},
		{"every problem at once", []PlannedService{limited("app", false, 3e9, 1<<30), limited("redis", true, 1e9, 1<<40)},
			[]string{"ns:resources.app.limits.cpus", "ns:resources.redis.limits.memory", "(2 problem(s)); nothing was deployed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DockerEngine{}.Prepare(Plan{Namespace: "ns", Host: "unix:///d", Services: tc.services}, host, func(string) {})
			if tc.problems == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, p := range tc.problems {
				assert.Contains(t, err.Error(), p)
			}
		})
	}
}

func TestASwarmLimitMustFitTheNodeItsTaskLandsOn(t *testing.T) {
	cluster := nodes{{Name: "data", Data: true, CPUs: 2e9, Memory: 4 << 30}, {Name: "big", CPUs: 8e9, Memory: 32 << 30}}
	_, err := Swarm{}.Prepare(Plan{Namespace: "ns", Services: []PlannedService{limited("app", false, 8e9, 32<<30)}}, cluster, nil)
	require.NoError(t, err, "a stateless task may land on the largest node")
	_, err = Swarm{}.Prepare(Plan{Namespace: "ns", Services: []PlannedService{limited("postgres", true, 4e9, 4<<30)}}, cluster, nil)
	require.ErrorContains(t, err, "ns:resources.postgres.limits.cpus: 4.00 CPUs is more than the data node has", "a stateful one only on the data node")
	_, err = Swarm{}.Prepare(Plan{Namespace: "ns", Services: []PlannedService{limited("app", false, 9e9, 1<<30)}}, cluster, nil)
	require.ErrorContains(t, err, "ns:resources.app.limits.cpus: 9.00 CPUs is more than the largest node has")
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

func TestAContentTagChangesWithTheContentAndTheKeyOnly(t *testing.T) {
	tag := contentTag("key-1", "/run/secrets/p", "secret")
	assert.Regexp(t, `^[0-9a-f]{12}$`, tag)
	assert.Equal(t, tag, contentTag("key-1", "/run/secrets/p", "secret"), "the same file keeps its name")
	assert.NotEqual(t, tag, contentTag("key-1", "/run/secrets/p", "secret2"), "a new content is a new name")
	assert.NotEqual(t, tag, contentTag("key-1", "/run/secrets/q", "secret"), "so is another path")
	assert.NotEqual(t, tag, contentTag("key-2", "/run/secrets/p", "secret"), "another stack's key names it otherwise")
}

// networkHeld is a fake swarm manager with room for anything that holds one network.
type networkHeld struct {
	nodes
	state NetworkState
}

func (n networkHeld) Network(string, string) (NetworkState, bool, error) { return n.state, true, nil }

func TestAnOverlayIsNeverAskedToChangeItsEncryption(t *testing.T) {
	room := nodes{{Name: "a", Data: true, CPUs: 8e9, Memory: 8 << 30}}
	ours := encryptedOverlayOptions("maricusco-network")
	for _, tc := range []struct {
		name      string
		held      NetworkState
		encrypted bool
		err       string
	}{
		{"an encrypted overlay of ours stays encrypted", NetworkState{Driver: "overlay", Options: ours}, true, ""},
		{"a plain overlay stays plain", NetworkState{Driver: "overlay", Options: map[string]string{vxlanOption: "4097"}}, false, ""},
		{"a bridge of the docker target goes with its containers", NetworkState{Driver: "bridge"}, true, ""},
		{"a plain overlay is not encrypted by an up", NetworkState{Driver: "overlay", Options: map[string]string{vxlanOption: "4097"}}, true,
			"ns:swarmOverlayEncrypted is true, but the overlay network maricusco-network is not encrypted; Docker cannot change a network in place"},
		{"an encrypted overlay is not made plain by an up", NetworkState{Driver: "overlay", Options: ours}, false,
			"ns:swarmOverlayEncrypted is false, but the overlay network maricusco-network is encrypted"},
		{"an encrypted overlay on another VXLAN id is not replaced", NetworkState{Driver: "overlay", Options: map[string]string{"encrypted": "", vxlanOption: "4097"}}, true,
			"has VXLAN id 4097, not the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Swarm{Encrypted: tc.encrypted}.Prepare(Plan{Namespace: "ns", Networks: []string{"maricusco-network"}}, networkHeld{room, tc.held}, nil)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
			assert.Contains(t, err.Error(), "`destroy` (the volumes stay)", "the way to switch")
			if _, held := tc.held.Options["encrypted"]; held != tc.encrypted {
				assert.Contains(t, err.Error(), fmt.Sprintf("config set swarmOverlayEncrypted %t", held), "the way to keep the network as it is")
			}
		})
	}
}

func TestEveryNetworkOfThePlanIsCheckedAndEachProblemNamed(t *testing.T) {
	room := nodes{{Name: "a", Data: true, CPUs: 8e9, Memory: 8 << 30}}
	plain := networkHeld{room, NetworkState{Driver: "overlay", Options: map[string]string{vxlanOption: "4097"}}}
	_, err := Swarm{Encrypted: true}.Prepare(Plan{Namespace: "ns", Networks: []string{"m-edge", "m-data", "m-monitoring"}}, plain, nil)
	require.Error(t, err)
	for _, network := range []string{"m-edge", "m-data", "m-monitoring"} {
		assert.Contains(t, err.Error(), "the overlay network "+network+" is not encrypted")
	}
}

func TestTheEncryptedOverlaysVXLANIDIsStableAndInTheSwarmsRange(t *testing.T) {
	a, b := encryptedOverlayOptions("maricusco-network"), encryptedOverlayOptions("other-network")
	assert.Equal(t, a, encryptedOverlayOptions("maricusco-network"), "the same on every run")
	assert.NotEqual(t, a[vxlanOption], b[vxlanOption])
	for _, opts := range []map[string]string{a, b} {
		id, err := strconv.Atoi(opts[vxlanOption])
		require.NoError(t, err)
		assert.GreaterOrEqual(t, id, 4096)
		assert.Less(t, id, 1<<24)
		assert.Contains(t, opts, "encrypted")
	}
}
