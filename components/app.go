package components

import (
	"fmt"
	"maps"
	"slices"
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
	// Replicas is the number of instances. One instance is the seed's `maricusco-app` and publishes
	// the port itself; more instances publish nothing and a load balancer publishes the port.
	Replicas int
	// LoadBalancer configures the load balancer in front of several instances.
	LoadBalancer ServiceArgs
	// DependsOn are the data services that must be healthy before the application starts.
	DependsOn []pulumi.Resource
}

// App is the Maricusco FastAPI application: one container, or several instances behind nginx.
type App struct {
	pulumi.ResourceState

	// Containers are the application's instances.
	Containers []*docker.Container
	// Front publishes the application's port: the single instance itself, or the load balancer
	// in front of several.
	Front *docker.Container
	// LoadBalanced tells whether Front is the load balancer.
	LoadBalanced bool
}

// frontName is the logical name of the container that publishes the app's port, whichever it is.
// Keeping one name for both makes 1 -> N and N -> 1 a replacement of one resource, which Pulumi
// deletes before it creates: the port is free when the new front binds it.
const frontName = "app-front"

// NewApp declares the application.
func NewApp(ctx *pulumi.Context, name string, args *AppArgs, opts ...pulumi.ResourceOption) (*App, error) {
	app := &App{}
	if err := ctx.RegisterComponentResource("maricusco:components:App", name, app, opts...); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	img, err := PullImage(ctx, name+"-image", args.Image, pulumi.Parent(app))
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	pgPassword, redisPassword := PostgresPasswordFile.With(args.PostgresPassword), RedisPasswordFile.With(args.RedisPassword)
	s := args.AppSettings
	env := pulumi.StringArray{
		EnvVar("APP_MODULE", s.Module),
		EnvVar("APP_HOST", s.Host),
		EnvVar("APP_PORT", strconv.Itoa(s.Port)),
		EnvVar("UVICORN_WORKERS", strconv.Itoa(s.Workers)),
		EnvVar("UVICORN_RELOAD", strconv.FormatBool(s.Reload)),
		EnvVar("EXTRA_UVICORN_ARGS", s.ExtraArgs),
		EnvVar("POSTGRES_HOST", PostgresHost),
		EnvVar("POSTGRES_PORT", strconv.Itoa(PostgresPort)),
		EnvVar("POSTGRES_DB", args.PostgresDB),
		EnvVar("POSTGRES_USER", args.PostgresUser),
		EnvVar("POSTGRES_PASSWORD_FILE", pgPassword.Path()),
		EnvVar("REDIS_HOST", RedisHost),
		EnvVar("REDIS_PORT", strconv.Itoa(RedisPort)),
		EnvVar("REDIS_PASSWORD_FILE", redisPassword.Path()),
		EnvVar("CHROMADB_HOST", ChromaDBHost),
		EnvVar("CHROMADB_PORT", strconv.Itoa(ChromaDBPort)),
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, EnvVar(k, s.Env[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(args.SecretEnv)) {
		env = append(env, pulumi.ToSecret(pulumi.Sprintf("%s=%s", k, args.SecretEnv[k])).(pulumi.StringOutput))
	}
	spec := ContainerSpec{
		Name:          args.ContainerName("app"),
		Image:         img.ImageId,
		Aliases:       []string{AppHost},
		User:          AppUser,
		Env:           env,
		Files:         []File{pgPassword, redisPassword},
		Ports:         args.ports(s.Port),
		Resources:     args.Resources,
		HealthCheck:   []string{"CMD", "/usr/local/bin/healthcheck"},
		WritablePaths: []string{"/tmp"},
	}
	spec.After = args.DependsOn
	front := spec
	if args.Replicas > 1 {
		// Instances publish nothing: the load balancer does. Each waits for the one before it, so
		// a change replaces them one at a time (each deleted, then recreated and healthy, before the
		// next goes) while the others serve; their fixed names cannot collide.
		spec.Ports = nil
		after := args.DependsOn
		for i := 1; i <= args.Replicas; i++ {
			instance := spec
			instance.Name = fmt.Sprintf("%s-%d", spec.Name, i)
			instance.Aliases = []string{AppHost, fmt.Sprintf("%s-%d", AppHost, i)}
			instance.After = after
			c, err := NewServiceContainer(ctx, fmt.Sprintf("%s-%d", name, i), args.Runtime, instance, pulumi.Parent(app))
			if err != nil {
				return nil, fmt.Errorf("app: %w", err)
			}
			app.Containers = append(app.Containers, c)
			after = []pulumi.Resource{c}
		}
		lbImage, err := PullImage(ctx, "lb-image", args.LoadBalancer.Image, pulumi.Parent(app))
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		if front, err = loadBalancerSpec(args.LoadBalancer, lbImage.ImageId, s.Port); err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		// The load balancer takes the port once every instance is healthy.
		front.After, app.LoadBalanced = after, true
	}
	app.Front, err = NewServiceContainer(ctx, frontName, args.Runtime, front, pulumi.Parent(app))
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if !app.LoadBalanced {
		app.Containers = []*docker.Container{app.Front}
	}
	names := pulumi.StringArray{}
	for _, c := range app.Containers {
		names = append(names, c.Name)
	}
	if err := ctx.RegisterResourceOutputs(app, pulumi.Map{"containerNames": names, "frontName": app.Front.Name}); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return app, nil
}
