package components

import (
	"fmt"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// NewServiceContainer turns a service's ContainerSpec into a Docker container with the platform's
// shared settings: network, limits, healthcheck, restart, log rotation, labels and hardening.
func NewServiceContainer(ctx *pulumi.Context, resourceName string, rt Runtime, spec ContainerSpec, opts ...pulumi.ResourceOption) (*docker.Container, error) {
	args := &docker.ContainerArgs{
		Name:    pulumi.String(spec.Name),
		Image:   spec.Image,
		Labels:  containerLabels(rt.Labels),
		Restart: pulumi.String(rt.Restart),
		MustRun: pulumi.Bool(true),
		// Created only once healthy, so what depends on it starts after it works.
		Wait:        pulumi.Bool(true),
		WaitTimeout: pulumi.Int(int(rt.Health.WaitTimeout.Seconds())),
		Healthcheck: healthcheck(rt.Health, spec.HealthCheck),
		LogDriver:   pulumi.String("json-file"),
		LogOpts:     logOptions(rt.Logging),
		// Without it the provider stops a container it deletes with no grace at all (SIGKILL):
		// PostgreSQL would skip its shutdown checkpoint and an app instance drop its requests.
		DestroyGraceSeconds: pulumi.Int(StopGraceSeconds),
		RemoveVolumes:       pulumi.Bool(true),
		NetworksAdvanced:    containerNetworks(rt, spec),
	}
	containerProcess(args, spec)
	containerLimits(args, spec.Resources)
	containerHardening(args, hardeningOf(spec))
	containerStorage(args, spec)
	containerPorts(args, spec.Ports)
	// Docker refuses two containers with one name, so a container goes before its replacement
	// comes (the docker provider asks for this too; saying it here keeps it true if it stops).
	opts = append(opts, pulumi.DeleteBeforeReplace(true))
	if len(spec.After) > 0 {
		opts = append(opts, waitFor(spec.After))
	}
	if rt.Gate != nil {
		// The program's gate waits instead (gate.go). The flag only tells the provider what to do
		// when it creates the container: changing it changes nothing in Docker.
		args.Wait = pulumi.Bool(false)
	}
	c, err := docker.NewContainer(ctx, resourceName, args, opts...)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", spec.Name, err)
	}
	return c, nil
}

// containerProcess is what runs: entrypoint, command, user and environment, under docker-init.
func containerProcess(args *docker.ContainerArgs, spec ContainerSpec) {
	args.Envs = envList(spec.Env)
	// docker-init as PID 1 forwards signals and reaps what an entrypoint leaves behind.
	args.Init = pulumi.Bool(true)
	if spec.User != "" {
		args.User = pulumi.String(spec.User)
	}
	if len(spec.Entrypoint) > 0 {
		args.Entrypoints = pulumi.ToStringArray(spec.Entrypoint)
	}
	if len(spec.Command) > 0 {
		args.Command = pulumi.ToStringArray(spec.Command)
	}
}

// containerLimits are the limits and reservations, in the forms the provider reads back
// (readback.go).
func containerLimits(args *docker.ContainerArgs, r Resources) {
	args.Cpus = pulumi.String(r.CPUsAsReadBack())
	args.Memory = pulumi.Int(r.MemoryLimit.MiB())
	args.MemorySwap = pulumi.Int(r.MemorySwapMB())
	args.MemoryReservation = pulumi.Int(r.MemoryReservation.MiB())
	args.CpuShares = pulumi.Int(r.CPUShares())
}

func containerHardening(args *docker.ContainerArgs, h hardening) {
	args.SecurityOpts = pulumi.StringArray{pulumi.String("no-new-privileges:true")}
	args.Capabilities = docker.ContainerCapabilitiesArgs{Drops: pulumi.ToStringArray(h.drop), Adds: pulumi.ToStringArray(h.add)}
	args.ReadOnly = pulumi.Bool(h.readOnly)
	args.Privileged = pulumi.Bool(false)
	args.IpcMode = pulumi.String("private")
}

// containerStorage is the named volumes, the tmpfs mounts and the files copied in before start.
func containerStorage(args *docker.ContainerArgs, spec ContainerSpec) {
	var volumes docker.ContainerVolumeArray
	for _, v := range spec.Volumes {
		volumes = append(volumes, docker.ContainerVolumeArgs{VolumeName: v.Volume, ContainerPath: pulumi.String(v.Path)})
	}
	args.Volumes = volumes
	if len(spec.WritablePaths) > 0 {
		tmpfs := pulumi.StringMap{}
		for _, p := range spec.WritablePaths {
			tmpfs[p] = pulumi.String(tmpfsOptions)
		}
		args.Tmpfs = tmpfs
	}
	var uploads docker.ContainerUploadArray
	for _, f := range spec.Files {
		uploads = append(uploads, docker.ContainerUploadArgs{File: pulumi.String(f.Path()), Content: f.Content, Permissions: pulumi.String("0444")})
	}
	args.Uploads = uploads
}

func containerPorts(args *docker.ContainerArgs, bindings []PortBinding) {
	var ports docker.ContainerPortArray
	for _, p := range bindings {
		ports = append(ports, docker.ContainerPortArgs{
			Internal: pulumi.Int(p.ContainerPort),
			External: pulumi.Int(p.HostPort),
			Ip:       pulumi.String(p.HostIP),
			Protocol: pulumi.String("tcp"),
		})
	}
	args.Ports = ports
}

func containerLabels(labels map[string]string) docker.ContainerLabelArray {
	return sortedLabels(labels, func(l, v pulumi.String) docker.ContainerLabelInput {
		return docker.ContainerLabelArgs{Label: l, Value: v}
	})
}
