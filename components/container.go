package components

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// StopGraceSeconds is how long a container that Pulumi deletes (replaced, scaled away, destroyed)
// has to stop after its stop signal before it is killed.
const StopGraceSeconds = 30

// FilesDir is where every container receives the files the program writes into it (secrets and
// generated configuration) before it starts.
const FilesDir = "/run/maricusco"

// HealthTiming is how often and how patiently Docker probes every container, and how long
// `pulumi up` waits for a new container to become healthy.
type HealthTiming struct {
	Interval      time.Duration
	Timeout       time.Duration
	Retries       int
	StartPeriod   time.Duration
	StartInterval time.Duration
	WaitTimeout   time.Duration
}

// Logging bounds the json-file logs of every container so they cannot fill the disk.
type Logging struct {
	MaxSize string
	MaxFile int
}

// Runtime is what every container of the platform shares: the network it joins and the
// platform-wide policies.
type Runtime struct {
	// Target turns each service's spec into Docker objects.
	Target Target
	// Network is the name of the platform network every container joins.
	Network pulumi.StringInput
	// Restart is Docker's restart policy.
	Restart string
	// Health is the healthcheck timing.
	Health HealthTiming
	// Logging is the log rotation.
	Logging Logging
	// Labels are added to every container.
	Labels map[string]string
}

// PortBinding publishes a container port on the Docker host.
type PortBinding struct {
	// HostIP is the host address the port is bound to.
	HostIP string
	// HostPort is the port on the host.
	HostPort int
	// ContainerPort is the port inside the container.
	ContainerPort int
}

// VolumeMount mounts a named volume into a container.
type VolumeMount struct {
	Volume pulumi.StringInput
	Path   string
}

// SecretsDir is where every container finds its secret files, as Docker Swarm mounts secrets.
const SecretsDir = "/run/secrets"

// File is given to the container before it starts: copied in on one engine, mounted as a Docker
// config (or, when Secret, a Docker secret) on a swarm.
type File struct {
	// Name is the file name below FilesDir or SecretsDir (may contain sub directories).
	Name string
	// Content is the file's content; a secret output stays secret in the state.
	Content pulumi.StringInput
	// Secret files hold credentials: they live in SecretsDir and become Docker secrets.
	Secret bool
}

// With returns the file with the given content.
func (f File) With(content pulumi.StringInput) File {
	f.Content = content
	return f
}

// Path is where the file appears inside the container.
func (f File) Path() string {
	if f.Secret {
		return SecretsDir + "/" + f.Name
	}
	return FilesDir + "/" + f.Name
}

// ContainerSpec is what one service states about its container; NewServiceContainer adds the
// plumbing every container shares.
type ContainerSpec struct {
	// Name is the Docker container name.
	Name string
	// Image is the image reference or ID.
	Image pulumi.StringInput
	// Aliases are the container's DNS names on the network.
	Aliases []string
	// Entrypoint overrides the image's entrypoint.
	Entrypoint []string
	// Command overrides the image's command.
	Command []string
	// User runs the main process as this user (empty: the image's user).
	User string
	// Env is the environment, by variable name; a secret value stays secret in the state.
	Env map[string]pulumi.StringInput
	// Ports are published on the Docker host.
	Ports []PortBinding
	// Volumes are the named volumes mounted into the container.
	Volumes []VolumeMount
	// Files are written below FilesDir before the container starts.
	Files []File
	// Resources are the limits and reservations.
	Resources Resources
	// HealthCheck is Docker's healthcheck test, e.g. ["CMD", "pg_isready"].
	HealthCheck []string
	// WritablePaths become tmpfs mounts, for an image that writes outside its volumes.
	WritablePaths []string
	// Capabilities are the Linux capabilities the image needs, without the CAP_ prefix; all others
	// are dropped.
	Capabilities []string
	// After are the workloads that must be healthy before this one is created.
	After []pulumi.Resource
	// Replicas is the number of instances a replicating target runs (0: one).
	Replicas int
	// Stateful services keep data in a local volume: a swarm pins them to the data node and
	// stops the old task before starting the new one, so two never share the volume.
	Stateful bool
}

// NewServiceContainer turns a service's ContainerSpec into a Docker container with the platform's
// shared settings: network, limits, healthcheck, restart, log rotation, labels and hardening.
func NewServiceContainer(ctx *pulumi.Context, resourceName string, rt Runtime, spec ContainerSpec, opts ...pulumi.ResourceOption) (*docker.Container, error) {
	args := &docker.ContainerArgs{
		Name:  pulumi.String(spec.Name),
		Image: spec.Image,
		NetworksAdvanced: docker.ContainerNetworksAdvancedArray{docker.ContainerNetworksAdvancedArgs{
			Name:    rt.Network,
			Aliases: pulumi.ToStringArray(spec.Aliases),
		}},
		Envs:              envList(spec.Env),
		Restart:           pulumi.String(rt.Restart),
		Cpus:              pulumi.String(spec.Resources.CPUsAsReadBack()),
		Memory:            pulumi.Int(spec.Resources.MemoryLimit.MiB()),
		MemorySwap:        pulumi.Int(spec.Resources.MemorySwapMB()),
		MemoryReservation: pulumi.Int(spec.Resources.MemoryReservation.MiB()),
		CpuShares:         pulumi.Int(spec.Resources.CPUShares()),
		Healthcheck:       healthcheck(rt.Health, spec.HealthCheck),
		Wait:              pulumi.Bool(true),
		WaitTimeout:       pulumi.Int(int(rt.Health.WaitTimeout.Seconds())),
		LogDriver:         pulumi.String("json-file"),
		LogOpts: pulumi.StringMap{
			"max-size": pulumi.String(rt.Logging.MaxSize),
			"max-file": pulumi.String(strconv.Itoa(rt.Logging.MaxFile)),
		},
		Labels:       containerLabels(rt.Labels),
		SecurityOpts: pulumi.StringArray{pulumi.String("no-new-privileges:true")},
		Capabilities: docker.ContainerCapabilitiesArgs{
			Drops: pulumi.StringArray{pulumi.String("ALL")},
			Adds:  capabilities(spec.Capabilities),
		},
		ReadOnly:   pulumi.Bool(spec.readOnlyRoot()),
		Privileged: pulumi.Bool(false),
		IpcMode:    pulumi.String("private"),
		// docker-init as PID 1 forwards signals and reaps what an entrypoint leaves behind.
		Init:    pulumi.Bool(true),
		Tmpfs:   tmpfs(spec.WritablePaths),
		MustRun: pulumi.Bool(true),
		// Without it the provider stops a container it deletes with no grace at all (SIGKILL):
		// PostgreSQL would skip its shutdown checkpoint and an app instance drop its requests.
		DestroyGraceSeconds: pulumi.Int(StopGraceSeconds),
		RemoveVolumes:       pulumi.Bool(true),
	}
	if spec.User != "" {
		args.User = pulumi.String(spec.User)
	}
	if len(spec.Entrypoint) > 0 {
		args.Entrypoints = pulumi.ToStringArray(spec.Entrypoint)
	}
	if len(spec.Command) > 0 {
		args.Command = pulumi.ToStringArray(spec.Command)
	}
	var ports docker.ContainerPortArray
	for _, p := range spec.Ports {
		ports = append(ports, docker.ContainerPortArgs{
			Internal: pulumi.Int(p.ContainerPort),
			External: pulumi.Int(p.HostPort),
			Ip:       pulumi.String(p.HostIP),
			Protocol: pulumi.String("tcp"),
		})
	}
	args.Ports = ports
	var volumes docker.ContainerVolumeArray
	for _, v := range spec.Volumes {
		volumes = append(volumes, docker.ContainerVolumeArgs{
			VolumeName:    v.Volume,
			ContainerPath: pulumi.String(v.Path),
		})
	}
	args.Volumes = volumes
	var uploads docker.ContainerUploadArray
	for _, f := range spec.Files {
		uploads = append(uploads, docker.ContainerUploadArgs{
			File:        pulumi.String(f.Path()),
			Content:     f.Content,
			Permissions: pulumi.String("0444"),
		})
	}
	args.Uploads = uploads
	// Docker refuses two containers with one name, so a container goes before its replacement
	// comes (the docker provider asks for this too; saying it here keeps it true if it stops).
	opts = append(opts, pulumi.DeleteBeforeReplace(true))
	if len(spec.After) > 0 {
		opts = append(opts, pulumi.DependsOn(spec.After))
	}
	c, err := docker.NewContainer(ctx, resourceName, args, opts...)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", spec.Name, err)
	}
	return c, nil
}

// sortedLabels turns labels into the provider's label entries, made by entry, in key order so that
// the same labels always give the same inputs.
func sortedLabels[T any](labels map[string]string, entry func(label, value pulumi.String) T) []T {
	out := make([]T, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		out = append(out, entry(pulumi.String(k), pulumi.String(labels[k])))
	}
	return out
}

func containerLabels(labels map[string]string) docker.ContainerLabelArray {
	return sortedLabels(labels, func(l, v pulumi.String) docker.ContainerLabelInput {
		return docker.ContainerLabelArgs{Label: l, Value: v}
	})
}

func tmpfs(paths []string) pulumi.StringMap {
	if len(paths) == 0 {
		return nil
	}
	m := pulumi.StringMap{}
	for _, p := range paths {
		m[p] = pulumi.String("rw,noexec,nosuid,size=64m")
	}
	return m
}

// plainEnv is an environment of plain (not secret) values.
func plainEnv(vars map[string]string) map[string]pulumi.StringInput {
	out := make(map[string]pulumi.StringInput, len(vars))
	for k, v := range vars {
		out[k] = pulumi.String(v)
	}
	return out
}

// envList is the environment as the container API takes it: KEY=VALUE entries, sorted by name,
// a secret value's entry secret.
func envList(env map[string]pulumi.StringInput) pulumi.StringArray {
	out := make(pulumi.StringArray, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, pulumi.Sprintf("%s=%s", k, env[k]))
	}
	return out
}

// readOnlyRoot tells whether the container's root filesystem is read-only. The docker provider
// copies files in at "/", which Docker refuses on a read-only root filesystem, so only a
// container that receives no files is read-only (README: hardening exceptions); a swarm follows
// the same rule, so an image is proven read-only once for both targets.
func (s ContainerSpec) readOnlyRoot() bool { return len(s.Files) == 0 }
