package components

import (
	"strings"
	"time"

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

// Runtime is what a service's containers share with the platform: the networks they join and the
// platform-wide policies.
type Runtime struct {
	// Target turns each service's spec into Docker objects.
	Target Target
	// Networks are the Docker names of the networks the service's containers join, by role
	// (EdgeNetwork, ...): its row's, not all of the platform's.
	Networks map[string]pulumi.StringInput
	// Restart is Docker's restart policy.
	Restart string
	// Health is the healthcheck timing.
	Health HealthTiming
	// Logging is the log rotation.
	Logging Logging
	// Labels are added to every container.
	Labels map[string]string
	// Gate waits for new containers in the program, instead of the provider (nil: the provider
	// waits).
	Gate *HealthGate
	// NamingKey keys the hash in a swarm config's or secret's name (a secret of the stack), so
	// that the name tells nothing about the content to whoever guesses it.
	NamingKey pulumi.StringInput
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

// secretOwner is the uid that owns the spec's secret files where the target can say.
func (s ContainerSpec) secretOwner() string {
	switch {
	case s.SecretReader != "":
		return s.SecretReader
	case s.User != "":
		uid, _, _ := strings.Cut(s.User, ":")
		return uid
	default:
		return "0"
	}
}

// ContainerSpec is what one service states about its workload; its target adds what every
// workload shares and turns it into Docker objects.
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
	// SecretReader is the uid that reads the secret files when it is neither User nor root: the
	// image's own user. Where the target can give a file an owner, each secret file is that
	// reader's alone (0400).
	SecretReader string
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
	After []Workload
	// Replicas is the number of instances a replicating target runs (0: one).
	Replicas int
	// Stateful services keep data in a local volume: a swarm pins them to the data node and
	// stops the old task before starting the new one, so two never share the volume.
	Stateful bool
}
