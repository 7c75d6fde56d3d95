package components

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// DataNodeLabel is the node label that marks the swarm node holding the stateful services'
// volumes: `docker node update --label-add maricusco.data=true <node>`.
const DataNodeLabel = "maricusco.data"

// ZoneLabel is the node label (a rack, an availability zone) that a stateless service's tasks
// spread over first: `docker node update --label-add maricusco.zone=<zone> <node>`. Swarm spreads
// over node labels only, and counts the nodes without the label as one zone (swarmkit,
// manager/scheduler/nodeset.go, tree), so on a cluster that sets none its own order decides:
// the node with the fewest tasks of the service first.
const ZoneLabel = "maricusco.zone"

// Swarm is the Docker Swarm target: one replicated service per platform service, behind the
// routing mesh, with files and secrets as Docker configs and secrets.
type Swarm struct {
	// EndpointMode is how a service's name resolves: vip (one virtual IP, balanced by IPVS, and
	// the routing mesh for published ports) or dnsrr (one DNS record per task, nothing published),
	// for hosts whose kernel has no IPVS.
	EndpointMode string
	// Encrypted overlays carry the services' traffic between nodes in IPsec (ESP), at a cost in
	// throughput and latency (docs/cluster.md).
	Encrypted bool
}

// Endpoint modes of a swarm service.
const (
	EndpointVIP   = "vip"
	EndpointDNSRR = "dnsrr"
)

func newSwarm(o TargetOptions) (Target, []Problem) {
	switch o.SwarmEndpointMode {
	case EndpointVIP, EndpointDNSRR:
		return Swarm{EndpointMode: o.SwarmEndpointMode, Encrypted: o.SwarmOverlayEncrypted}, nil
	default:
		return Swarm{EndpointMode: EndpointVIP, Encrypted: o.SwarmOverlayEncrypted}, []Problem{{"swarmEndpointMode", fmt.Sprintf("%q is not an endpoint mode; use vip or dnsrr", o.SwarmEndpointMode)}}
	}
}

// Orchestrator implements Target.
func (Swarm) Orchestrator() Orchestrator { return OrchestratorSwarm }

// Check implements Target: the routing mesh publishes on every address of every node, or, in
// dnsrr mode, nothing; and a service's environment is plain in `docker service inspect`.
func (s Swarm) Check(p Plan) []Problem {
	var out []Problem
	for _, svc := range p.Services {
		key := "ports." + svc.Name
		switch {
		case svc.Publish == nil:
		case s.EndpointMode == EndpointDNSRR:
			out = append(out, Problem{key, "cannot be published with swarmEndpointMode dnsrr, which has no routing mesh; unpublish it (empty value) and reach it through a proxy on the attachable network, or use vip"})
		case svc.Publish.IP != "0.0.0.0":
			out = append(out, Problem{key, fmt.Sprintf("%s:%d cannot be published under swarm: the routing mesh publishes a port on every address of every node, never on one address; publish it on 0.0.0.0, or unpublish it (empty value) and reach it from a container on the attachable network", svc.Publish.IP, svc.Publish.Port)})
		}
		if svc.SecretEnvKey != "" {
			out = append(out, Problem{svc.SecretEnvKey, "cannot be used under swarm: a service's environment is shown in plaintext by `docker service inspect`; deliver the value as a file instead, or run with orchestrator docker"})
		}
	}
	return out
}

// Prepare implements Target: the engine must be a swarm manager whose nodes have room for what
// the services reserve. The docker provider gives a service's healthcheck no start interval
// (kreuzwerker v3.8.0, resource_docker_service.go, healthcheck block), so a task is known healthy
// after one interval.
func (s Swarm) Prepare(p Plan, e Engine, _ func(string)) (HealthTiming, error) {
	health := p.Health
	health.StartInterval = 0
	nodes, err := e.SwarmNodes(p.Host)
	if err == nil {
		err = checkSwarmFits(p.Services, nodes)
	}
	if err == nil {
		if problems := swarmLimitsBeyond(p.Services, nodes); len(problems) > 0 {
			err = &UnfitError{Namespace: p.Namespace, Where: "the nodes of the swarm at " + p.Host, Problems: problems}
		}
	}
	if err == nil {
		err = s.checkNetworksKept(p, e)
	}
	if err != nil {
		return health, fmt.Errorf("docker swarm: %w", err)
	}
	return health, nil
}

// checkSwarmFits tells why the services cannot all be scheduled on nodes, or nil. A swarm
// reserves what a service asks for, and holds a task pending forever when no node has room, so
// `up` would wait for it until healthyTimeout; the stateful services need a data node with room
// for all of them, and a stateless one a task more than it runs while it rolls (start-first).
func checkSwarmFits(services []PlannedService, nodes []SwarmNode) error {
	data := dataNode(nodes)
	var offered capacity
	for _, n := range nodes {
		offered = offered.plus(n.CPUs, n.Memory, 1)
	}
	var stateful []string
	var pinned, all capacity
	for _, svc := range services {
		res, tasks := svc.Resources, svc.Instances
		if svc.Stateful {
			stateful = append(stateful, svc.Name)
			pinned = pinned.plus(res.CPUReservation, res.MemoryReservation, 1)
		} else {
			tasks++
		}
		all = all.plus(res.CPUReservation, res.MemoryReservation, tasks)
	}
	if data == nil {
		return fmt.Errorf("no ready node of the swarm is labelled %s=true, so the stateful services (%s) could never start; label the node that keeps their volumes: `docker node update --label-add %s=true <node>`", DataNodeLabel, strings.Join(stateful, ", "), DataNodeLabel)
	}
	var problems []string
	if !pinned.within(capacity{data.CPUs, data.Memory}) {
		problems = append(problems, fmt.Sprintf("the stateful services reserve %s on the data node %s, which offers %s", pinned, data.Name, capacity{data.CPUs, data.Memory}))
	}
	if !all.within(offered) {
		problems = append(problems, fmt.Sprintf("all services, with a task more of each stateless one while it rolls, reserve %s, and the swarm's %d ready node(s) offer %s", all, len(nodes), offered))
	}
	if len(problems) > 0 {
		return fmt.Errorf("the services do not fit: %s; lower resources.<service>.reservations, run fewer appReplicas, or add nodes (docs/cluster.md)", strings.Join(problems, "; "))
	}
	return nil
}

// dataNode is the node the stateful services run on: the labelled one with the most CPUs, or nil.
func dataNode(nodes []SwarmNode) *SwarmNode {
	var data *SwarmNode
	for i, n := range nodes {
		if n.Data && (data == nil || n.CPUs > data.CPUs) {
			data = &nodes[i]
		}
	}
	return data
}

// swarmLimitsBeyond names each limit no node a task may land on can give: a stateful service's
// on the data node, another's on the largest node. It runs after checkSwarmFits, which refuses
// a swarm without a data node.
func swarmLimitsBeyond(services []PlannedService, nodes []SwarmNode) []Problem {
	var data, largest Machine
	if n := dataNode(nodes); n != nil {
		data = Machine{n.CPUs, n.Memory}
	}
	for _, n := range nodes {
		largest.CPUs, largest.Memory = max(largest.CPUs, n.CPUs), max(largest.Memory, n.Memory)
	}
	var out []Problem
	for _, svc := range services {
		if svc.Stateful {
			out = append(out, limitsBeyond(svc, data, "the data node")...)
		} else {
			out = append(out, limitsBeyond(svc, largest, "the largest node")...)
		}
	}
	return out
}

// capacity is CPUs and memory, offered by nodes or reserved by tasks.
type capacity struct {
	cpus   NanoCPUs
	memory UnitBytes
}

func (c capacity) plus(cpus NanoCPUs, memory UnitBytes, times int) capacity {
	return capacity{c.cpus + cpus*NanoCPUs(times), c.memory + memory*UnitBytes(times)}
}

func (c capacity) within(o capacity) bool { return c.cpus <= o.cpus && c.memory <= o.memory }

func (c capacity) String() string { return fmt.Sprintf("%s CPUs and %s", c.cpus, c.memory) }

// Replicates implements Target: a service runs its replicas itself.
func (Swarm) Replicates() bool { return true }

// TasksDNS implements Target: a service's own name resolves to its virtual IP; tasks.<name>
// answers one record per running task.
func (Swarm) TasksDNS(host string) string { return "tasks." + host }

// WorkloadNoun implements Target.
func (Swarm) WorkloadNoun() string { return "service" }

// NamesFilesByContent implements Target: configs and secrets are immutable, so each content is
// a new object under a new name.
func (Swarm) NamesFilesByContent() bool { return true }

// image is the reference itself: each node pulls it where a task lands.
func (Swarm) image(_ *pulumi.Context, _, ref string, _ ...pulumi.ResourceOption) (pulumi.StringInput, error) {
	return pulumi.String(ref), nil
}

// volume is a local volume of the engine (a swarm's data node, where the stateful tasks run).
func (Swarm) volume(ctx *pulumi.Context, name, dockerName string, policy VolumePolicy, opts ...pulumi.ResourceOption) (*docker.Volume, error) {
	return localVolume(ctx, name, dockerName, policy, opts...)
}

func (s Swarm) network(ctx *pulumi.Context, name, dockerName string, opts ...pulumi.ResourceOption) (*docker.Network, error) {
	// Attachable, so a one-off container (a psql, a restore) can join the services' network.
	args := &docker.NetworkArgs{
		Name:       pulumi.String(dockerName),
		Driver:     pulumi.String("overlay"),
		Attachable: pulumi.Bool(true),
	}
	if s.Encrypted {
		args.Options = pulumi.ToStringMap(encryptedOverlayOptions(dockerName))
	}
	return docker.NewNetwork(ctx, name, args, append(opts, pulumi.DeleteBeforeReplace(true))...)
}

// vxlanOption is the overlay driver's option that names the network's VXLAN id.
const vxlanOption = "com.docker.network.driver.overlay.vxlanid_list"

// encryptedOverlayOptions are an encrypted overlay's driver options, its VXLAN id among them. The
// provider reads back every option Docker keeps, and the swarm adds the VXLAN id it chose to any
// network that names none; since options are ForceNew (kreuzwerker v3.8.0,
// resource_docker_network.go), a network whose program omits it would be replaced on every up.
// The id is derived from the network's name, inside the range the swarm allocates from
// (libnetwork's overlay manager: 4096 to 2^24-1).
func encryptedOverlayOptions(dockerName string) map[string]string {
	const first, last = 4096, 1<<24 - 1
	h := fnv.New32a()
	h.Write([]byte(dockerName))
	return map[string]string{"encrypted": "", vxlanOption: strconv.FormatUint(uint64(first+h.Sum32()%(last-first+1)), 10)}
}

// checkNetworksKept refuses a plan that would replace one of the stack's overlay networks: Docker
// neither encrypts a network in place nor deletes one that services are attached to. A bridge left
// by the docker target is no such network: it goes first, with the containers on it.
func (s Swarm) checkNetworksKept(p Plan, e Engine) error {
	var errs []error
	for _, network := range p.Networks {
		if err := s.checkNetworkKept(p, network, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s Swarm) checkNetworkKept(p Plan, network string, e Engine) error {
	existing, found, err := e.Network(p.Host, network)
	if err != nil {
		return fmt.Errorf("cannot inspect the network %s: %w", network, err)
	}
	if !found || existing.Driver != "overlay" {
		return nil
	}
	_, encrypted := existing.Options["encrypted"]
	held, ours := existing.Options[vxlanOption], encryptedOverlayOptions(network)[vxlanOption]
	const downtime = "with the services down (docs/cluster.md): with the key as the network is, lift protect and `destroy` (the volumes stay), %s`up`"
	var problem, fix string
	switch {
	case encrypted != s.Encrypted:
		problem = fmt.Sprintf("is %t, but the overlay network %s is %s", s.Encrypted, network, map[bool]string{true: "encrypted", false: "not encrypted"}[encrypted])
		fix = fmt.Sprintf("keep the network as it is with `config set swarmOverlayEncrypted %t`, or switch "+downtime, encrypted, "set the key, ")
	case encrypted && held != ours:
		problem = fmt.Sprintf("is true, but the encrypted overlay network %s has VXLAN id %s, not the %s this program gives it", network, held, ours)
		fix = "remove the network it did not make " + fmt.Sprintf(downtime, "`docker network rm "+network+"`, ")
	default:
		return nil
	}
	return fmt.Errorf("%s:swarmOverlayEncrypted %s; Docker cannot change a network in place nor delete one services are attached to, so nothing was deployed: %s", p.Namespace, problem, fix)
}
