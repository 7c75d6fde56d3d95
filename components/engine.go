package components

import (
	"fmt"
	"strings"
	"time"

	units "github.com/docker/go-units"
)

// Engine answers what a target asks the Docker engine before anything is declared: the engine
// package asks the real one, the tests a fake.
type Engine interface {
	// APIVersion is the engine's API version (1.41).
	APIVersion(host string) (string, error)
	// Machine is what the engine's host offers its containers.
	Machine(host string) (Machine, error)
	// SwarmNodes are the swarm's ready nodes, or why the engine cannot take the swarm target.
	SwarmNodes(host string) ([]SwarmNode, error)
	// Running tells whether a container of that name runs on the engine.
	Running(host, name string) (bool, error)
	// Network is the network the engine holds under name, if it holds one.
	Network(host, name string) (network NetworkState, found bool, err error)
}

// HealthEngine answers what the health gate asks while an up runs (gate.go).
type HealthEngine interface {
	// Containers are the IDs of the containers that carry the label (key=value), by name.
	Containers(host, label string) (map[string]string, error)
	// Probe runs a healthcheck test in a container once, as the engine runs it, and tells whether
	// it passed within timeout.
	Probe(host, container string, test []string, timeout time.Duration) (bool, error)
	// Health is a container's health as the engine reports it.
	Health(host, container string) (Health, error)
}

// NetworkState is what an engine reports of an existing network.
type NetworkState struct {
	// Driver is bridge, overlay, ...
	Driver string
	// Options are the driver's options, those the engine chose among them.
	Options map[string]string
}

// Machine is what one host offers its containers: CPUs and memory.
type Machine struct {
	CPUs   NanoCPUs
	Memory UnitBytes
}

func (m Machine) String() string {
	return fmt.Sprintf("%s CPUs and %s of memory", m.CPUs, units.BytesSize(float64(m.Memory)))
}

// SwarmNode is one node of a swarm, as the scheduler sees it.
type SwarmNode struct {
	// Name is the node's hostname.
	Name string
	// Data tells whether the node carries the data label the stateful services are pinned to.
	Data bool
	// CPUs and Memory are what the node offers the scheduler.
	CPUs   NanoCPUs
	Memory UnitBytes
}

// limitsBeyond names each limit of svc that m cannot give, with its key and the largest value
// that fits. Docker refuses a container whose CPU limit exceeds its host's CPUs; a memory limit
// above the host's memory limits nothing.
func limitsBeyond(svc PlannedService, m Machine, where string) []Problem {
	var out []Problem
	key := "resources." + svc.Name + ".limits."
	if svc.Resources.CPULimit > m.CPUs {
		out = append(out, Problem{key + "cpus", fmt.Sprintf("%s CPUs is more than %s has (%s), so Docker would refuse the container; use at most %s",
			svc.Resources.CPULimit, where, m, m.CPUs)})
	}
	if svc.Resources.MemoryLimit > m.Memory {
		out = append(out, Problem{key + "memory", fmt.Sprintf("%s is more than %s has (%s), so it would limit nothing; use at most %s",
			svc.Resources.MemoryLimit, where, m, UnitBytes(int64(m.Memory.MiB())*units.MiB))})
	}
	return out
}

// UnfitError is a plan that the engine it asks cannot run, each problem naming its config key.
type UnfitError struct {
	// Namespace prefixes the keys (maricusco:resources.app.limits.cpus).
	Namespace string
	// Where is the engine or swarm asked.
	Where    string
	Problems []Problem
}

func (e *UnfitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the stack does not fit %s (%d problem(s)); nothing was deployed:", e.Where, len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  - %s:%s: %s", e.Namespace, p.Key, p.Message)
	}
	return b.String()
}
