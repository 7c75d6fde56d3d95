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

// dataAt is the service's compose-named data volume, mounted at path.
func (a ServiceArgs) dataAt(service, path string) *DataVolume {
	return &DataVolume{Name: a.VolumeName(service), Path: path}
}

// ports publishes containerPort when the stack asks for it.
func (a ServiceArgs) ports(containerPort int) []PortBinding {
	if a.Publish == nil {
		return nil
	}
	return []PortBinding{{HostIP: a.Publish.IP, HostPort: a.Publish.Port, ContainerPort: containerPort}}
}

// Service is what a single-workload service component holds: its container or swarm service,
// and its data volume.
type Service struct {
	// Workload is the service's container, or its swarm service.
	Workload Workload
	// Volume holds the service's data (nil for a service that keeps none).
	Volume *docker.Volume
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

// NewDataVolume declares a named volume that outlives its containers: it is never replaced along
// with a container, and is retained in Docker on delete unless the policy says otherwise.
func NewDataVolume(ctx *pulumi.Context, name, dockerName string, policy VolumePolicy, opts ...pulumi.ResourceOption) (*docker.Volume, error) {
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

// serviceDecl is one single-workload service as its component states it, like a row of the
// seed's table: what runs, where its data lives, what it exports.
type serviceDecl struct {
	// typ is the component's type token.
	typ string
	// service is the seed's name of the service (postgres), which names its Docker objects.
	service string
	// spec is the container; newService fills in its name, image and resources.
	spec ContainerSpec
	// data is the service's data volume (nil: none).
	data *DataVolume
	// outputs are the component's outputs beyond its workload's and volume's names.
	outputs pulumi.Map
}

// newService registers component c named name, declares the service's image, data volume and
// workload as c's children (named from name), and registers c's outputs.
func newService(ctx *pulumi.Context, name string, c pulumi.ComponentResource, args ServiceArgs, d serviceDecl, opts []pulumi.ResourceOption) (Service, error) {
	fail := func(err error) (Service, error) { return Service{}, fmt.Errorf("%s: %w", d.service, err) }
	if err := ctx.RegisterComponentResource(d.typ, name, c, opts...); err != nil {
		return fail(err)
	}
	target := args.Runtime.Target
	img, err := target.image(ctx, name+"-image", args.Image, pulumi.Parent(c))
	if err != nil {
		return fail(err)
	}
	var res Service
	outputs := pulumi.Map{}
	maps.Copy(outputs, d.outputs)
	spec := d.spec
	if d.data != nil {
		res.Volume, err = NewDataVolume(ctx, name+"-data", d.data.Name, args.Volumes, pulumi.Parent(c))
		if err != nil {
			return fail(err)
		}
		spec.Volumes = append(spec.Volumes, VolumeMount{Volume: res.Volume.Name, Path: d.data.Path})
		spec.Stateful = true
		outputs["volumeName"] = res.Volume.Name
	}
	spec.Name = args.ContainerName(d.service)
	spec.Image = img
	spec.Resources = args.Resources
	res.Workload, err = NewWorkload(ctx, name+"-"+target.workloadNoun(), args.Runtime, spec, pulumi.Parent(c))
	if err != nil {
		return fail(err)
	}
	outputs[target.workloadNoun()+"Name"] = res.Workload.Name
	if err := ctx.RegisterResourceOutputs(c, outputs); err != nil {
		return fail(err)
	}
	return res, nil
}
