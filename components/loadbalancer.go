package components

import (
	"fmt"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// LoadBalancerPort is the load balancer's port inside its container.
const LoadBalancerPort = 8000

// LoadBalancerHealthPath answers the load balancer's own healthcheck.
const LoadBalancerHealthPath = "/lb-health"

// NginxConfig is what the generated nginx configuration depends on.
type NginxConfig struct {
	ListenPort   int
	AppHost      string
	AppPort      int
	HealthPath   string
	ResolveEvery string
}

// LoadBalancerConfig is the load balancer's nginx config for instances listening on appPort.
func LoadBalancerConfig(appPort int) NginxConfig {
	return NginxConfig{
		ListenPort:   LoadBalancerPort,
		AppHost:      AppHost,
		AppPort:      appPort,
		HealthPath:   LoadBalancerHealthPath,
		ResolveEvery: "5s",
	}
}

// RenderNginxConfig renders nginx.conf.
func RenderNginxConfig(c NginxConfig) (string, error) {
	return render("nginx.conf.tmpl", c)
}

// LoadBalancerArgs configure the load balancer.
type LoadBalancerArgs struct {
	ServiceArgs
	// AppPort is the port the instances listen on.
	AppPort int
}

// LoadBalancer is nginx in front of the application's instances. Its configuration names the
// instances' shared alias, not the instances, so scaling and rolling replacements never touch it.
type LoadBalancer struct {
	pulumi.ResourceState
	Service
}

// NewLoadBalancer declares the load balancer.
func NewLoadBalancer(ctx *pulumi.Context, name string, args *LoadBalancerArgs, opts ...pulumi.ResourceOption) (*LoadBalancer, error) {
	lb := &LoadBalancer{}
	text, err := RenderNginxConfig(LoadBalancerConfig(args.AppPort))
	if err != nil {
		return nil, fmt.Errorf("load balancer: %w", err)
	}
	conf := File{Name: "nginx.conf", Content: pulumi.String(text)}
	svc, err := newService(ctx, "maricusco:components:LoadBalancer", name, lb, "lb", args.ServiceArgs, ContainerSpec{
		Aliases:     []string{"lb"},
		Command:     []string{"nginx", "-c", conf.Path(), "-g", "daemon off;"},
		Files:       []File{conf},
		Ports:       args.ports(LoadBalancerPort),
		HealthCheck: []string{"CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:" + strconv.Itoa(LoadBalancerPort) + LoadBalancerHealthPath},
		// The master process starts as root, then runs the workers as the nginx user.
		Capabilities:  []string{"SETGID", "SETUID"},
		WritablePaths: []string{"/tmp"},
	}, "", nil, opts)
	if err != nil {
		return nil, err
	}
	lb.Service = svc
	return lb, nil
}
