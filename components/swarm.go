package components

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// DataNodeLabel is the node label that marks the swarm node holding the stateful services'
// volumes: `docker node update --label-add maricusco.data=true <node>`.
const DataNodeLabel = "maricusco.data"

// Swarm is the Docker Swarm target: one replicated service per platform service, behind the
// routing mesh, with files and secrets as Docker configs and secrets.
type Swarm struct {
	// EndpointMode is how a service's name resolves: vip (one virtual IP, balanced by IPVS, and
	// the routing mesh for published ports) or dnsrr (one DNS record per task, nothing published),
	// for hosts whose kernel has no IPVS.
	EndpointMode string
}

// Endpoint modes of a swarm service.
const (
	EndpointVIP   = "vip"
	EndpointDNSRR = "dnsrr"
)

// Orchestrator implements Target.
func (Swarm) Orchestrator() string { return "swarm" }

// Replicates implements Target: a service runs its replicas itself.
func (Swarm) Replicates() bool { return true }

// TasksDNS implements Target: a service's own name resolves to its virtual IP; tasks.<name>
// answers one record per running task.
func (Swarm) TasksDNS(host string) string { return "tasks." + host }

func (Swarm) workloadNoun() string { return "service" }

// image is the reference itself: each node pulls it where a task lands.
func (Swarm) image(_ *pulumi.Context, _, ref string, _ ...pulumi.ResourceOption) (pulumi.StringInput, error) {
	return pulumi.String(ref), nil
}

func (Swarm) network(ctx *pulumi.Context, name, dockerName string, opts ...pulumi.ResourceOption) (*docker.Network, error) {
	// Attachable, so a one-off container (a psql, a restore) can join the services' network.
	return docker.NewNetwork(ctx, name, &docker.NetworkArgs{
		Name:       pulumi.String(dockerName),
		Driver:     pulumi.String("overlay"),
		Attachable: pulumi.Bool(true),
	}, append(opts, pulumi.DeleteBeforeReplace(true))...)
}

// workload turns spec into a swarm service.
func (s Swarm) workload(ctx *pulumi.Context, name string, rt Runtime, spec ContainerSpec, opts ...pulumi.ResourceOption) (Workload, error) {
	container := docker.ServiceTaskSpecContainerSpecArgs{
		Image: spec.Image,
		// Stated empty: the provider plans an unset sysctl as a change on every preview.
		Sysctl:      pulumi.StringMap{},
		Labels:      serviceContainerLabels(rt.Labels),
		Healthcheck: swarmHealthcheck(rt.Health, spec.HealthCheck),
		CapDrops:    pulumi.StringArray{pulumi.String("ALL")},
		ReadOnly:    pulumi.Bool(spec.readOnlyRoot()),
		// PostgreSQL writes its shutdown checkpoint, an app instance finishes its requests.
		StopGracePeriod: pulumi.String(shortDuration(StopGraceSeconds * time.Second)),
	}
	// Set only when there is one: the provider reads no environment back as none, not as empty.
	if len(spec.Env) > 0 {
		container.Env = pulumi.StringMap(spec.Env)
	}
	if len(spec.Capabilities) > 0 {
		container.CapAdds = capabilities(spec.Capabilities)
	}
	if spec.User != "" {
		container.User = pulumi.String(spec.User)
	}
	// A swarm's Command is the image's entrypoint, its Args the command.
	if len(spec.Entrypoint) > 0 {
		container.Commands = pulumi.ToStringArray(spec.Entrypoint)
	}
	if len(spec.Command) > 0 {
		container.Args = pulumi.ToStringArray(spec.Command)
	}
	var mounts docker.ServiceTaskSpecContainerSpecMountArray
	for _, v := range spec.Volumes {
		mounts = append(mounts, docker.ServiceTaskSpecContainerSpecMountArgs{Type: pulumi.String("volume"), Source: v.Volume, Target: pulumi.String(v.Path)})
	}
	for _, p := range spec.WritablePaths {
		// Unsized: the provider panics on any tmpfs size (kreuzwerker v3.8.0,
		// resource_docker_service_structures.go:841 asserts the schema's int as int64). What a
		// tmpfs holds counts against the task's memory limit, which bounds it instead.
		mounts = append(mounts, docker.ServiceTaskSpecContainerSpecMountArgs{Type: pulumi.String("tmpfs"), Target: pulumi.String(p)})
	}
	container.Mounts = mounts
	var (
		deps    []pulumi.Resource
		mounted swarmFiles
	)
	for _, f := range spec.Files {
		dep, err := mounted.add(ctx, name, spec.Name, f, opts)
		if err != nil {
			return Workload{}, err
		}
		deps = append(deps, dep)
	}
	if len(mounted.secrets) > 0 {
		container.Secrets = mounted.secrets
	}
	if len(mounted.configs) > 0 {
		container.Configs = mounted.configs
	}
	replicas := max(spec.Replicas, 1)
	// Two tasks of a stateful service would share its volume (two PostgreSQL servers on one data
	// directory): the old task stops first. A stateless one starts its new task first, so an
	// update loses no request.
	order := "start-first"
	if spec.Stateful {
		order = "stop-first"
	}
	// A new task must stay healthy for a whole healthcheck interval before the next one rolls.
	monitor := pulumi.String(shortDuration(rt.Health.Interval + rt.Health.Timeout))
	task := docker.ServiceTaskSpecArgs{
		ContainerSpec: container,
		Resources: docker.ServiceTaskSpecResourcesArgs{
			Limits: docker.ServiceTaskSpecResourcesLimitsArgs{
				NanoCpus:    pulumi.Int(int(spec.Resources.CPULimit)),
				MemoryBytes: pulumi.Int(int(spec.Resources.MemoryLimit)),
			},
			Reservation: docker.ServiceTaskSpecResourcesReservationArgs{
				NanoCpus:    pulumi.Int(int(spec.Resources.CPUReservation)),
				MemoryBytes: pulumi.Int(int(spec.Resources.MemoryReservation)),
			},
		},
		RestartPolicy: docker.ServiceTaskSpecRestartPolicyArgs{
			Condition: pulumi.String(swarmRestartCondition(rt.Restart)),
			Delay:     pulumi.String("5s"),
			// What the provider reads back for an unbounded window.
			Window: pulumi.String("0s"),
		},
		NetworksAdvanceds: docker.ServiceTaskSpecNetworksAdvancedArray{docker.ServiceTaskSpecNetworksAdvancedArgs{
			Name:    rt.Network,
			Aliases: pulumi.ToStringArray(spec.Aliases),
		}},
		LogDriver: docker.ServiceTaskSpecLogDriverArgs{
			Name: pulumi.String("json-file"),
			Options: pulumi.StringMap{
				"max-size": pulumi.String(rt.Logging.MaxSize),
				"max-file": pulumi.String(strconv.Itoa(rt.Logging.MaxFile)),
			},
		},
	}
	if spec.Stateful {
		task.Placement = docker.ServiceTaskSpecPlacementArgs{
			Constraints: pulumi.StringArray{pulumi.String("node.labels." + DataNodeLabel + "==true")},
		}
	}
	args := &docker.ServiceArgs{
		Name:     pulumi.String(spec.Name),
		Labels:   serviceLabels(rt.Labels),
		TaskSpec: task,
		Mode: docker.ServiceModeArgs{
			Replicated: docker.ServiceModeReplicatedArgs{Replicas: pulumi.Int(replicas)},
		},
		UpdateConfig: docker.ServiceUpdateConfigArgs{
			Parallelism:   pulumi.Int(1),
			Order:         pulumi.String(order),
			Monitor:       monitor,
			FailureAction: pulumi.String("rollback"),
		},
		RollbackConfig: docker.ServiceRollbackConfigArgs{
			Parallelism:   pulumi.Int(1),
			Order:         pulumi.String(order),
			Monitor:       monitor,
			FailureAction: pulumi.String("pause"),
		},
		// `pulumi up` returns once every replica runs healthy, not when the service is accepted.
		ConvergeConfig: docker.ServiceConvergeConfigArgs{
			Delay:   pulumi.String("2s"),
			Timeout: pulumi.String(shortDuration(rt.Health.WaitTimeout)),
		},
	}
	var ports docker.ServiceEndpointSpecPortArray
	for _, p := range spec.Ports {
		// The routing mesh publishes on every node's address; the config refuses any other.
		ports = append(ports, docker.ServiceEndpointSpecPortArgs{
			TargetPort:    pulumi.Int(p.ContainerPort),
			PublishedPort: pulumi.Int(p.HostPort),
			PublishMode:   pulumi.String("ingress"),
			Protocol:      pulumi.String("tcp"),
		})
	}
	switch {
	case s.EndpointMode == EndpointDNSRR:
		args.EndpointSpec = docker.ServiceEndpointSpecArgs{Mode: pulumi.String(EndpointDNSRR)}
	case len(ports) > 0:
		args.EndpointSpec = docker.ServiceEndpointSpecArgs{Ports: ports}
	}
	if len(spec.After) > 0 || len(deps) > 0 {
		opts = append(opts, pulumi.DependsOn(append(append([]pulumi.Resource{}, spec.After...), deps...)))
	}
	svc, err := docker.NewService(ctx, name, args, opts...)
	if err != nil {
		return Workload{}, fmt.Errorf("service %s: %w", spec.Name, err)
	}
	return Workload{Resource: svc, Name: svc.Name}, nil
}

var configNameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// swarmFiles are the configs and secrets a service mounts.
type swarmFiles struct {
	configs docker.ServiceTaskSpecContainerSpecConfigArray
	secrets docker.ServiceTaskSpecContainerSpecSecretArray
}

// add declares f as a Docker config, or a Docker secret when f is secret, and mounts it at
// f.Path(). Both are immutable, so the Docker name carries a hash of the file's whole path and
// content: a new content is a new object, the service rolls onto it, and the old one goes.
func (m *swarmFiles) add(ctx *pulumi.Context, name, service string, f File, opts []pulumi.ResourceOption) (pulumi.Resource, error) {
	base := configNameUnsafe.ReplaceAllString(path.Base(f.Name), "-")
	if len(base) > 24 {
		base = base[:24]
	}
	child := name + "-" + configNameUnsafe.ReplaceAllString(f.Name, "-")
	// The hash of a secret is not the secret, so the name is shown as the plain string it is.
	dockerName := pulumi.Unsecret(f.Content.ToStringOutput().ApplyT(func(content string) string {
		sum := sha256.Sum256([]byte(f.Path() + "\x00" + content))
		return service + "-" + base + "-" + hex.EncodeToString(sum[:])[:12]
	}).(pulumi.StringOutput)).(pulumi.StringOutput)
	data := f.Content.ToStringOutput().ApplyT(func(content string) string {
		return base64.StdEncoding.EncodeToString([]byte(content))
	}).(pulumi.StringOutput)
	const readOnly = 0o444
	// The bridge asks to delete an explicitly named object before creating its replacement
	// (pulumi-terraform-bridge v3.116.0, tfbridge/schema.go, nameRequiresDeleteBeforeReplace),
	// and Docker refuses to delete a secret a service mounts: the new object comes first, the
	// services move to it, and the old one goes at the end.
	opts = append(slices.Clip(opts), pulumi.DeleteBeforeReplace(false))
	if f.Secret {
		s, err := docker.NewSecret(ctx, child, &docker.SecretArgs{Name: dockerName, Data: pulumi.ToSecret(data).(pulumi.StringOutput)}, opts...)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", f.Name, err)
		}
		m.secrets = append(m.secrets, docker.ServiceTaskSpecContainerSpecSecretArgs{
			SecretId: s.ID(), SecretName: s.Name, FileName: pulumi.String(f.Path()),
			FileMode: pulumi.Int(readOnly), FileUid: pulumi.String("0"), FileGid: pulumi.String("0"),
		})
		return s, nil
	}
	c, err := docker.NewServiceConfig(ctx, child, &docker.ServiceConfigArgs{Name: dockerName, Data: data}, opts...)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", f.Name, err)
	}
	m.configs = append(m.configs, docker.ServiceTaskSpecContainerSpecConfigArgs{
		ConfigId: c.ID(), ConfigName: c.Name, FileName: pulumi.String(f.Path()),
		FileMode: pulumi.Int(readOnly), FileUid: pulumi.String("0"), FileGid: pulumi.String("0"),
	})
	return c, nil
}

// swarmRestartCondition is the swarm restart condition closest to a container restart policy:
// a swarm restarts any task that exits unless told otherwise, and a manual stop is a service
// update (scale to 0), not a container stop.
func swarmRestartCondition(policy string) string {
	switch policy {
	case "no":
		return "none"
	case "on-failure":
		return "on-failure"
	default:
		return "any"
	}
}

// swarmHealthcheck is the healthcheck with the platform's timing. The docker provider's service
// has no start interval (kreuzwerker v3.8.0, resource_docker_service.go, healthcheck block), so a
// swarm task is known healthy after one interval, not in seconds.
func swarmHealthcheck(h HealthTiming, test []string) docker.ServiceTaskSpecContainerSpecHealthcheckArgs {
	return docker.ServiceTaskSpecContainerSpecHealthcheckArgs{
		Tests:       pulumi.ToStringArray(test),
		Interval:    pulumi.String(shortDuration(h.Interval)),
		Timeout:     pulumi.String(shortDuration(h.Timeout)),
		Retries:     pulumi.Int(h.Retries),
		StartPeriod: pulumi.String(shortDuration(h.StartPeriod)),
	}
}

// shortDuration writes d as the provider reads a service's durations back (kreuzwerker v3.8.0,
// resource_docker_service_structures.go, shortDur): time.Duration.String without a trailing
// "0s" or "0m" ("1m", not "1m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func serviceLabels(labels map[string]string) docker.ServiceLabelArray {
	return sortedLabels(labels, func(l, v pulumi.String) docker.ServiceLabelInput {
		return docker.ServiceLabelArgs{Label: l, Value: v}
	})
}

func serviceContainerLabels(labels map[string]string) docker.ServiceTaskSpecContainerSpecLabelArray {
	return sortedLabels(labels, func(l, v pulumi.String) docker.ServiceTaskSpecContainerSpecLabelInput {
		return docker.ServiceTaskSpecContainerSpecLabelArgs{Label: l, Value: v}
	})
}
