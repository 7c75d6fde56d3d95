package components

import (
	"fmt"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// RedisPort is Redis's port on the platform network.
const RedisPort = 6379

// RedisHost is Redis's DNS name on the platform network.
const RedisHost = "redis"

// RedisPasswordFile is where Redis's healthcheck and clients read the password.
var RedisPasswordFile = File{Name: "redis_password", Secret: true}

// RedisArgs configure the Redis cache.
type RedisArgs struct {
	ServiceArgs
	// Password is required from every client (a secret).
	Password pulumi.StringInput
}

// Redis is the caching layer, persisted (append-only file) in its named volume.
type Redis struct {
	pulumi.ResourceState
	Service
}

// NewRedis declares the Redis service.
func NewRedis(ctx *pulumi.Context, name string, args *RedisArgs, opts ...pulumi.ResourceOption) (*Redis, error) {
	r := &Redis{}
	entrypoint, err := asset("redis-entrypoint.sh")
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	wrapper := File{Name: "redis-entrypoint.sh", Content: pulumi.String(entrypoint)}
	password := RedisPasswordFile.With(args.Password)
	// The password sits in a config file, not on the command line where `docker inspect` would show it.
	conf := File{Name: "redis.conf", Secret: true, Content: pulumi.Sprintf("requirepass %q\nappendonly yes\ndir /data\n", args.Password)}
	svc, err := newService(ctx, name, r, args.ServiceArgs, ServiceDecl{Type: "maricusco:components:Redis", Service: "redis", Spec: ContainerSpec{
		Aliases: []string{RedisHost},
		// The image's entrypoint, wrapped so that the redis user reads a config of its own.
		Entrypoint: []string{"/bin/sh", wrapper.Path()},
		Command:    []string{conf.Path()},
		Files:      []File{wrapper, conf, password},
		Ports:      args.ports(RedisPort),
		// REDISCLI_AUTH keeps the password off the command line; redis-cli exits 0 on NOAUTH, so look for PONG.
		HealthCheck:   []string{"CMD-SHELL", `REDISCLI_AUTH="$(cat ` + password.Path() + `)" redis-cli -h 127.0.0.1 -p ` + strconv.Itoa(RedisPort) + ` ping | grep -q PONG`},
		WritablePaths: []string{"/tmp"},
		// The entrypoint starts as root to own /data, then drops to the redis user.
		Capabilities: []string{"CHOWN", "SETGID", "SETUID"},
	}, Data: args.DataAt("redis", "/data")}, opts)
	if err != nil {
		return nil, err
	}
	r.Service = svc
	return r, nil
}
