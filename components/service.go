package components

import (
	"fmt"

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

// Service is what a single-container service component holds: its container and data volume.
type Service struct {
	// Container is the service's container.
	Container *docker.Container
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

// newService registers component c (type token typ) for one single-container service, declares
// the service's image, its data volume (none when data is nil) and its
// container as c's children, and registers c's outputs: outputs plus the container and volume names.
func newService(ctx *pulumi.Context, typ, name string, c pulumi.ComponentResource, service string, args ServiceArgs, spec ContainerSpec, data *DataVolume, outputs pulumi.Map, opts []pulumi.ResourceOption) (Service, error) {
	if err := ctx.RegisterComponentResource(typ, name, c, opts...); err != nil {
		return Service{}, fmt.Errorf("%s: %w", service, err)
	}
	img, err := PullImage(ctx, service+"-image", args.Image, pulumi.Parent(c))
	if err != nil {
		return Service{}, fmt.Errorf("%s: %w", service, err)
	}
	var res Service
	if outputs == nil {
		outputs = pulumi.Map{}
	}
	if data != nil {
		res.Volume, err = NewDataVolume(ctx, service+"-data", data.Name, args.Volumes, pulumi.Parent(c))
		if err != nil {
			return Service{}, fmt.Errorf("%s: %w", service, err)
		}
		spec.Volumes = append(spec.Volumes, VolumeMount{Volume: res.Volume.Name, Path: data.Path})
		outputs["volumeName"] = res.Volume.Name
	}
	spec.Name = args.ContainerName(service)
	spec.Image = img.ImageId
	spec.Resources = args.Resources
	res.Container, err = NewServiceContainer(ctx, service+"-container", args.Runtime, spec, pulumi.Parent(c))
	if err != nil {
		return Service{}, fmt.Errorf("%s: %w", service, err)
	}
	outputs["containerName"] = res.Container.Name
	if err := ctx.RegisterResourceOutputs(c, outputs); err != nil {
		return Service{}, fmt.Errorf("%s: %w", service, err)
	}
	return res, nil
}
