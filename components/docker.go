package components

import (
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"golang.org/x/mod/semver"
)

// DockerEngine is the single-host target: one container per instance, files copied in, images
// pulled once on the host.
type DockerEngine struct{}

func newDockerEngine(o TargetOptions) (Target, []Problem) {
	if o.SwarmEndpointMode == EndpointDNSRR {
		return DockerEngine{}, []Problem{{"swarmEndpointMode", "dnsrr applies to swarm services only; remove it, or set orchestrator swarm"}}
	}
	return DockerEngine{}, nil
}

// Orchestrator implements Target.
func (DockerEngine) Orchestrator() Orchestrator { return OrchestratorDocker }

// Check implements Target: a CPU limit must survive the docker provider's reading it back
// (kreuzwerker v3.8.0, internal/provider/helpers.go:149, nanoInt64ToDecimalString), which writes
// some values with one decimal: 0.05 reads back as 0.1 and 0.01 as 0.0, no limit at all. The
// container would get the value read back, not the one the stack sets.
func (DockerEngine) Check(p Plan) []Problem {
	var out []Problem
	for _, svc := range p.Services {
		if cpus := svc.Resources.CPULimit; !keptOnReadBack(cpus) {
			next := cpus - cpus%1e7
			for !keptOnReadBack(next) || next < cpus {
				next += 1e7
			}
			out = append(out, Problem{"resources." + svc.Name + ".limits.cpus", fmt.Sprintf(
				"%s cannot be set on one engine: the docker provider reads it back as %s; use a value it keeps, such as %s",
				cpus, Resources{CPULimit: cpus}.CPUsAsReadBack(), next)})
		}
	}
	return out
}

// keptOnReadBack tells whether the provider reads a CPU limit back as the same amount.
func keptOnReadBack(cpus NanoCPUs) bool {
	back, err := strconv.ParseFloat(Resources{CPULimit: cpus}.CPUsAsReadBack(), 64)
	return err == nil && math.Abs(back-cpus.CPUs()) < 1e-9
}

// startIntervalAPI is the first Docker Engine API version that accepts a healthcheck start
// interval (Docker 25). Older engines refuse any container that sets one.
const startIntervalAPI = "1.44"

// apiVersionPattern is an engine API version as Docker writes it (1.41): every engine so far
// speaks a 1.x API, which a Docker release number (26.1) is easily mistaken for.
var apiVersionPattern = regexp.MustCompile(`^1\.[0-9]+$`)

// ValidAPIVersion tells whether v reads as an engine API version.
func ValidAPIVersion(v string) bool { return apiVersionPattern.MatchString(v) }

// SupportsStartInterval tells whether an engine speaking API version api takes a healthcheck
// start interval.
func SupportsStartInterval(api string) bool {
	return semver.Compare("v"+api, "v"+startIntervalAPI) >= 0
}

// Prepare implements Target: the start interval goes only to an engine that takes one.
func (DockerEngine) Prepare(p Plan, e Engine, note func(string)) (HealthTiming, error) {
	health, api := p.Health, p.APIVersion
	if api == "" {
		var err error
		if api, err = e.APIVersion(p.Host); err != nil {
			return health, fmt.Errorf("docker engine: cannot ask %s for its API version (%w); start it, or set %s:dockerApiVersion", p.Host, err, p.Namespace)
		}
		if !ValidAPIVersion(api) {
			return health, fmt.Errorf("docker engine at %s answered API version %q; set %s:dockerApiVersion", p.Host, api, p.Namespace)
		}
	}
	// A configured API version is how a stack says the program cannot ask the engine (an ssh://
	// host without the docker CLI here, which the provider does not need): the limits then go
	// unchecked until the engine refuses one.
	m, err := e.Machine(p.Host)
	switch {
	case err != nil && p.APIVersion == "":
		return health, fmt.Errorf("docker engine: cannot ask %s what its host offers (%w); start it, or set %s:dockerApiVersion", p.Host, err, p.Namespace)
	case err != nil:
		note(fmt.Sprintf("cannot ask %s what its host offers (%v): the services' limits are not checked against it", p.Host, err))
	default:
		var problems []Problem
		for _, svc := range p.Services {
			problems = append(problems, limitsBeyond(svc, m, "the engine's host")...)
		}
		if len(problems) > 0 {
			return health, &UnfitError{Namespace: p.Namespace, Where: "the engine at " + p.Host, Problems: problems}
		}
	}
	if health.StartInterval > 0 && !SupportsStartInterval(api) {
		health.StartInterval = 0
		note(fmt.Sprintf("Docker Engine API %s predates %s (Docker 25): healthchecks run without a start interval, so the engine reports a new container healthy only %s after its start", api, startIntervalAPI, health.Interval))
	}
	return health, nil
}

// Replicates implements Target: each instance is its own container.
func (DockerEngine) Replicates() bool { return false }

// TasksDNS implements Target: every instance carries the service's alias.
func (DockerEngine) TasksDNS(host string) string { return host }

// WorkloadNoun implements Target.
func (DockerEngine) WorkloadNoun() string { return "container" }

// NamesFilesByContent implements Target: a container receives its files under fixed paths.
func (DockerEngine) NamesFilesByContent() bool { return false }

func (DockerEngine) image(ctx *pulumi.Context, name, ref string, opts ...pulumi.ResourceOption) (pulumi.StringInput, error) {
	img, err := PullImage(ctx, name, ref, opts...)
	if err != nil {
		return nil, err
	}
	return img.ImageId, nil
}

// volume is a local volume of the engine (a swarm's data node, where the stateful tasks run).
func (DockerEngine) volume(ctx *pulumi.Context, name, dockerName string, policy VolumePolicy, opts ...pulumi.ResourceOption) (*docker.Volume, error) {
	return localVolume(ctx, name, dockerName, policy, opts...)
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
	if rt.Gate != nil {
		return rt.Gate.gated(c, spec), nil
	}
	return providerWaited(c, c.Name), nil
}
