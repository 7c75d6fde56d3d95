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

// EngineAPIVersion asks the Docker engine at host for its API version: over its socket for
// unix://, through the docker CLI (which knows ssh://, TLS and contexts) otherwise.
func EngineAPIVersion(host string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u, err := url.Parse(host)
	if err != nil {
		return "", fmt.Errorf("%q: %w", host, err)
	}
	if u.Scheme != "unix" {
		out, err := exec.CommandContext(ctx, "docker", "--host", host, "version", "--format", "{{.Server.APIVersion}}").Output()
		if err != nil {
			return "", fmt.Errorf("docker --host %s version: %w", host, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	client := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", u.Path)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/version", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: %w", host, err)
	}
	defer resp.Body.Close()
	var v struct{ APIVersion string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", fmt.Errorf("%s /version: %w", host, err)
	}
	return v.APIVersion, nil
}
