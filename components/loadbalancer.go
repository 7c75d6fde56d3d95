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

// loadBalancerSpec is nginx in front of the application's instances. Its configuration names the
// instances' shared alias, not the instances, so scaling and rolling replacements never touch it.
func loadBalancerSpec(args ServiceArgs, image pulumi.StringInput, appPort int) (ContainerSpec, error) {
	text, err := RenderNginxConfig(LoadBalancerConfig(appPort))
	if err != nil {
		return ContainerSpec{}, fmt.Errorf("load balancer: %w", err)
	}
	conf := File{Name: "nginx.conf", Content: pulumi.String(text)}
	return ContainerSpec{
		Name:        args.ContainerName("lb"),
		Image:       image,
		Aliases:     []string{"lb"},
		Command:     []string{"nginx", "-c", conf.Path(), "-g", "daemon off;"},
		Files:       []File{conf},
		Ports:       args.ports(LoadBalancerPort),
		Resources:   args.Resources,
		HealthCheck: []string{"CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:" + strconv.Itoa(LoadBalancerPort) + LoadBalancerHealthPath},
		// The master process starts as root, gives its temp paths to the worker user (CHOWN) and
		// runs the workers as that user (SETGID, SETUID), as the upstream image does.
		Capabilities:  []string{"CHOWN", "SETGID", "SETUID"},
		WritablePaths: []string{"/tmp"},
	}, nil
}
