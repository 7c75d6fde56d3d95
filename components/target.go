package components

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Orchestrator names a target as the `orchestrator` config key does.
type Orchestrator string

// The targets the program deploys to.
const (
	OrchestratorDocker Orchestrator = "docker"
	OrchestratorSwarm  Orchestrator = "swarm"
)

// Target is where the platform runs: containers on one Docker engine, or services on a Docker
// Swarm cluster. It is chosen once, from the stack's config, as kind chooses its provider;
// everything that differs between targets is one of its methods: the rules a plan must meet,
// the questions asked of the engine, and turning each service's ContainerSpec into Docker objects.
type Target interface {
	// Orchestrator names the target as the `orchestrator` config key does.
	Orchestrator() Orchestrator
	// Check returns what of the plan the target cannot run, each problem naming its config key.
	Check(p Plan) []Problem
	// Prepare asks the engine at the plan's host what the target needs to know, and returns the
	// healthcheck timing its engine takes, or why the engine cannot run the plan.
	Prepare(p Plan, e Engine, note func(string)) (HealthTiming, error)
	// Replicates tells whether one workload runs several instances itself (a swarm service's
	// replicas) rather than one container per instance behind a load balancer.
	Replicates() bool
	// TasksDNS is the DNS name that answers one A record per instance of the service named host.
	TasksDNS(host string) string
	// WorkloadNoun is what a workload is on this target (container, service), for names.
	WorkloadNoun() string
	// NamesFilesByContent tells whether the target names each file it delivers after a keyed
	// hash of its content (swarm configs and secrets), so that the stack needs a naming key.
	NamesFilesByContent() bool

	image(ctx *pulumi.Context, name, ref string, opts ...pulumi.ResourceOption) (pulumi.StringInput, error)
	network(ctx *pulumi.Context, name, dockerName string, opts ...pulumi.ResourceOption) (*docker.Network, error)
	volume(ctx *pulumi.Context, name, dockerName string, policy VolumePolicy, opts ...pulumi.ResourceOption) (*docker.Volume, error)
	workload(ctx *pulumi.Context, name string, rt Runtime, spec ContainerSpec, opts ...pulumi.ResourceOption) (Workload, error)
}

// TargetOptions are the target-specific keys of a stack's config.
type TargetOptions struct {
	// SwarmEndpointMode is how swarm services are reached: vip or dnsrr.
	SwarmEndpointMode string
	// SwarmOverlayEncrypted encrypts the swarm's overlay network (IPsec between nodes).
	SwarmOverlayEncrypted bool
}

// targets are the registered targets: a new one is a file with its type and one entry here.
var targets = map[Orchestrator]func(TargetOptions) (Target, []Problem){
	OrchestratorDocker: newDockerEngine,
	OrchestratorSwarm:  newSwarm,
}

// NewTarget is the target the orchestrator key names, with its options, or the problems that
// keep the config from choosing one.
func NewTarget(orchestrator string, o TargetOptions) (Target, []Problem) {
	choose, ok := targets[Orchestrator(orchestrator)]
	if !ok {
		names := slices.Sorted(maps.Keys(targets))
		return nil, []Problem{{"orchestrator", fmt.Sprintf("%q is not an orchestrator; use one of %s", orchestrator, strings.Join(toStrings(names), ", "))}}
	}
	return choose(o)
}

func toStrings[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

// Problem is one config value a target cannot take.
type Problem struct {
	// Key is the config key without its namespace.
	Key string
	// Message says what is wrong and what to do.
	Message string
}

// Plan is what a stack asks a target to run, as the target needs to judge it.
type Plan struct {
	// Namespace prefixes the config keys an error names (maricusco:dockerApiVersion).
	Namespace string
	// Host is the Docker daemon the stack deploys to.
	Host string
	// Networks are the Docker names of the platform's networks.
	Networks []string
	// APIVersion is the engine's API version as configured (empty: ask the engine).
	APIVersion string
	// Health is the stack's healthcheck timing.
	Health HealthTiming
	// Services are the services the stack runs.
	Services []PlannedService
}

// PlannedService is one service of a plan.
type PlannedService struct {
	// Name is the seed's name of the service.
	Name string
	// Publish is its host port (nil: not published).
	Publish *HostPort
	// Stateful services keep data in a volume of their node.
	Stateful bool
	// Resources are its limits and reservations.
	Resources Resources
	// Instances is how many of it run (1 for all but the app).
	Instances int
	// SecretEnvKey names the config key of its secret environment variables, when it has any.
	SecretEnvKey string
}

// Workload is what a target made of one ContainerSpec: a container, or a swarm service.
type Workload struct {
	// Resource is the container or service, for others to depend on.
	Resource pulumi.Resource
	// Name is its Docker name.
	Name pulumi.StringOutput
	// ready resolves to Resource once it passed its healthcheck: what a workload that needs it
	// waits for (Ready).
	ready func() pulumi.ResourceArrayOutput
	// Healthy resolves once the engine reports a container the gate waits for healthy (nil when
	// the provider waits itself); its component registers it, so that the up ends only then.
	Healthy pulumi.Output
}

// Ready resolves to the workload's resource once it passed its healthcheck.
func (w Workload) Ready() pulumi.ResourceArrayOutput { return w.ready() }

// providerWaited is the Workload of r, which its provider returns only once it is healthy.
func providerWaited(r pulumi.Resource, name pulumi.StringOutput) Workload {
	return Workload{Resource: r, Name: name, ready: func() pulumi.ResourceArrayOutput {
		return pulumi.ResourceArray{pulumi.NewResourceInput(r)}.ToResourceArrayOutput()
	}}
}

// health is what a component registers among its outputs so that the up ends once the engine
// reports every workload of it that the gate waits for healthy (nil: the gate waits for none).
func health(ws ...Workload) pulumi.Input {
	var waits []any
	for _, w := range ws {
		if w.Healthy != nil {
			waits = append(waits, w.Healthy)
		}
	}
	if len(waits) == 0 {
		return nil
	}
	return pulumi.All(waits...)
}

// waitFor holds a workload back until every workload of after is ready.
func waitFor(after []Workload) pulumi.ResourceOption {
	ready := make([]any, len(after))
	for i, w := range after {
		ready[i] = w.Ready()
	}
	return pulumi.DependsOnInputs(pulumi.All(ready...).ApplyT(func(all []any) []pulumi.Resource {
		var out []pulumi.Resource
		for _, rs := range all {
			out = append(out, rs.([]pulumi.Resource)...)
		}
		return out
	}).(pulumi.ResourceArrayOutput))
}

// NewWorkload declares spec on the runtime's target: the one place a component's spec becomes a
// Docker object.
func NewWorkload(ctx *pulumi.Context, name string, rt Runtime, spec ContainerSpec, opts ...pulumi.ResourceOption) (Workload, error) {
	if rt.Target == nil {
		return Workload{}, fmt.Errorf("%s: no target", spec.Name)
	}
	if len(rt.joined()) == 0 {
		// Docker would leave it on the default bridge, beside every other container of the host.
		return Workload{}, fmt.Errorf("%s joins none of the platform's networks; name them in its registry row (Networks)", spec.Name)
	}
	w, err := rt.Target.workload(ctx, name, rt, spec, opts...)
	if err != nil {
		return Workload{}, fmt.Errorf("%s: %w", spec.Name, err)
	}
	return w, nil
}
