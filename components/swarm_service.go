package components

import (
	"fmt"
	"time"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// workload turns spec into a swarm service, with its files as Docker configs and secrets.
func (s Swarm) workload(ctx *pulumi.Context, name string, rt Runtime, spec ContainerSpec, opts ...pulumi.ResourceOption) (Workload, error) {
	var files swarmFiles
	var deps []pulumi.Resource
	for _, f := range spec.Files {
		dep, err := files.add(ctx, name, spec.Name, f, spec.secretOwner(), rt.NamingKey, opts)
		if err != nil {
			return Workload{}, err
		}
		deps = append(deps, dep)
	}
	container := serviceContainer(rt, spec, files)
	task := docker.ServiceTaskSpecArgs{
		ContainerSpec:     container,
		Resources:         serviceLimits(spec.Resources),
		RestartPolicy:     serviceRestart(rt.Restart),
		NetworksAdvanceds: serviceNetworks(rt, spec),
		LogDriver:         docker.ServiceTaskSpecLogDriverArgs{Name: pulumi.String("json-file"), Options: logOptions(rt.Logging)},
	}
	if spec.Stateful {
		task.Placement = docker.ServiceTaskSpecPlacementArgs{
			Constraints: pulumi.StringArray{pulumi.String("node.labels." + DataNodeLabel + "==true")},
		}
	} else {
		// The provider's prefs are spread descriptors (kreuzwerker 7e649b0,
		// resource_docker_service_structures.go, flattenPlacementPrefs).
		task.Placement = docker.ServiceTaskSpecPlacementArgs{
			Prefs: pulumi.StringArray{pulumi.String("node.labels." + ZoneLabel)},
		}
	}
	update, rollback := serviceRollout(rt.Health, spec.Stateful)
	args := &docker.ServiceArgs{
		Name:           pulumi.String(spec.Name),
		Labels:         serviceLabels(rt.Labels),
		TaskSpec:       task,
		Mode:           docker.ServiceModeArgs{Replicated: docker.ServiceModeReplicatedArgs{Replicas: pulumi.Int(max(spec.Replicas, 1))}},
		UpdateConfig:   update,
		RollbackConfig: rollback,
		// `pulumi up` returns once every replica runs healthy, not when the service is accepted.
		ConvergeConfig: docker.ServiceConvergeConfigArgs{Delay: pulumi.String("2s"), Timeout: pulumi.String(shortDuration(rt.Health.WaitTimeout))},
	}
	if endpoint := s.endpoint(spec.Ports); endpoint != nil {
		args.EndpointSpec = endpoint
	}
	if len(deps) > 0 {
		opts = append(opts, pulumi.DependsOn(deps))
	}
	if len(spec.After) > 0 {
		opts = append(opts, waitFor(spec.After))
	}
	svc, err := docker.NewService(ctx, name, args, opts...)
	if err != nil {
		return Workload{}, fmt.Errorf("service %s: %w", spec.Name, err)
	}
	return providerWaited(svc, svc.Name), nil
}

// serviceContainer is the task's container: what runs, its healthcheck, hardening and mounts.
func serviceContainer(rt Runtime, spec ContainerSpec, files swarmFiles) docker.ServiceTaskSpecContainerSpecArgs {
	h := hardeningOf(spec)
	c := docker.ServiceTaskSpecContainerSpecArgs{
		Image: spec.Image,
		// Stated empty: the provider plans an unset sysctl as a change on every preview.
		Sysctl:      pulumi.StringMap{},
		Labels:      serviceContainerLabels(rt.Labels),
		Healthcheck: swarmHealthcheck(rt.Health, spec.HealthCheck),
		CapDrops:    pulumi.ToStringArray(h.drop),
		ReadOnly:    pulumi.Bool(h.readOnly),
		// PostgreSQL writes its shutdown checkpoint, an app instance finishes its requests.
		StopGracePeriod: pulumi.String(shortDuration(StopGraceSeconds * time.Second)),
		Mounts:          serviceMounts(spec),
	}
	// Set only when there is one: the provider reads no environment back as none, not as empty.
	if len(spec.Env) > 0 {
		c.Env = pulumi.StringMap(spec.Env)
	}
	if len(h.add) > 0 {
		c.CapAdds = pulumi.ToStringArray(h.add)
	}
	if spec.User != "" {
		c.User = pulumi.String(spec.User)
	}
	// A swarm's Command is the image's entrypoint, its Args the command.
	if len(spec.Entrypoint) > 0 {
		c.Commands = pulumi.ToStringArray(spec.Entrypoint)
	}
	if len(spec.Command) > 0 {
		c.Args = pulumi.ToStringArray(spec.Command)
	}
	if len(files.secrets) > 0 {
		c.Secrets = files.secrets
	}
	if len(files.configs) > 0 {
		c.Configs = files.configs
	}
	return c
}

func serviceMounts(spec ContainerSpec) docker.ServiceTaskSpecContainerSpecMountArray {
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
	return mounts
}

// serviceLimits are real limits and reservations: the scheduler places a task where its
// reservation fits.
func serviceLimits(r Resources) docker.ServiceTaskSpecResourcesArgs {
	return docker.ServiceTaskSpecResourcesArgs{
		Limits:      docker.ServiceTaskSpecResourcesLimitsArgs{NanoCpus: pulumi.Int(int(r.CPULimit)), MemoryBytes: pulumi.Int(int(r.MemoryLimit))},
		Reservation: docker.ServiceTaskSpecResourcesReservationArgs{NanoCpus: pulumi.Int(int(r.CPUReservation)), MemoryBytes: pulumi.Int(int(r.MemoryReservation))},
	}
}

// serviceRestart is the swarm restart condition closest to a container restart policy: a swarm
// restarts any task that exits unless told otherwise, and a manual stop is a service update
// (scale to 0), not a container stop.
func serviceRestart(policy string) docker.ServiceTaskSpecRestartPolicyArgs {
	condition := "any"
	switch policy {
	case "no":
		condition = "none"
	case "on-failure":
		condition = "on-failure"
	}
	// Window "0s" is what the provider reads back for an unbounded window.
	return docker.ServiceTaskSpecRestartPolicyArgs{Condition: pulumi.String(condition), Delay: pulumi.String("5s"), Window: pulumi.String("0s")}
}

// serviceRollout rolls one task at a time and rolls back a failed update. Two tasks of a
// stateful service would share its volume (two PostgreSQL servers on one data directory), so the
// old task stops first; a stateless one starts its new task first, so an update loses no request.
// A new task must stay healthy for a whole healthcheck interval before the next one rolls.
func serviceRollout(h HealthTiming, stateful bool) (docker.ServiceUpdateConfigArgs, docker.ServiceRollbackConfigArgs) {
	order := "start-first"
	if stateful {
		order = "stop-first"
	}
	monitor := pulumi.String(shortDuration(h.Interval + h.Timeout))
	return docker.ServiceUpdateConfigArgs{Parallelism: pulumi.Int(1), Order: pulumi.String(order), Monitor: monitor, FailureAction: pulumi.String("rollback")},
		docker.ServiceRollbackConfigArgs{Parallelism: pulumi.Int(1), Order: pulumi.String(order), Monitor: monitor, FailureAction: pulumi.String("pause")}
}

// endpoint publishes ports through the routing mesh, on every node's address (the target refuses
// any other), or resolves tasks by DNS round robin; nil: the default, a virtual IP.
func (s Swarm) endpoint(bindings []PortBinding) docker.ServiceEndpointSpecPtrInput {
	if s.EndpointMode == EndpointDNSRR {
		return docker.ServiceEndpointSpecArgs{Mode: pulumi.String(EndpointDNSRR)}
	}
	var ports docker.ServiceEndpointSpecPortArray
	for _, p := range bindings {
		ports = append(ports, docker.ServiceEndpointSpecPortArgs{
			TargetPort:    pulumi.Int(p.ContainerPort),
			PublishedPort: pulumi.Int(p.HostPort),
			PublishMode:   pulumi.String("ingress"),
			Protocol:      pulumi.String("tcp"),
		})
	}
	if len(ports) == 0 {
		return nil
	}
	return docker.ServiceEndpointSpecArgs{Ports: ports}
}

// swarmHealthcheck is the healthcheck with the platform's timing, without a start interval,
// which the provider's service does not have.
func swarmHealthcheck(h HealthTiming, test []string) docker.ServiceTaskSpecContainerSpecHealthcheckArgs {
	return docker.ServiceTaskSpecContainerSpecHealthcheckArgs{
		Tests:       pulumi.ToStringArray(test),
		Interval:    pulumi.String(shortDuration(h.Interval)),
		Timeout:     pulumi.String(shortDuration(h.Timeout)),
		Retries:     pulumi.Int(h.Retries),
		StartPeriod: pulumi.String(shortDuration(h.StartPeriod)),
	}
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
