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

// AppSettings are the application entrypoint's settings (the seed's APP_* and UVICORN_* variables).
type AppSettings struct {
	Module         string
	Host           string
	Port           int
	Workers        int
	Reload         bool
	ExtraArgs      string
	Env            map[string]string
	SecretEnv      map[string]pulumi.StringInput
	PostgresDB     string
	PostgresUser   string
	PostgresSecret pulumi.StringInput
	RedisSecret    pulumi.StringInput
}

// AppArgs configure the application.
type AppArgs struct {
	ServiceArgs
	AppSettings
	// DependsOn are the data services that must be healthy before the application starts.
	DependsOn []pulumi.Resource
}

// App is the Maricusco FastAPI application.
type App struct {
	pulumi.ResourceState

	// Containers are the application's containers.
	Containers []*docker.Container
}

// NewApp declares the application.
func NewApp(ctx *pulumi.Context, name string, args *AppArgs, opts ...pulumi.ResourceOption) (*App, error) {
	app := &App{}
	if err := ctx.RegisterComponentResource("maricusco:components:App", name, app, opts...); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	img, err := PullImage(ctx, "app-image", args.Image, pulumi.Parent(app))
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	pgPassword, redisPassword := PostgresPasswordFile, RedisPasswordFile
	pgPassword.Content, redisPassword.Content = args.PostgresSecret, args.RedisSecret
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
		EnvVar("POSTGRES_DB", s.PostgresDB),
		EnvVar("POSTGRES_USER", s.PostgresUser),
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
	for _, k := range slices.Sorted(maps.Keys(s.SecretEnv)) {
		env = append(env, pulumi.ToSecret(pulumi.Sprintf("%s=%s", k, s.SecretEnv[k])).(pulumi.StringOutput))
	}
	c, err := NewServiceContainer(ctx, "app-container", args.Runtime, ContainerSpec{
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
	}, pulumi.Parent(app), pulumi.DependsOn(args.DependsOn))
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	app.Containers = []*docker.Container{c}
	if err := ctx.RegisterResourceOutputs(app, pulumi.Map{"containerName": c.Name}); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return app, nil
}
