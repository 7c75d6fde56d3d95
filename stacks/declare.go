package stacks

import (
	"encoding"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/maricusco/infra/components"
)

// declare reads every key, in the order the docs list them, with its default: what a value of
// the wrong type or notation is reported here, and every rule between values in validate.
func declare(r *reader, stack string, registry []Service) *Config {
	c := &Config{Services: map[string]*ServiceConfig{}, Secrets: map[string]string{}, registry: registry}
	declarePlatform(r, c, stack)
	for _, s := range registry {
		c.Services[s.Name] = &ServiceConfig{}
		if s.ImageOf == "" {
			c.Services[s.Name].Image = r.str(s.Name+"Image", s.Image, s.ImageDescription)
		}
	}
	for _, s := range registry {
		if s.ImageOf != "" {
			c.Services[s.Name].Image = c.Services[s.ImageOf].Image
		}
	}
	declareResources(r, c)
	declarePorts(r, c)
	for _, s := range registry {
		if s.Declare != nil {
			s.Declare(r, c)
		}
	}
	c.Waivers = r.list("waivers", "Guardrails this stack lifts deliberately (pinned-images, published-ports, restart-policy); each still logs a warning.")
	return c
}

func declarePlatform(r *reader, c *Config, stack string) {
	c.Environment = r.str("environment", "", "Environment kind, dev or prod; empty means the stack's name. prod turns guardrail warnings into errors.")
	if c.Environment == "" {
		c.Environment = stack
	}
	c.Orchestrator = r.str("orchestrator", string(components.OrchestratorDocker), "Where the stack runs: docker (containers on one engine) or swarm (services on a Docker Swarm cluster; docs/cluster.md).")
	c.TargetOptions.SwarmEndpointMode = r.str("swarmEndpointMode", components.EndpointVIP, "swarm only: vip (each service one virtual IP, ports published through the routing mesh) or dnsrr (one DNS record per task, nothing published), for kernels without IPVS.")
	c.TargetOptions.SwarmOverlayEncrypted = r.boolean("swarmOverlayEncrypted", true, "swarm only: encrypt the overlay network between nodes (IPsec); false saves its CPU and latency cost on a trusted network (docs/cluster.md). Switching moves the services to a new network.")
	c.DockerHost = r.str("dockerHost", "", "Docker daemon to deploy to (unix://, tcp:// or ssh://user@host); empty follows DOCKER_HOST, then the local socket.")
	c.EngineAPIVersion = r.str("dockerApiVersion", "", "Docker Engine API version of the target, e.g. 1.41; empty asks the engine. From 1.44 (Docker 25) on, healthchecks get the fast start phase.")
	c.Prefix = r.str("namePrefix", "maricusco", "Prefix of every Docker name: containers <prefix>-<service>, volumes <prefix>_<service>_data, networks <prefix>-edge, <prefix>-data and <prefix>-monitoring.")
	c.Protect = r.boolean("protect", false, "Protect stateful resources (data volumes) from deletion by Pulumi; set it in prod.")
	c.DeleteVolumesOnDestroy = r.boolean("deleteVolumesOnDestroy", false, "Let `pulumi destroy` delete the data volumes; by default Docker keeps them.")
	c.Restart = r.str("restartPolicy", "unless-stopped", "Docker restart policy of every container: no, always, unless-stopped or on-failure.")
	c.Health.Interval = readDuration(r, "healthcheckInterval", "30s", "Time between two healthchecks of a running container (the seed: 30s).")
	c.Health.Timeout = readDuration(r, "healthcheckTimeout", "2s", "Time a healthcheck may take (the seed: 2s).")
	c.Health.Retries = r.integer("healthcheckRetries", 3, "Consecutive failed healthchecks that make a container unhealthy.")
	c.Health.StartPeriod = readDuration(r, "healthcheckStartPeriod", "60s", "Start phase in which failed healthchecks do not count.")
	c.Health.StartInterval = readDuration(r, "healthcheckStartInterval", "500ms", "Time between healthchecks during the start phase, until the first that passes: a healthy container is known within a second, not after a full interval (Docker 25+).")
	c.Health.WaitTimeout = readDuration(r, "healthyTimeout", "5m", "How long `pulumi up` waits for a new container to become healthy.")
	c.Logging.MaxSize = r.str("logMaxSize", "10m", "Largest json-file log of a container before Docker rotates it (e.g. 10m).")
	c.Logging.MaxFile = r.integer("logMaxFile", 3, "Rotated log files Docker keeps per container.")
}

func readDuration(r *reader, key, def, desc string) time.Duration {
	v := r.str(key, def, desc)
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(key, "%q is not a positive duration; write e.g. 30s, 2s or 1m30s", v)
		return 0
	}
	return d
}

// declareResources reads each service's limits and reservations: its row, over which the
// stack's `resources` object. Each amount parses itself (components.NanoCPUs, UnitBytes).
func declareResources(r *reader, c *Config) {
	var overrides map[string]ResourceSpec
	r.object("resources", "Per-service limits and reservations in compose notation, over the seed's defaults: resources.<service>.{limits,reservations}.{cpus,memory}.", &overrides, false)
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		if _, ok := c.Services[name]; !ok {
			r.fail("resources."+name, "unknown service; use one of %s", strings.Join(names(c.registry, nil), ", "))
		}
	}
	for _, s := range c.registry {
		spec := s.Resources.overlay(overrides[s.Name])
		res := &c.Services[s.Name].Resources
		for _, f := range []struct {
			field, value string
			into         encoding.TextUnmarshaler
		}{
			{"limits.cpus", spec.Limits.CPUs, &res.CPULimit},
			{"limits.memory", spec.Limits.Memory, &res.MemoryLimit},
			{"reservations.cpus", spec.Reservations.CPUs, &res.CPUReservation},
			{"reservations.memory", spec.Reservations.Memory, &res.MemoryReservation},
		} {
			if err := f.into.UnmarshalText([]byte(f.value)); err != nil {
				r.fail("resources."+s.Name+"."+f.field, "%v", err)
			}
		}
	}
}

// declarePorts reads each publishable service's host port: its row's default, over which the
// stack's `ports` object; an empty value unpublishes.
func declarePorts(r *reader, c *Config) {
	ports := map[string]string{}
	for _, s := range c.registry {
		if s.Publish != "" {
			ports[s.Name] = s.Publish
		}
	}
	var overrides map[string]string
	r.object("ports", "Host ports by service as [ip:]port, for debugging (dev); none by default: the edge publishes the app and Grafana (edge.https, edge.http); an empty value unpublishes.", &overrides, false)
	maps.Copy(ports, overrides)
	publishable := names(c.registry, func(s Service) bool { return s.Publishable })
	for _, svc := range slices.Sorted(maps.Keys(ports)) {
		key := "ports." + svc
		if !slices.Contains(publishable, svc) {
			r.fail(key, "unknown service; use one of %s", strings.Join(publishable, ", "))
			continue
		}
		if spec := strings.TrimSpace(ports[svc]); spec != "" {
			hp, err := parseHostPort(spec)
			if err != nil {
				r.fail(key, "%v", err)
				continue
			}
			c.Services[svc].Publish = hp
		}
	}
}

// names are the registry's service names that keep says to (nil: all).
func names(rows []Service, keep func(Service) bool) []string {
	var out []string
	for _, s := range rows {
		if keep == nil || keep(s) {
			out = append(out, s.Name)
		}
	}
	return out
}

// parseHostPort reads compose's [ip:]port notation; without an address, the port binds to 127.0.0.1.
func parseHostPort(spec string) (*components.HostPort, error) {
	host, port := "127.0.0.1", spec
	if strings.Contains(spec, ":") {
		var err error
		host, port, err = net.SplitHostPort(spec)
		if err != nil {
			return nil, fmt.Errorf("%q is not [ip:]port (%v)", spec, err)
		}
	}
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("%q: %q is not an IP address; bind to an address such as 127.0.0.1 or 0.0.0.0", spec, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("%q: port %q is out of range; use 1 to 65535", spec, port)
	}
	return &components.HostPort{IP: host, Port: n}, nil
}
