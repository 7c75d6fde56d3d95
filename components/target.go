package components

import (
	"fmt"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Target is where the platform runs: containers on one Docker engine, or services on a Docker
// Swarm cluster. The components state what each service is (a ContainerSpec); the target alone
// turns that into Docker objects, so everything else is the same on both.
type Target interface {
	// Orchestrator names the target as the `orchestrator` config key does.
	Orchestrator() string
	// Replicates tells whether one workload runs several instances itself (a swarm service's
	// replicas behind the routing mesh) rather than one container per instance.
	Replicates() bool
	// TasksDNS is the DNS name that answers one A record per instance of the service named host.
	TasksDNS(host string) string

	// workloadNoun is what a workload is on this target, for its resource name.
	workloadNoun() string
	image(ctx *pulumi.Context, name, ref string, opts ...pulumi.ResourceOption) (pulumi.StringInput, error)
	network(ctx *pulumi.Context, name, dockerName string, opts ...pulumi.ResourceOption) (*docker.Network, error)
	workload(ctx *pulumi.Context, name string, rt Runtime, spec ContainerSpec, opts ...pulumi.ResourceOption) (Workload, error)
}

// Workload is what a target made of one ContainerSpec: a container, or a swarm service.
type Workload struct {
	// Resource is the container or service, for others to depend on.
	Resource pulumi.Resource
	// Name is its Docker name.
	Name pulumi.StringOutput
}

// DockerEngine is the single-host target: one container per instance, files copied in, images
// pulled once on the host.
type DockerEngine struct{}

// Orchestrator implements Target.
func (DockerEngine) Orchestrator() string { return "docker" }

// Replicates implements Target: each instance is its own container.
func (DockerEngine) Replicates() bool { return false }

// TasksDNS implements Target: every instance carries the service's alias.
func (DockerEngine) TasksDNS(host string) string { return host }

func (DockerEngine) workloadNoun() string { return "container" }

func (DockerEngine) image(ctx *pulumi.Context, name, ref string, opts ...pulumi.ResourceOption) (pulumi.StringInput, error) {
	img, err := PullImage(ctx, name, ref, opts...)
	if err != nil {
		return nil, err
	}
	return img.ImageId, nil
}

func (DockerEngine) network(ctx *pulumi.Context, name, dockerName string, opts ...pulumi.ResourceOption) (*docker.Network, error) {
	return docker.NewNetwork(ctx, name, &docker.NetworkArgs{
		Name:   pulumi.String(dockerName),
		Driver: pulumi.String("bridge"),
	}, append(opts, pulumi.DeleteBeforeReplace(true))...)
}

func (DockerEngine) workload(ctx *pulumi.Context, name string, rt Runtime, spec ContainerSpec, opts ...pulumi.ResourceOption) (Workload, error) {
	c, err := NewServiceContainer(ctx, name, rt, spec, opts...)
	if err != nil {
		return Workload{}, err
	}
	return Workload{Resource: c, Name: c.Name}, nil
}

// NewWorkload declares spec on the runtime's target: the one place a component's spec becomes a
// Docker object.
func NewWorkload(ctx *pulumi.Context, name string, rt Runtime, spec ContainerSpec, opts ...pulumi.ResourceOption) (Workload, error) {
	if rt.Target == nil {
		return Workload{}, fmt.Errorf("%s: no target", spec.Name)
	}
	w, err := rt.Target.workload(ctx, name, rt, spec, opts...)
	if err != nil {
		return Workload{}, fmt.Errorf("%s: %w", spec.Name, err)
	}
	return w, nil
}
