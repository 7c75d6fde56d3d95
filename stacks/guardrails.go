package stacks

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/distribution/reference"
)

// Guardrail is a rule of the CIS Docker Benchmark's container runtime section that a stack's
// config can break. The rules every container meets whatever the config (no privileged mode, no
// host namespaces, dropped capabilities, no-new-privileges, limits, healthchecks, log rotation,
// the platform network) are the container builder's, and are not configurable.
type Guardrail struct {
	// Name is how `waivers` names the rule.
	Name string
	// Rule says what the rule requires.
	Rule  string
	check func(c *Config) []Problem
}

// Guardrails are checked on every deploy: prod refuses a stack that breaks one, dev deploys it
// with a warning, and a rule named in `waivers` is lifted (with a warning) in both.
var Guardrails = []Guardrail{
	{"pinned-images", "every image is pinned by a tag other than latest, or by a digest", unpinnedImages},
	{"published-ports", "only the app (or its load balancer) and Grafana are published beyond the host's loopback address", exposedPorts},
	{"restart-policy", "every container has a restart policy other than no", noRestart},
}

func unpinnedImages(c *Config) []Problem {
	var out []Problem
	for _, s := range c.registry {
		if s.ImageOf != "" {
			continue // its image is another service's, checked there
		}
		svc, ref := s.Name, c.Services[s.Name].Image
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			continue // reported by the image check
		}
		tagged, hasTag := named.(reference.Tagged)
		_, hasDigest := named.(reference.Digested)
		if !hasDigest && (!hasTag || tagged.Tag() == "latest") {
			out = append(out, Problem{svc + "Image", fmt.Sprintf("%q is not pinned; prod needs a fixed tag or a digest, not latest", ref)})
		}
	}
	return out
}

func exposedPorts(c *Config) []Problem {
	var out []Problem
	for _, s := range c.registry {
		svc, hp := s.Name, c.Services[s.Name].Publish
		if hp == nil || s.Exposed {
			continue
		}
		if ip := net.ParseIP(hp.IP); ip != nil && !ip.IsLoopback() {
			out = append(out, Problem{"ports." + svc, fmt.Sprintf("%s:%d exposes %s beyond the host; the seed exposes only the app and Grafana, so bind it to 127.0.0.1", hp.IP, hp.Port, svc)})
		}
	}
	return out
}

func noRestart(c *Config) []Problem {
	if c.Restart == "no" {
		return []Problem{{"restartPolicy", `"no" leaves a crashed container down; use unless-stopped, always or on-failure`}}
	}
	return nil
}

// checkGuardrails turns each broken rule into an error (prod) or a warning (dev, or waived).
func checkGuardrails(r *reader, c *Config) {
	waivers := c.Waivers
	names := make([]string, len(Guardrails))
	for i, g := range Guardrails {
		names[i] = g.Name
	}
	for _, w := range waivers {
		if !slices.Contains(names, w) {
			r.fail("waivers", "%q is not a guardrail; waive one of %s", w, strings.Join(names, ", "))
		}
	}
	for _, g := range Guardrails {
		for _, p := range g.check(c) {
			switch {
			case slices.Contains(waivers, g.Name):
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s (guardrail %s is waived)", Namespace+":"+p.Key, p.Message, g.Name))
			case c.Environment == "prod":
				r.fail(p.Key, "%s (guardrail %s: %s); fix it, or waive the rule deliberately with `pulumi config set --path 'waivers[0]' %s`", p.Message, g.Name, g.Rule, g.Name)
			default:
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s (guardrail %s; prod would refuse this)", Namespace+":"+p.Key, p.Message, g.Name))
			}
		}
	}
}
