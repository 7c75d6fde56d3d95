package stacks

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"golang.org/x/mod/semver"

	"github.com/maricusco/infra/components"
)

// startIntervalAPI is the first Docker Engine API version that accepts a healthcheck start
// interval (Docker 25). Older engines refuse any container that sets one.
const startIntervalAPI = "1.44"

// apiVersionPattern is an engine API version as Docker writes it (1.41): every engine so far
// speaks a 1.x API, which a Docker release number (26.1) is easily mistaken for.
var apiVersionPattern = regexp.MustCompile(`^1\.[0-9]+$`)

func validAPIVersion(v string) bool { return apiVersionPattern.MatchString(v) }

// SupportsStartInterval tells whether an engine speaking API version api takes a healthcheck
// start interval.
func SupportsStartInterval(api string) bool {
	return semver.Compare("v"+api, "v"+startIntervalAPI) >= 0
}

// EngineAPIVersion asks the Docker engine at host for its API version.
func EngineAPIVersion(host string) (string, error) {
	var v struct{ APIVersion string }
	if err := askEngine(host, "/version", dockerCLI("version", "--format", "{{json .Server}}"), &v); err != nil {
		return "", err
	}
	return v.APIVersion, nil
}

// SwarmNode is one node of a swarm, as the scheduler sees it.
type SwarmNode struct {
	// Name is the node's hostname.
	Name string
	// Data tells whether the node carries the data label the stateful services are pinned to.
	Data bool
	// Resources are what the node offers the scheduler.
	CPUs   components.NanoCPUs
	Memory components.UnitBytes
}

// SwarmNodes asks the engine at host for the swarm's ready nodes, or tells why it cannot take
// the swarm target: it must be a swarm manager.
func SwarmNodes(host string) ([]SwarmNode, error) {
	var info struct {
		Swarm struct {
			LocalNodeState   string
			ControlAvailable bool
		}
	}
	if err := askEngine(host, "/info", dockerCLI("info", "--format", "{{json .}}"), &info); err != nil {
		return nil, err
	}
	if info.Swarm.LocalNodeState != "active" || !info.Swarm.ControlAvailable {
		return nil, fmt.Errorf("%s is not a swarm manager (swarm state %q); run `docker swarm init` there, or point dockerHost at a manager (README: Running on a cluster)", host, info.Swarm.LocalNodeState)
	}
	var nodes []struct {
		Spec        struct{ Labels map[string]string }
		Description struct {
			Hostname  string
			Resources struct {
				NanoCPUs    int64
				MemoryBytes int64
			}
		}
		Status struct{ State string }
	}
	if err := askEngine(host, "/nodes", inspectNodes, &nodes); err != nil {
		return nil, err
	}
	var out []SwarmNode
	for _, n := range nodes {
		if n.Status.State != "ready" {
			continue
		}
		out = append(out, SwarmNode{
			Name:   n.Description.Hostname,
			Data:   n.Spec.Labels[components.DataNodeLabel] == "true",
			CPUs:   components.NanoCPUs(n.Description.Resources.NanoCPUs),
			Memory: components.UnitBytes(n.Description.Resources.MemoryBytes),
		})
	}
	return out, nil
}

// checkSwarmFits tells why the stack's services cannot all be scheduled on nodes, or nil. A
// swarm reserves what a service asks for, and holds a task pending forever when no node has
// room, so `up` would wait for it until healthyTimeout; the stateful services need a data node
// with room for all of them, and the app one replica more than it runs while it rolls
// (start-first).
func checkSwarmFits(c *Config, services []string, nodes []SwarmNode) error {
	var data *SwarmNode
	var totalCPUs components.NanoCPUs
	var totalMemory components.UnitBytes
	for i, n := range nodes {
		totalCPUs += n.CPUs
		totalMemory += n.Memory
		if n.Data && (data == nil || n.CPUs > data.CPUs) {
			data = &nodes[i]
		}
	}
	if data == nil {
		return fmt.Errorf("no ready node of the swarm is labelled %s=true, so the stateful services (postgres, redis, chromadb, prometheus, grafana, backup) could never start; label the node that keeps their volumes: `docker node update --label-add %s=true <node>`", components.DataNodeLabel, components.DataNodeLabel)
	}
	var pinnedCPUs, allCPUs components.NanoCPUs
	var pinnedMemory, allMemory components.UnitBytes
	for _, svc := range services {
		res := c.Service(svc).Resources
		if svc == "app" {
			tasks := c.App.Replicas + 1
			allCPUs += res.CPUReservation * components.NanoCPUs(tasks)
			allMemory += res.MemoryReservation * components.UnitBytes(tasks)
			continue
		}
		pinnedCPUs += res.CPUReservation
		pinnedMemory += res.MemoryReservation
	}
	allCPUs += pinnedCPUs
	allMemory += pinnedMemory
	var problems []string
	if pinnedCPUs > data.CPUs || pinnedMemory > data.Memory {
		problems = append(problems, fmt.Sprintf("the stateful services reserve %s CPUs and %s on the data node %s, which offers %s CPUs and %s",
			pinnedCPUs, pinnedMemory, data.Name, data.CPUs, data.Memory))
	}
	if allCPUs > totalCPUs || allMemory > totalMemory {
		problems = append(problems, fmt.Sprintf("all services, with one app replica more while it rolls, reserve %s CPUs and %s, and the swarm's %d ready node(s) offer %s CPUs and %s",
			allCPUs, allMemory, len(nodes), totalCPUs, totalMemory))
	}
	if len(problems) > 0 {
		return fmt.Errorf("the services do not fit: %s; lower resources.<service>.reservations, run fewer appReplicas, or add nodes (README: Running on a cluster)", strings.Join(problems, "; "))
	}
	return nil
}

// cliQuery asks the docker CLI, through run, for what an API path answers, as JSON.
type cliQuery func(run func(args ...string) ([]byte, error)) ([]byte, error)

// dockerCLI is the query `docker <args>`, whose --format '{{json ...}}' prints the API's JSON.
func dockerCLI(args ...string) cliQuery {
	return func(run func(args ...string) ([]byte, error)) ([]byte, error) { return run(args...) }
}

// inspectNodes is /nodes through the CLI: its node list has no labels, so each node is inspected.
func inspectNodes(run func(args ...string) ([]byte, error)) ([]byte, error) {
	ids, err := run("node", "ls", "--quiet")
	if err != nil || len(strings.Fields(string(ids))) == 0 {
		return []byte("[]"), err
	}
	return run(append([]string{"node", "inspect"}, strings.Fields(string(ids))...)...)
}

// askEngine reads one answer of the Docker Engine API at host into out: over the socket for
// unix://, otherwise through the docker CLI (which knows ssh://, TLS and contexts) with cli.
func askEngine(host, path string, cli cliQuery, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u, err := url.Parse(host)
	if err != nil {
		return fmt.Errorf("%q: %w", host, err)
	}
	if u.Scheme != "unix" {
		b, err := cli(func(args ...string) ([]byte, error) {
			b, err := exec.CommandContext(ctx, "docker", append([]string{"--host", host}, args...)...).Output()
			if err != nil {
				return nil, fmt.Errorf("docker --host %s %s: %w", host, strings.Join(args, " "), err)
			}
			return b, nil
		})
		if err != nil {
			return err
		}
		return json.Unmarshal(b, out)
	}
	client := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", u.Path)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", host, path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: %w", host, path, err)
	}
	return nil
}
