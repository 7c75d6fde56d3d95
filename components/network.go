package components

import (
	"fmt"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The platform's networks, by what each joins them for: a service joins only those its row names,
// so it reaches only the services it needs (Grafana, reachable from outside, cannot open a
// connection to PostgreSQL).
const (
	// EdgeNetwork carries the requests from the load balancer to the app's instances.
	EdgeNetwork = "edge"
	// DataNetwork joins the app and the backups to PostgreSQL, Redis and ChromaDB.
	DataNetwork = "data"
	// MonitoringNetwork joins Prometheus and Grafana to what Prometheus scrapes.
	MonitoringNetwork = "monitoring"
)

// NetworkRoles are the platform's networks, in the order they are declared.
var NetworkRoles = []string{EdgeNetwork, DataNetwork, MonitoringNetwork}

// NetworkArgs configure one of the platform's networks.
type NetworkArgs struct {
	// Name is the Docker network name.
	Name string
	// Target decides the driver: a bridge on one engine, an attachable overlay on a swarm.
	Target Target
}

// Network is one of the platform's user-defined networks; its embedded DNS resolves the aliases
// of the services on it.
type Network struct {
	pulumi.ResourceState

	// Network is the Docker network.
	Network *docker.Network
	// Name is the network's Docker name, for containers to join.
	Name pulumi.StringOutput
}

// NewNetwork declares one of the platform's networks.
func NewNetwork(ctx *pulumi.Context, name string, args *NetworkArgs, opts ...pulumi.ResourceOption) (*Network, error) {
	n := &Network{}
	if err := ctx.RegisterComponentResource("maricusco:components:Network", name, n, opts...); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	net, err := args.Target.network(ctx, name, args.Name, pulumi.Parent(n))
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", args.Name, err)
	}
	n.Network, n.Name = net, net.Name
	if err := ctx.RegisterResourceOutputs(n, pulumi.Map{"name": n.Name}); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	return n, nil
}

// joined are the roles of the networks rt joins, in NetworkRoles' order, so that a program run
// twice sends them in the same order.
func (rt Runtime) joined() []string {
	var roles []string
	for _, role := range NetworkRoles {
		if _, ok := rt.Networks[role]; ok {
			roles = append(roles, role)
		}
	}
	return roles
}

// containerNetworks attach a container to each of its networks under the service's DNS names.
func containerNetworks(rt Runtime, spec ContainerSpec) docker.ContainerNetworksAdvancedArray {
	var out docker.ContainerNetworksAdvancedArray
	for _, role := range rt.joined() {
		out = append(out, docker.ContainerNetworksAdvancedArgs{Name: rt.Networks[role], Aliases: pulumi.ToStringArray(spec.Aliases)})
	}
	return out
}

// serviceNetworks attach a swarm service's tasks to each of its networks under its DNS names.
func serviceNetworks(rt Runtime, spec ContainerSpec) docker.ServiceTaskSpecNetworksAdvancedArray {
	var out docker.ServiceTaskSpecNetworksAdvancedArray
	for _, role := range rt.joined() {
		out = append(out, docker.ServiceTaskSpecNetworksAdvancedArgs{Name: rt.Networks[role], Aliases: pulumi.ToStringArray(spec.Aliases)})
	}
	return out
}
