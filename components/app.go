package components

import (
	"fmt"
	"strconv"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// AppHost is the application's DNS name on the platform network.
const AppHost = "app"

// AppUser is the non-root user (appuser) the application image runs as.
const AppUser = "1000"

// AppSettings are the application entrypoint's settings (the seed's APP_* and UVICORN_* variables)
// and its extra plain environment.
type AppSettings struct {
	Module    string
	Host      string
	Port      int
	Workers   int
	Reload    bool
	ExtraArgs string
	Env       map[string]string
}

// AppArgs configure the application.
type AppArgs struct {
	ServiceArgs
	AppSettings
	// SecretEnv is extra secret environment.
	SecretEnv map[string]pulumi.StringInput
	// PostgresDB and PostgresUser name the database and role the app connects as.
	PostgresDB, PostgresUser string
	// PostgresPassword and RedisPassword reach the app as files (secrets).
	PostgresPassword, RedisPassword pulumi.StringInput
	// Replicas is the number of instances. They publish nothing: the load balancer in front of
	// them publishes the edge's ports, for one instance as for ten, so scaling never moves them.
	Replicas int
	// LoadBalancer configures the load balancer, nginx at the edge.
	LoadBalancer ServiceArgs
	// Edge is what the load balancer serves over TLS, and where.
	Edge EdgeTLS
	// Serving tells whether the app's front answers now. When nothing answers (a first deploy),
	// there is nothing to keep up: the instances start side by side and the load balancer
	// beside them, instead of one at a time behind each other.
	Serving bool
}

// App is the Maricusco FastAPI application behind nginx at the edge: its instances on one engine,
// or one swarm service of several replicas.
type App struct {
	pulumi.ResourceState

	// Instances are the application's workloads: one container per instance, or its one swarm
	// service.
	Instances []Workload
	// Front publishes the edge's ports: the load balancer in front of the instances.
	Front Workload
	// LoadBalanced tells whether Front is the load balancer.
	LoadBalanced bool
}

// FrontNames are the Docker names of the containers that can answer on the app's port on one
// engine: the load balancer, or the one instance that published the port itself before the load
// balancer stood in front of every stack.
func FrontNames(prefix string) []string {
	a := ServiceArgs{Prefix: prefix}
	return []string{a.ContainerName("app"), a.ContainerName("lb")}
}

// front names the workload that publishes the app's port on one engine: the load balancer. It
// is the name the one instance had when it published the port itself, so a stack deployed then
// moves to the load balancer with a replacement of one resource, which Pulumi deletes before it
// creates: the port is free when the new front binds it.
func front(name string) string { return name + "-front" }

// NewApp declares the application.
func NewApp(ctx *pulumi.Context, name string, args *AppArgs, opts ...pulumi.ResourceOption) (*App, error) {
	app := &App{}
	if err := ctx.RegisterComponentResource("maricusco:components:App", name, app, opts...); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	target := args.Runtime.Target
	img, err := target.image(ctx, name+"-image", args.Image, pulumi.Parent(app))
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	pgPassword, redisPassword := PostgresPasswordFile.With(args.PostgresPassword), RedisPasswordFile.With(args.RedisPassword)
	env := appEnv(args, pgPassword.Path(), redisPassword.Path())
	spec := ContainerSpec{
		Name:          args.ContainerName("app"),
		Image:         img,
		Aliases:       []string{AppHost},
		User:          AppUser,
		Env:           env,
		Files:         []File{pgPassword, redisPassword},
		Resources:     args.Resources,
		HealthCheck:   []string{"CMD", "/usr/local/bin/healthcheck"},
		WritablePaths: []string{"/tmp"},
		After:         args.After,
		Replicas:      args.Replicas,
	}
	if target.Replicates() {
		// One service of the replicas, which the swarm rolls by its own update order; nginx finds
		// them by the service's name.
		var w Workload
		if w, err = NewWorkload(ctx, name+"-service", args.Runtime, spec, pulumi.Parent(app)); err == nil {
			app.Instances = []Workload{w}
			err = app.edge(ctx, name, args, []Workload{w})
		}
	} else {
		err = app.loadBalanced(ctx, name, args, spec)
	}
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	outputs := pulumi.Map{"instanceNames": app.InstanceNames(), "frontName": app.Front.Name}
	if h := health(append(app.Instances, app.Front)...); h != nil {
		outputs["health"] = h
	}
	if err := ctx.RegisterResourceOutputs(app, outputs); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return app, nil
}

// appEnv is the seed's environment of the application: its Uvicorn settings and where its data
// services are, the passwords as files; then the stack's extra variables.
func appEnv(args *AppArgs, pgPasswordFile, redisPasswordFile string) map[string]pulumi.StringInput {
	s := args.AppSettings
	env := plainEnv(map[string]string{
		"APP_MODULE":             s.Module,
		"APP_HOST":               s.Host,
		"APP_PORT":               strconv.Itoa(s.Port),
		"UVICORN_WORKERS":        strconv.Itoa(s.Workers),
		"UVICORN_RELOAD":         strconv.FormatBool(s.Reload),
		"EXTRA_UVICORN_ARGS":     s.ExtraArgs,
		"POSTGRES_HOST":          PostgresHost,
		"POSTGRES_PORT":          strconv.Itoa(PostgresPort),
		"POSTGRES_DB":            args.PostgresDB,
		"POSTGRES_USER":          args.PostgresUser,
		"POSTGRES_PASSWORD_FILE": pgPasswordFile,
		"REDIS_HOST":             RedisHost,
		"REDIS_PORT":             strconv.Itoa(RedisPort),
		"REDIS_PASSWORD_FILE":    redisPasswordFile,
		"CHROMADB_HOST":          ChromaDBHost,
		"CHROMADB_PORT":          strconv.Itoa(ChromaDBPort),
	})
	for k, v := range s.Env {
		env[k] = pulumi.String(v)
	}
	for k, v := range args.SecretEnv {
		env[k] = pulumi.ToSecret(v).(pulumi.StringOutput)
	}
	return env
}

// InstanceNames are the Docker names of the app's instances (its one service on a swarm).
func (app *App) InstanceNames() pulumi.StringArray {
	names := pulumi.StringArray{}
	for _, w := range app.Instances {
		names = append(names, w.Name)
	}
	return names
}

// WorkloadNames implements Deployed: the instances, and the load balancer in front of them.
func (app *App) WorkloadNames() map[string]pulumi.Input {
	names := map[string]pulumi.Input{"app": app.InstanceNames()}
	if app.LoadBalanced {
		names["lb"] = app.Front.Name
	}
	return names
}

// DataVolume implements Deployed: the app keeps no data.
func (app *App) DataVolume() *docker.Volume { return nil }

// Ready implements Deployed: the front.
func (app *App) Ready() Workload { return app.Front }

// loadBalanced declares the instances behind nginx, on one engine. Instances publish nothing: the
// load balancer does, so adding or removing one never moves the port. While the app serves, each instance waits for the one before
// it, so a change replaces them one at a time (each deleted, then recreated and healthy, before
// the next goes) while the others serve, and the load balancer takes the port once every instance
// is healthy; their fixed names cannot collide. When nothing serves, none waits for another.
func (app *App) loadBalanced(ctx *pulumi.Context, name string, args *AppArgs, spec ContainerSpec) error {
	after := args.After
	for i := 1; i <= args.Replicas; i++ {
		instance := spec
		instance.Name = fmt.Sprintf("%s-%d", spec.Name, i)
		instance.Aliases = []string{AppHost, fmt.Sprintf("%s-%d", AppHost, i)}
		instance.After = after
		w, err := NewWorkload(ctx, fmt.Sprintf("%s-%d", name, i), args.Runtime, instance, pulumi.Parent(app))
		if err != nil {
			return err
		}
		app.Instances = append(app.Instances, w)
		if args.Serving {
			after = []Workload{w}
		}
	}
	if !args.Serving {
		// nginx resolves the instances at request time, so it can start before them.
		after = nil
	}
	return app.edge(ctx, name, args, after)
}

// edge declares nginx in front of the instances, once what it waits for is healthy.
func (app *App) edge(ctx *pulumi.Context, name string, args *AppArgs, after []Workload) error {
	lbImage, err := args.Runtime.Target.image(ctx, name+"-lb-image", args.LoadBalancer.Image, pulumi.Parent(app), renamedFrom("lb-image"))
	if err != nil {
		return err
	}
	lb, err := loadBalancerSpec(args.LoadBalancer, lbImage, args.AppSettings.Port, args.Edge)
	if err != nil {
		return err
	}
	lb.After, app.LoadBalanced = after, true
	// nginx joins its own networks (the edge's), not the app's.
	app.Front, err = NewWorkload(ctx, front(name), args.LoadBalancer.Runtime, lb, pulumi.Parent(app))
	return err
}
