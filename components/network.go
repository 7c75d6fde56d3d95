package components

import (
	"fmt"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// NetworkArgs configure the platform network.
type NetworkArgs struct {
	// Name is the Docker network name.
	Name string
	// Target decides the driver: a bridge on one engine, an attachable overlay on a swarm.
	Target Target
}

// Network is the user-defined network every service joins; its embedded DNS resolves the
// services' aliases.
type Network struct {
	pulumi.ResourceState

	// Network is the Docker network.
	Network *docker.Network
	// Name is the network's Docker name, for containers to join.
	Name pulumi.StringOutput
}

// NewNetwork declares the platform network.
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
