package stacks

import (
	"io/fs"
	"time"

	"github.com/maricusco/infra/components"
)

// Option changes what Deploy provisions beyond the stack's config.
type Option func(*options)

type options struct {
	dashboards fs.FS
	engine     engineQuestions
	registry   []Service
}

// SwarmNode is one node of a swarm, as the engine reports it.
type SwarmNode = components.SwarmNode

// WithSwarmNodes asks nodes, instead of the Docker engine, for the swarm's ready nodes.
func WithSwarmNodes(nodes func(host string) ([]SwarmNode, error)) Option {
	return func(o *options) { o.engine = probes{next: o.engine, nodes: nodes} }
}

// WithEngineAPIVersion asks probe, instead of the Docker engine, for the engine's API version
// when the stack does not set dockerApiVersion.
func WithEngineAPIVersion(probe func(host string) (string, error)) Option {
	return func(o *options) { o.engine = probes{next: o.engine, api: probe} }
}

// Machine is what an engine's host offers its containers.
type Machine = components.Machine

// WithEngineMachine asks probe, instead of the Docker engine, what the engine's host offers.
func WithEngineMachine(probe func(host string) (Machine, error)) Option {
	return func(o *options) { o.engine = probes{next: o.engine, machine: probe} }
}

// NetworkState is what an engine reports of an existing network.
type NetworkState = components.NetworkState

// WithEngineNetwork asks probe, instead of the Docker engine, for the network it holds under a name.
func WithEngineNetwork(probe func(host, name string) (NetworkState, bool, error)) Option {
	return func(o *options) { o.engine = probes{next: o.engine, network: probe} }
}

// WithEngineRunning asks probe, instead of the Docker engine, whether a container runs.
func WithEngineRunning(probe func(host, name string) (bool, error)) Option {
	return func(o *options) { o.engine = probes{next: o.engine, running: probe} }
}

// Health is a container's health as its engine reports it.
type Health = components.Health

// WithEngineContainers asks probe, instead of the Docker engine, for the IDs of the containers
// with a label, by name.
func WithEngineContainers(probe func(host, label string) (map[string]string, error)) Option {
	return func(o *options) { o.engine = probes{next: o.engine, containers: probe} }
}

// WithEngineHealthchecks runs healthcheck tests with probe and asks health for a container's
// health, instead of the Docker engine.
func WithEngineHealthchecks(probe func(host, container string, test []string, timeout time.Duration) (bool, error), health func(host, container string) (Health, error)) Option {
	return func(o *options) { o.engine = probes{next: o.engine, probe: probe, health: health} }
}

// WithDashboards provisions the dashboards in fsys (one JSON file each) instead of the embedded ones.
func WithDashboards(fsys fs.FS) Option {
	return func(o *options) { o.dashboards = fsys }
}

// WithServices adds rows to the registry, after its own: a service the program does not ship.
func WithServices(rows ...Service) Option {
	return func(o *options) { o.registry = append(append([]Service{}, o.registry...), rows...) }
}

// engineQuestions are what the program asks the engine: before it declares anything, and while
// an up runs.
type engineQuestions interface {
	components.Engine
	components.HealthEngine
}

// probes answer some of an engine's questions themselves and pass the others on.
type probes struct {
	next    engineQuestions
	api     func(host string) (string, error)
	machine func(host string) (Machine, error)
	nodes   func(host string) ([]SwarmNode, error)
	network func(host, name string) (components.NetworkState, bool, error)
	running func(host, name string) (bool, error)
	// containers, probe and health are the health gate's questions.
	containers func(host, label string) (map[string]string, error)
	probe      func(host, container string, test []string, timeout time.Duration) (bool, error)
	health     func(host, container string) (components.Health, error)
}

func (p probes) APIVersion(host string) (string, error) {
	if p.api != nil {
		return p.api(host)
	}
	return p.next.APIVersion(host)
}

func (p probes) Machine(host string) (Machine, error) {
	if p.machine != nil {
		return p.machine(host)
	}
	return p.next.Machine(host)
}

func (p probes) SwarmNodes(host string) ([]SwarmNode, error) {
	if p.nodes != nil {
		return p.nodes(host)
	}
	return p.next.SwarmNodes(host)
}

func (p probes) Running(host, name string) (bool, error) {
	if p.running != nil {
		return p.running(host, name)
	}
	return p.next.Running(host, name)
}

func (p probes) Containers(host, label string) (map[string]string, error) {
	if p.containers != nil {
		return p.containers(host, label)
	}
	return p.next.Containers(host, label)
}

func (p probes) Probe(host, container string, test []string, timeout time.Duration) (bool, error) {
	if p.probe != nil {
		return p.probe(host, container, test, timeout)
	}
	return p.next.Probe(host, container, test, timeout)
}

func (p probes) Health(host, container string) (components.Health, error) {
	if p.health != nil {
		return p.health(host, container)
	}
	return p.next.Health(host, container)
}

func (p probes) Network(host, name string) (components.NetworkState, bool, error) {
	if p.network != nil {
		return p.network(host, name)
	}
	return p.next.Network(host, name)
}
