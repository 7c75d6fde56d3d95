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
	if err := askEngine(host, "/version", []string{"version", "--format", "{{json .Server}}"}, &v); err != nil {
		return "", err
	}
	return v.APIVersion, nil
}

// SwarmReady tells why the engine at host cannot take the swarm target, or nil: it must be a
// swarm manager, and some node must carry the data label the stateful services are pinned to.
// Without this, `pulumi up` would wait for tasks that can never be scheduled.
func SwarmReady(host string) error {
	var info struct {
		LocalNodeState   string
		ControlAvailable bool
	}
	if err := askEngine(host, "/info", []string{"info", "--format", "{{json .}}"}, &struct {
		Swarm any
	}{&info}); err != nil {
		return err
	}
	if info.LocalNodeState != "active" || !info.ControlAvailable {
		return fmt.Errorf("%s is not a swarm manager (swarm state %q); run `docker swarm init` there, or point dockerHost at a manager (README: Running on a cluster)", host, info.LocalNodeState)
	}
	var nodes []struct {
		Spec struct{ Labels map[string]string }
	}
	if err := askEngine(host, "/nodes", []string{"node", "ls", "--quiet"}, &nodes); err != nil {
		return err
	}
	for _, n := range nodes {
		if n.Spec.Labels[components.DataNodeLabel] == "true" {
			return nil
		}
	}
	return fmt.Errorf("no node of the swarm at %s is labelled %s=true, so postgres, redis, chromadb, prometheus, grafana and the backups could never start; label the node that keeps their volumes: `docker node update --label-add %s=true <node>`", host, components.DataNodeLabel, components.DataNodeLabel)
}

// askEngine reads one answer of the Docker Engine API at host into out: over the socket for
// unix://, otherwise through the docker CLI (which knows ssh://, TLS and contexts) with args.
func askEngine(host, path string, args []string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u, err := url.Parse(host)
	if err != nil {
		return fmt.Errorf("%q: %w", host, err)
	}
	if u.Scheme != "unix" {
		return askDockerCLI(ctx, host, path, args, out)
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

// askDockerCLI runs `docker --host host <args>`, which prints the API's JSON (--format '{{json .}}'),
// or for /nodes the node IDs, which it then inspects.
func askDockerCLI(ctx context.Context, host, path string, args []string, out any) error {
	b, err := exec.CommandContext(ctx, "docker", append([]string{"--host", host}, args...)...).Output()
	if err != nil {
		return fmt.Errorf("docker --host %s %s: %w", host, strings.Join(args, " "), err)
	}
	if path == "/nodes" {
		// The CLI's node list has no labels; ask for each node's inspection instead.
		ids := strings.Fields(string(b))
		if len(ids) == 0 {
			return json.Unmarshal([]byte("[]"), out)
		}
		b, err = exec.CommandContext(ctx, "docker", append([]string{"--host", host, "node", "inspect"}, ids...)...).Output()
		if err != nil {
			return fmt.Errorf("docker --host %s node inspect: %w", host, err)
		}
		return json.Unmarshal(b, out)
	}
	return json.Unmarshal(b, out)
}
