// Package stacks composes the platform's components from a stack's config.
package stacks

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/maricusco/infra/components"
	"github.com/maricusco/infra/engine"
)

// DefaultDockerHost is the local Docker socket, used when neither config nor DOCKER_HOST names a host.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// Platform is the deployed system.
type Platform struct {
	Config   *Config
	Provider *docker.Provider
	// Networks are the platform's networks, by role.
	Networks map[string]*components.Network
	Secrets  *components.Secrets
	// Services are the deployed services' components, by registry name.
	Services map[string]components.Deployed
}

// Run is the Pulumi program: it deploys the platform and exports its outputs.
func Run(ctx *pulumi.Context) error {
	return RunWith(ctx)
}

// RunWith is Run with options.
func RunWith(ctx *pulumi.Context, opts ...Option) error {
	p, err := Deploy(ctx, opts...)
	if err != nil {
		return err
	}
	p.export(ctx)
	return nil
}

// DockerHost is the Docker daemon the stack deploys to: config, then DOCKER_HOST as the docker CLI
// reads it, then the local socket.
func DockerHost(configured string) string {
	if configured != "" {
		return configured
	}
	if env := os.Getenv("DOCKER_HOST"); env != "" {
		return env
	}
	return DefaultDockerHost
}

// Deploy validates the config, asks the target's engine what it must know, then declares every
// service of the registry the stack runs, in the registry's order. Nothing is registered when the
// config is invalid or the engine cannot run it.
func Deploy(ctx *pulumi.Context, opts ...Option) (*Platform, error) {
	o := options{engine: engine.Docker{}, registry: Registry}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := load(ctx, o.registry)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		if err := ctx.Log.Warn(w, nil); err != nil {
			return nil, fmt.Errorf("log: %w", err)
		}
	}
	var logErr error
	health, err := cfg.Target.Prepare(cfg.plan(), o.engine, func(msg string) { logErr = ctx.Log.Info(msg, nil) })
	if err != nil {
		return nil, err
	}
	if logErr != nil {
		return nil, fmt.Errorf("log: %w", logErr)
	}
	p := &Platform{Config: cfg, Services: map[string]components.Deployed{}}
	if p.Provider, err = docker.NewProvider(ctx, "docker", &docker.ProviderArgs{Host: pulumi.String(DockerHost(cfg.DockerHost))}); err != nil {
		return nil, fmt.Errorf("docker provider: %w", err)
	}
	onDocker := pulumi.Providers(p.Provider)
	if err := p.declareNetworks(ctx, onDocker); err != nil {
		return nil, err
	}
	if p.Secrets, err = components.NewSecrets(ctx, "secrets", cfg.secretsArgs()); err != nil {
		return nil, err
	}
	d := &Deployment{
		Config: cfg, Secrets: p.Secrets, Deployed: p.Services, Options: []pulumi.ResourceOption{onDocker}, dashboards: o.dashboards,
		Runtime: components.Runtime{
			Target:    cfg.Target,
			Networks:  p.networkNames(),
			Restart:   cfg.Restart,
			Health:    health,
			Logging:   cfg.Logging,
			Labels:    map[string]string{"maricusco.stack": ctx.Stack(), "maricusco.project": ctx.Project()},
			NamingKey: p.Secrets.NamingKey,
		},
	}
	if err := d.askEngine(ctx, o.engine, health); err != nil {
		return nil, err
	}
	for _, s := range cfg.running() {
		if s.Deploy == nil {
			continue
		}
		if p.Services[s.Name], err = s.Deploy(ctx, d); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// declareNetworks declares the platform's networks, one per role.
func (p *Platform) declareNetworks(ctx *pulumi.Context, opts ...pulumi.ResourceOption) error {
	p.Networks = map[string]*components.Network{}
	for _, role := range components.NetworkRoles {
		n, err := components.NewNetwork(ctx, role+"-network", &components.NetworkArgs{Name: p.Config.networkName(role), Target: p.Config.Target}, opts...)
		if err != nil {
			return err
		}
		p.Networks[role] = n
	}
	return nil
}

// networkNames are the Docker names of the platform's networks, by role.
func (p *Platform) networkNames() map[string]pulumi.StringInput {
	names := map[string]pulumi.StringInput{}
	for role, n := range p.Networks {
		names[role] = n.Name
	}
	return names
}

// secretsArgs are the secrets the stack sets; the others are generated.
func (c *Config) secretsArgs() *components.SecretsArgs {
	return &components.SecretsArgs{
		PostgresPassword:          c.Secrets[PostgresPasswordKey],
		PostgresSuperuserPassword: c.Secrets[PostgresSuperuserPasswordKey],
		PostgresBackupPassword:    c.Secrets[PostgresBackupPasswordKey],
		RedisPassword:             c.Secrets[RedisPasswordKey],
		GrafanaAdminPassword:      c.Secrets[GrafanaAdminPasswordKey],
		NamingKey:                 c.Target.NamesFilesByContent(),
	}
}

// askEngine asks the engine what the deployment's services depend on: the containers of the
// stack there now (for the health gate), and whether the app serves.
func (d *Deployment) askEngine(ctx *pulumi.Context, e engineQuestions, health components.HealthTiming) error {
	var err error
	if d.Runtime.Gate, err = healthGate(ctx, e, d.Config, health); err != nil {
		return err
	}
	d.appServing, err = appServing(e, d.Config)
	return err
}

// healthGate is the program's wait for new containers (components.HealthGate), on one engine
// that the program can ask; nil where the provider waits: a swarm converges its services itself,
// and a stack that sets dockerApiVersion says the program cannot ask its engine.
func healthGate(ctx *pulumi.Context, e components.HealthEngine, cfg *Config, health components.HealthTiming) (*components.HealthGate, error) {
	if cfg.Target.Replicates() || cfg.EngineAPIVersion != "" {
		return nil, nil
	}
	g := &components.HealthGate{Engine: e, Host: DockerHost(cfg.DockerHost), Timing: health, DryRun: ctx.DryRun()}
	if g.DryRun {
		return g, nil
	}
	var err error
	if g.Existing, err = e.Containers(g.Host, "maricusco.stack="+ctx.Stack()); err != nil {
		return nil, fmt.Errorf("cannot ask %s for the stack's containers: %w", g.Host, err)
	}
	return g, nil
}

// appServing tells whether a container of the stack answers on the app's port now: the one
// instance or the load balancer. A swarm service replicates itself and rolls with its own
// update order, so it always counts as serving.
func appServing(e components.Engine, cfg *Config) (bool, error) {
	if cfg.Target.Replicates() {
		return true, nil
	}
	host := DockerHost(cfg.DockerHost)
	for _, front := range components.FrontNames(cfg.Prefix) {
		running, err := e.Running(host, front)
		if err != nil {
			return false, fmt.Errorf("cannot ask %s whether %s runs: %w", host, front, err)
		}
		if running {
			return true, nil
		}
	}
	return false, nil
}
