package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/maricusco/infra/components"
)

// Probe implements components.HealthEngine: it runs the container's healthcheck test once, as the engine
// runs it (CMD as given, CMD-SHELL under /bin/sh -c, as the container's user), and tells whether
// it passed within timeout. A test still running at the timeout did not pass; Docker would count
// it as a failed probe too.
func (Docker) Probe(host, container string, test []string, timeout time.Duration) (bool, error) {
	cmd, err := probeCommand(test)
	if err != nil {
		return false, err
	}
	ctx, done := question()
	defer done()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u, err := url.Parse(host)
	if err != nil {
		return false, fmt.Errorf("%q: %w", host, err)
	}
	if u.Scheme != "unix" {
		err := dockerCLI(ctx, host, append([]string{"exec", container}, cmd...)...).Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return true, nil
		case ctx.Err() != nil || errors.As(err, &exit) && exit.ExitCode() != 125:
			return false, nil // the test failed or ran out of time; 125 is the CLI's own failure
		default:
			return false, fmt.Errorf("docker --host %s exec %s: %w", host, container, err)
		}
	}
	passed, err := execOverSocket(ctx, u, container, cmd)
	if err != nil && ctx.Err() != nil {
		// A busy engine that takes the whole timeout to start the test fails the probe, as a test
		// that runs too long does: the next probe asks again.
		return false, nil
	}
	return passed, err
}

// probeCommand is the command a healthcheck test runs.
func probeCommand(test []string) ([]string, error) {
	if len(test) < 2 {
		return nil, fmt.Errorf("healthcheck test %q runs nothing", test)
	}
	switch test[0] {
	case "CMD":
		return test[1:], nil
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", strings.Join(test[1:], " ")}, nil
	}
	return nil, fmt.Errorf("healthcheck test %q is neither CMD nor CMD-SHELL", test)
}

// execOverSocket runs cmd in container, detached, and waits for its exit code until ctx ends.
func execOverSocket(ctx context.Context, u *url.URL, container string, cmd []string) (bool, error) {
	var created struct{ Id string }
	if err := call(ctx, u, http.MethodPost, "/containers/"+url.PathEscape(container)+"/exec", map[string]any{"Cmd": cmd}, &created); err != nil {
		return false, err
	}
	if err := call(ctx, u, http.MethodPost, "/exec/"+created.Id+"/start", map[string]any{"Detach": true}, nil); err != nil {
		return false, err
	}
	for {
		var state struct {
			Running  bool
			ExitCode int
		}
		if err := call(ctx, u, http.MethodGet, "/exec/"+created.Id+"/json", nil, &state); err != nil {
			return false, err
		}
		if !state.Running {
			return state.ExitCode == 0, nil
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Health implements components.HealthEngine: the container's health as the engine reports it, and
// what its last probe printed.
func (Docker) Health(host, container string) (components.Health, error) {
	var answer struct {
		State struct {
			Health *struct {
				Status string
				Log    []struct{ Output string }
			}
		}
	}
	err := ask(host, "/containers/"+url.PathEscape(container)+"/json", cli("container", "inspect", "--format", "{{json .}}", container), &answer)
	if err != nil {
		return components.Health{}, err
	}
	h := answer.State.Health
	if h == nil {
		return components.Health{}, fmt.Errorf("%s has no healthcheck", container)
	}
	out := components.Health{Status: h.Status}
	if len(h.Log) > 0 {
		out.LastOutput = strings.TrimSpace(h.Log[len(h.Log)-1].Output)
	}
	return out, nil
}

// Containers implements components.HealthEngine.
func (Docker) Containers(host, label string) (map[string]string, error) {
	filters, err := json.Marshal(map[string][]string{"label": {label}})
	if err != nil {
		return nil, err
	}
	var answer []struct {
		Id    string
		Names []string
	}
	path := "/containers/json?all=true&filters=" + url.QueryEscape(string(filters))
	err = ask(host, path, func(run func(args ...string) ([]byte, error)) ([]byte, error) {
		// The CLI lists one container a line; the answer is the API's list.
		b, err := run("ps", "--all", "--no-trunc", "--filter", "label="+label, "--format", "{{.ID}} {{.Names}}")
		if err != nil {
			return nil, err
		}
		var list []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if id, names, ok := strings.Cut(line, " "); ok {
				list = append(list, map[string]any{"Id": id, "Names": []string{"/" + names}})
			}
		}
		return json.Marshal(list)
	}, &answer)
	if err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for _, c := range answer {
		for _, name := range c.Names {
			ids[strings.TrimPrefix(name, "/")] = c.Id
		}
	}
	return ids, nil
}
