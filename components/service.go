package components

import (
	"fmt"
	"maps"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// HostPort is where a service's port is published on the Docker host.
type HostPort struct {
	// IP is the host address the port is bound to (0.0.0.0 for every address).
	IP string
	// Port is the port number on the host.
	Port int
}

// VolumePolicy is how a service's data volume is kept.
type VolumePolicy struct {
	// Protect makes Pulumi refuse any operation that would delete the volume.
	Protect bool
	// DeleteOnDestroy lets `pulumi destroy` (or removing the volume from the program) delete the
	// volume from Docker; otherwise Pulumi forgets it and Docker keeps the data.
	DeleteOnDestroy bool
}

// ServiceArgs are the settings every service component takes from the stack.
type ServiceArgs struct {
	// Prefix names the Docker objects: container `<prefix>-<service>`, volume `<prefix>_<service>_data`.
	Prefix string
	// Runtime is what all containers share.
	Runtime Runtime
	// Image is the pinned image reference.
	Image string
	// Resources are the container's limits and reservations.
	Resources Resources
	// Publish, when set, publishes the service's port on the Docker host.
	Publish *HostPort
	// Volumes is the data volume policy.
	Volumes VolumePolicy
	// After are the workloads that must be healthy before this service's is created.
	After []Workload
}

// ContainerName is the Docker name of the service's container.
func (a ServiceArgs) ContainerName(service string) string { return a.Prefix + "-" + service }

// VolumeName is the Docker name of the service's data volume, as Docker Compose names it.
func (a ServiceArgs) VolumeName(service string) string { return a.Prefix + "_" + service + "_data" }

// DataVolume is a service's named volume and where it is mounted.
type DataVolume struct {
	// Name is the volume's Docker name.
	Name string
	// Path is where the container sees it.
	Path string
}

// DataAt is the service's compose-named data volume, mounted at path.
func (a ServiceArgs) DataAt(service, path string) *DataVolume {
	return &DataVolume{Name: a.VolumeName(service), Path: path}
}

// ports publishes containerPort when the stack asks for it.
func (a ServiceArgs) ports(containerPort int) []PortBinding {
	if a.Publish == nil {
		return nil
	}
	return []PortBinding{{HostIP: a.Publish.IP, HostPort: a.Publish.Port, ContainerPort: containerPort}}
}

// Deployed is what a service's component leaves for the rest of the platform.
type Deployed interface {
	// WorkloadNames are the Docker names of what it runs, by the service they belong to.
	WorkloadNames() map[string]pulumi.Input
	// DataVolume is the volume it keeps its data in (nil: none).
	DataVolume() *docker.Volume
	// Ready is what a service that needs it waits for.
	Ready() Workload
}

// Service is what a single-workload service component holds: its container or swarm service,
// and its data volume.
type Service struct {
	// Workload is the service's container, or its swarm service.
	Workload Workload
	// Volume holds the service's data (nil for a service that keeps none).
	Volume *docker.Volume
	// name is the seed's name of the service.
	name string
}

// WorkloadNames implements Deployed.
func (s Service) WorkloadNames() map[string]pulumi.Input {
	return map[string]pulumi.Input{s.name: s.Workload.Name}
}

// DataVolume implements Deployed.
func (s Service) DataVolume() *docker.Volume { return s.Volume }

// Ready implements Deployed.
func (s Service) Ready() Workload { return s.Workload }

// renamedFrom keeps the resource a child had under its old name: a preview of a stack deployed
// before the rename shows no change.
func renamedFrom(old string) pulumi.ResourceOption {
	return pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(old)}})
}

// PullImage declares an image so that Docker pulls it once, before the containers that use it are
// created; the image stays on the host when the stack lets go of it, since other stacks may use it.
func PullImage(ctx *pulumi.Context, name, ref string, opts ...pulumi.ResourceOption) (*docker.RemoteImage, error) {
	img, err := docker.NewRemoteImage(ctx, name, &docker.RemoteImageArgs{
		Name:        pulumi.String(ref),
		KeepLocally: pulumi.Bool(true),
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return img, nil
}

// localVolume is a named volume on the engine the stack deploys to, which outlives its
// containers: it is never replaced along with a container, and is retained in Docker on delete
// unless the policy says otherwise. Both targets keep data this way (a swarm on its data node).
func localVolume(ctx *pulumi.Context, name, dockerName string, policy VolumePolicy, opts ...pulumi.ResourceOption) (*docker.Volume, error) {
	opts = append(opts, pulumi.Protect(policy.Protect), pulumi.RetainOnDelete(!policy.DeleteOnDestroy),
		// A volume that compose created (the move from compose) carries compose's labels, which
		// the provider reads back on refresh. Docker cannot relabel a volume, and a replaced volume
		// replaces its container, so the labels an adopted volume has are left as they are.
		pulumi.IgnoreChanges([]string{"labels"}))
	v, err := docker.NewVolume(ctx, name, &docker.VolumeArgs{
		Name:   pulumi.String(dockerName),
		Driver: pulumi.String("local"),
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", dockerName, err)
	}
	return v, nil
}

// ServiceDecl is one single-workload service as its component states it, like a row of the
// seed's table: what runs, where its data lives, what it exports.
type ServiceDecl struct {
	// Type is the component's type token.
	Type string
	// Service is the seed's name of the service (postgres), which names its Docker objects.
	Service string
	// Spec is the workload; NewService fills in its name, image and resources.
	Spec ContainerSpec
	// Data is the service's data volume (nil: none).
	Data *DataVolume
	// Outputs are the component's outputs beyond its workload's and volume's names.
	Outputs pulumi.Map
}

// GenericService is a service that needs no component of its own: its declaration says it all.
type GenericService struct {
	pulumi.ResourceState
	Service
}

// NewService declares a service from its declaration alone.
func NewService(ctx *pulumi.Context, name string, args *ServiceArgs, d ServiceDecl, opts ...pulumi.ResourceOption) (*GenericService, error) {
	g := &GenericService{}
	svc, err := newService(ctx, name, g, *args, d, opts)
	if err != nil {
		return nil, err
	}
	g.Service = svc
	return g, nil
}

// newService registers component c named name, declares the service's image, data volume and
// workload as c's children (named from name), and registers c's outputs.
func newService(ctx *pulumi.Context, name string, c pulumi.ComponentResource, args ServiceArgs, d ServiceDecl, opts []pulumi.ResourceOption) (Service, error) {
	fail := func(err error) (Service, error) { return Service{}, fmt.Errorf("%s: %w", d.Service, err) }
	if err := ctx.RegisterComponentResource(d.Type, name, c, opts...); err != nil {
		return fail(err)
	}
	target := args.Runtime.Target
	img, err := target.image(ctx, name+"-image", args.Image, pulumi.Parent(c))
	if err != nil {
		return fail(err)
	}
	res := Service{name: d.Service}
	outputs := pulumi.Map{}
	maps.Copy(outputs, d.Outputs)
	spec := d.Spec
	if d.Data != nil {
		if res.Volume, err = target.volume(ctx, name+"-data", d.Data.Name, args.Volumes, pulumi.Parent(c)); err != nil {
			return fail(err)
		}
		spec.Volumes = append(spec.Volumes, VolumeMount{Volume: res.Volume.Name, Path: d.Data.Path})
		spec.Stateful = true
		outputs["volumeName"] = res.Volume.Name
	}
	spec.Name = args.ContainerName(d.Service)
	spec.Image = img
	spec.Resources = args.Resources
	spec.After = append(spec.After, args.After...)
	noun := target.WorkloadNoun()
	if res.Workload, err = NewWorkload(ctx, name+"-"+noun, args.Runtime, spec, pulumi.Parent(c)); err != nil {
		return fail(err)
	}
	outputs[noun+"Name"] = res.Workload.Name
	if h := health(res.Workload); h != nil {
		outputs["health"] = h
	}
	if err := ctx.RegisterResourceOutputs(c, outputs); err != nil {
		return fail(err)
	}
	return res, nil
}
