// Package engine asks a Docker engine what the program must know before it declares anything
// (its API version, and the nodes of its swarm) and what a recovery must know after a killed
// deploy (the objects it left).
package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"

	"github.com/maricusco/infra/components"
)

// Docker asks the engine over its socket for unix:// hosts, and through the docker CLI (which
// knows ssh://, TLS and contexts) for the others.
type Docker struct{}

// APIVersion implements components.Engine.
func (Docker) APIVersion(host string) (string, error) {
	var v struct{ APIVersion string }
	if err := ask(host, "/version", cli("version", "--format", "{{json .Server}}"), &v); err != nil {
		return "", err
	}
	return v.APIVersion, nil
}

// Machine implements components.Engine: the CPUs and memory of the engine's host.
func (Docker) Machine(host string) (components.Machine, error) {
	var info struct {
		NCPU     int64
		MemTotal int64
	}
	if err := ask(host, "/info", cli("info", "--format", "{{json .}}"), &info); err != nil {
		return components.Machine{}, err
	}
	if info.NCPU <= 0 || info.MemTotal <= 0 {
		return components.Machine{}, fmt.Errorf("%s /info: no NCPU or MemTotal in the answer", host)
	}
	return components.Machine{CPUs: components.NanoCPUs(info.NCPU * 1e9), Memory: components.UnitBytes(info.MemTotal)}, nil
}

// SwarmNodes implements components.Engine: the swarm's ready nodes, or why the engine cannot take
// the swarm target, which needs a manager.
func (Docker) SwarmNodes(host string) ([]components.SwarmNode, error) {
	var info struct {
		Swarm struct {
			LocalNodeState   string
			ControlAvailable bool
		}
	}
	if err := ask(host, "/info", cli("info", "--format", "{{json .}}"), &info); err != nil {
		return nil, err
	}
	if info.Swarm.LocalNodeState != "active" || !info.Swarm.ControlAvailable {
		return nil, fmt.Errorf("%s is not a swarm manager (swarm state %q); run `docker swarm init` there, or point dockerHost at a manager (docs/cluster.md)", host, info.Swarm.LocalNodeState)
	}
	var nodes []struct {
		Spec        struct{ Labels map[string]string }
		Description struct {
			Hostname  string
			Resources struct{ NanoCPUs, MemoryBytes int64 }
		}
		Status struct{ State string }
	}
	if err := ask(host, "/nodes", inspectNodes, &nodes); err != nil {
		return nil, err
	}
	var out []components.SwarmNode
	for _, n := range nodes {
		if n.Status.State != "ready" {
			continue
		}
		out = append(out, components.SwarmNode{
			Name:   n.Description.Hostname,
			Data:   n.Spec.Labels[components.DataNodeLabel] == "true",
			CPUs:   components.NanoCPUs(n.Description.Resources.NanoCPUs),
			Memory: components.UnitBytes(n.Description.Resources.MemoryBytes),
		})
	}
	return out, nil
}

// query asks the docker CLI, through run, for what an API path answers, as JSON.
type query func(run func(args ...string) ([]byte, error)) ([]byte, error)

// cli is the query `docker <args>`, whose --format '{{json ...}}' prints the API's JSON.
func cli(args ...string) query {
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

// ask reads one answer of the Docker Engine API at host into out: over the socket for unix://,
// otherwise through the docker CLI with q.
func ask(host, path string, q query, out any) error {
	ctx, done := question()
	defer done()
	u, err := url.Parse(host)
	if err != nil {
		return fmt.Errorf("%q: %w", host, err)
	}
	if u.Scheme != "unix" {
		b, err := q(func(args ...string) ([]byte, error) {
			b, err := dockerCLI(ctx, host, args...).Output()
			if err != nil {
				var exit *exec.ExitError
				if errors.As(err, &exit) && len(exit.Stderr) > 0 {
					return nil, fmt.Errorf("docker --host %s %s: %w: %s", host, strings.Join(args, " "), err, strings.TrimSpace(string(exit.Stderr)))
				}
				return nil, fmt.Errorf("docker --host %s %s: %w", host, strings.Join(args, " "), err)
			}
			return b, nil
		})
		if err != nil {
			return err
		}
		return json.Unmarshal(b, out)
	}
	return call(ctx, u, http.MethodGet, path, nil, out)
}

// call sends one request of the Engine API over the socket of host u, with body as JSON, and
// reads a 2xx answer into out (nil: none is read). A 404 is errNotFound.
func call(ctx context.Context, u *url.URL, method, path string, body, out any) error {
	var payload io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		payload = bytes.NewReader(b)
	}
	resp, err := overSocket(ctx, u, method, path, payload)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s %s %s: %s: %w", u, method, path, resp.Status, errNotFound)
	}
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s %s: %s: %s", u, method, path, resp.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: %w", u, path, err)
	}
	return nil
}

// Object is what the engine holds under a name: its ID, its labels, and for a container whether it
// runs.
type Object struct {
	ID      string
	Labels  map[string]string
	Running bool
	// Driver and Options are a network's.
	Driver  string
	Options map[string]string
}

// Kinds of objects Find looks up, by the API path that inspects them.
const (
	ContainerKind = "containers"
	ServiceKind   = "services"
	NetworkKind   = "networks"
)

// Find inspects the object of a kind named name: found is false when the engine has none.
func (Docker) Find(host, kind, name string) (obj Object, found bool, err error) {
	var answer struct {
		ID, Id  string
		Labels  map[string]string
		Config  struct{ Labels map[string]string }
		Spec    struct{ Labels map[string]string }
		State   struct{ Running bool }
		Driver  string
		Options map[string]string
	}
	cliKind := map[string]string{ContainerKind: "container", ServiceKind: "service", NetworkKind: "network"}[kind]
	if cliKind == "" {
		return Object{}, false, fmt.Errorf("engine.Find: unknown kind %q", kind)
	}
	path := "/" + kind + "/" + url.PathEscape(name)
	if kind == ContainerKind {
		path += "/json"
	}
	err = ask(host, path, func(run func(args ...string) ([]byte, error)) ([]byte, error) {
		b, err := run(cliKind, "inspect", "--format", "{{json .}}", name)
		var exit *exec.ExitError
		if errors.As(err, &exit) && cliNotFound(exit.Stderr, name) {
			return nil, errNotFound
		}
		return b, err
	}, &answer)
	if errors.Is(err, errNotFound) {
		return Object{}, false, nil
	}
	if err != nil {
		return Object{}, false, err
	}
	obj = Object{ID: answer.Id + answer.ID, Labels: answer.Labels, Running: answer.State.Running, Driver: answer.Driver, Options: answer.Options}
	for _, labels := range []map[string]string{answer.Config.Labels, answer.Spec.Labels} {
		if labels != nil {
			obj.Labels = labels
		}
	}
	return obj, true, nil
}

// Running implements components.Engine.
func (d Docker) Running(host, name string) (bool, error) {
	obj, _, err := d.Find(host, ContainerKind, name)
	return obj.Running, err
}

// Network implements components.Engine.
func (d Docker) Network(host, name string) (components.NetworkState, bool, error) {
	obj, found, err := d.Find(host, NetworkKind, name)
	return components.NetworkState{Driver: obj.Driver, Options: obj.Options}, found, err
}

// RemoveContainer removes a container, running or not, as `docker rm -f` does.
func (Docker) RemoveContainer(host, name string) error {
	u, err := url.Parse(host)
	if err != nil {
		return fmt.Errorf("%q: %w", host, err)
	}
	ctx, done := question()
	defer done()
	if u.Scheme != "unix" {
		if out, err := dockerCLI(ctx, host, "rm", "-f", name).CombinedOutput(); err != nil {
			return fmt.Errorf("docker --host %s rm -f %s: %w: %s", host, name, err, out)
		}
		return nil
	}
	resp, err := overSocket(ctx, u, http.MethodDelete, "/containers/"+url.PathEscape(name)+"?force=true", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("%s: removing container %s: %s", host, name, resp.Status)
	}
	return nil
}

// cliNotFound tells whether the docker CLI's error is the engine's 404 for the object name. The
// CLI words it as the object's kind has it: "No such container: x", or, from the daemon,
// "network x not found" (Docker 26). A "command not found" of a remote shell is no answer.
func cliNotFound(stderr []byte, name string) bool {
	msg := strings.ToLower(string(stderr))
	name = strings.ToLower(name)
	return strings.Contains(msg, "no such ") || strings.Contains(msg, " "+name+" not found")
}

// errNotFound is the engine's 404: no object of that name.
var errNotFound = errors.New("not found")

// overSocket sends one request of the Engine API over the unix socket of host u.
func overSocket(ctx context.Context, u *url.URL, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", u.Path)
	}}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return resp, nil
}
