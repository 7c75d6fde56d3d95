package stacks

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/maricusco/infra/components"
)

// Service is one row of the platform's table: the seed's row for a service, and how it is built.
// Config keys, validation, guardrails, the composition, the stack outputs, the docs and the tests'
// inventory all loop over the rows; a new service is its component's file and one row here.
type Service struct {
	// Name is the seed's name: the container <prefix>-<name>, the keys resources.<name>,
	// ports.<name> and <name>Image.
	Name string
	// Image is the default of its `<name>Image` key and what the key means; empty when ImageOf
	// names the service whose image it runs.
	Image, ImageDescription string
	ImageOf                 string
	// Resources are its limits and reservations, in compose notation: the seed's row, or ours
	// for the services the seed leaves out (see seed.go).
	Resources ResourceSpec
	// Publish is its default host binding ([ip:]port; empty: none), for a publishable service.
	Publish     string
	Publishable bool
	// Exposed services may be published beyond the host's loopback address in prod: the seed
	// exposes only the app and Grafana.
	Exposed bool
	// Stateful services keep data in a volume (a swarm pins them to the data node).
	Stateful bool
	// Networks are the platform networks it joins (components.EdgeNetwork, ...): those of the
	// services it talks to or that talk to it, and no other.
	Networks []string
	// After are the services that must be healthy before it starts.
	After []string
	// Runs tells whether the stack runs it (nil: always).
	Runs func(c *Config) bool
	// Declare reads the config keys particular to it (nil: none beyond its image, resources and port).
	Declare func(r *reader, c *Config)
	// Plan tells its target what is particular to it (nil: one instance, nothing more).
	Plan func(c *Config, p *components.PlannedService)
	// Deploy declares its component; nil when another service's component declares it (the load
	// balancer, in front of the app).
	Deploy func(ctx *pulumi.Context, d *Deployment) (components.Deployed, error)
	// Outputs are the stack outputs it adds beyond its workload's and volume's names.
	Outputs func(d components.Deployed, p *Platform) map[string]pulumi.Input
}

// runs tells whether the stack runs the service.
func (s Service) runs(c *Config) bool { return s.Runs == nil || s.Runs(c) }

// Registry is the platform: the seed's six services in the seed's order, the load balancer of
// several app instances and the database's backups. They are declared in the order of what each
// waits for (After), whatever their order here.
var Registry = []Service{
	{
		Name: "app", Image: "maricusco:1.0.0", ImageDescription: "Application image, pinned by tag or digest.",
		// Published by the edge (edge.https), never by itself.
		Resources: seedRow("2.0", "4G", "0.5", "512M"),
		Networks:  []string{edge, data, monitoring},
		After:     []string{"postgres", "redis", "chromadb"},
		Plan: func(c *Config, p *components.PlannedService) {
			p.Instances = c.App.Replicas
			if len(c.App.SecretEnv) > 0 {
				p.SecretEnvKey = "appSecretEnv"
			}
		},
		Declare: declareApp, Deploy: deployApp, Outputs: appOutputs,
	},
	{
		Name: "postgres", Image: "timescale/timescaledb:2.17.2-pg16", ImageDescription: "PostgreSQL image: TimescaleDB, pinned.",
		Resources: seedRow("2.0", "2G", "0.5", "512M"), Publishable: true, Stateful: true,
		Networks: []string{data},
		Declare:  declarePostgres, Deploy: deployPostgres, Outputs: postgresOutputs,
	},
	{
		Name: "redis", Image: "redis:7.4.1-alpine", ImageDescription: "Redis image, pinned.",
		Resources: seedRow("1.0", "1G", "0.25", "256M"), Publishable: true, Stateful: true,
		Networks: []string{data},
		Declare:  declareRedis, Deploy: deployRedis,
	},
	{
		Name: "chromadb", Image: "chromadb/chroma:1.5.3", ImageDescription: "ChromaDB image, pinned to a 1.x release (heartbeat on /api/v2).",
		Resources: seedRow("2.0", "2G", "0.5", "512M"), Publishable: true, Stateful: true,
		Networks: []string{data},
		Deploy:   deployChromaDB,
	},
	{
		Name: "prometheus", Image: "prom/prometheus:v2.55.1", ImageDescription: "Prometheus image, pinned.",
		Resources: oursRow("1.0", "1G", "0.25", "256M"), Publishable: true, Stateful: true,
		Networks: []string{monitoring},
		Declare:  declarePrometheus, Deploy: deployPrometheus,
	},
	{
		Name: "grafana", Image: "grafana/grafana:11.3.1", ImageDescription: "Grafana image, pinned.",
		// Reached through the edge at /grafana/; a stack may publish its own port too (dev does).
		Resources: seedRow("1.0", "512M", "0.25", "128M"), Publishable: true, Exposed: true, Stateful: true,
		Networks: []string{monitoring},
		Declare:  declareGrafana, Deploy: deployGrafana, Outputs: grafanaOutputs,
	},
	{
		Name: "lb", Image: "nginx:1.27.3-alpine", ImageDescription: "Edge image (nginx): TLS, and the load balancer in front of the app's instances.",
		Resources: oursRow("1.0", "256M", "0.25", "64M"),
		Networks:  []string{edge, monitoring}, // the app's instances, and Grafana at /grafana/
		Declare:   declareEdge,
	},
	{
		// The backup client is the server's own image, so pg_dump matches the server.
		Name: "backup", ImageOf: "postgres",
		Resources: oursRow("0.5", "512M", "0.1", "64M"), Stateful: true,
		Networks: []string{data, monitoring}, // it dumps the database and Prometheus scrapes it
		After:    []string{"postgres"},
		Runs:     func(c *Config) bool { return c.Backup.Enabled },
		Declare:  declareBackup, Deploy: deployBackup, Outputs: backupOutputs,
	},
}

// lookup is the registry row of a service name, and whether there is one.
func lookup(rows []Service, name string) (Service, bool) {
	for _, s := range rows {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// The networks' roles, short for the rows above.
const (
	edge       = components.EdgeNetwork
	data       = components.DataNetwork
	monitoring = components.MonitoringNetwork
)
