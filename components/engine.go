package components

// Engine answers what a target asks the Docker engine before anything is declared: the engine
// package asks the real one, the tests a fake.
type Engine interface {
	// APIVersion is the engine's API version (1.41).
	APIVersion(host string) (string, error)
	// SwarmNodes are the swarm's ready nodes, or why the engine cannot take the swarm target.
	SwarmNodes(host string) ([]SwarmNode, error)
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
