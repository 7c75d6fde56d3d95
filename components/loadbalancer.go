package components

import (
	"fmt"
	"strconv"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The edge's ports inside its container: unprivileged, whatever the host publishes them on.
const (
	// LoadBalancerPort answers the container's own healthcheck, and is published nowhere.
	LoadBalancerPort = 8000
	// EdgeHTTPSPort serves the app and Grafana over TLS.
	EdgeHTTPSPort = 8443
	// EdgeRedirectPort answers plain HTTP with a redirect to https.
	EdgeRedirectPort = 8080
)

// LoadBalancerHealthPath answers the load balancer's own healthcheck.
const LoadBalancerHealthPath = "/lb-health"

// GrafanaPath is where the edge serves Grafana, which serves from that sub-path itself.
const GrafanaPath = "/grafana/"

// EdgeTLS is what the edge serves over TLS and where.
type EdgeTLS struct {
	// Certificate is the PEM chain, the server's certificate first.
	Certificate string
	// PrivateKey is its key (PEM), a secret.
	PrivateKey pulumi.StringInput
	// HTTPS is the host binding of the https port (nil: not published).
	HTTPS *HostPort
	// Redirect is the host binding that answers plain HTTP with a redirect (nil: none).
	Redirect *HostPort
	// HSTS sends Strict-Transport-Security.
	HSTS bool
}

// Edge files: the certificate chain beside the config, the key among the secrets.
var (
	edgeCertificateFile = File{Name: "edge/certificate.pem"}
	edgeKeyFile         = File{Name: "edge_private_key", Secret: true}
)

// NginxConfig is what the generated nginx configuration depends on.
type NginxConfig struct {
	HealthPort, HTTPSPort, RedirectPort int
	// HTTPSSuffix is ":<port>" in a redirect's location when https is not on 443.
	HTTPSSuffix              string
	CertificatePath, KeyPath string
	HSTS                     bool
	AppHost                  string
	AppPort                  int
	GrafanaHost, GrafanaPath string
	GrafanaPort              int
	HealthPath, ResolveEvery string
}

// resolveEvery is how long nginx keeps the app's addresses. A swarm takes a stopping task out of
// its DNS 2 s before it signals the task to stop (moby, daemon/cluster/executor/container/
// controller.go, defaultGossipConvergeDelay), so nginx forgets it while it still serves; with
// longer, a scale-down of most replicas sent requests to stopped ones until nginx gave up (a 504).
const resolveEvery = time.Second

// LoadBalancerConfig is the edge's nginx config in front of instances listening on appPort.
func LoadBalancerConfig(appPort int, edge EdgeTLS) NginxConfig {
	c := NginxConfig{
		HealthPort:      LoadBalancerPort,
		HTTPSPort:       EdgeHTTPSPort,
		CertificatePath: edgeCertificateFile.Path(),
		KeyPath:         edgeKeyFile.Path(),
		HSTS:            edge.HSTS,
		AppHost:         AppHost,
		AppPort:         appPort,
		GrafanaHost:     GrafanaHost,
		GrafanaPort:     GrafanaPort,
		GrafanaPath:     GrafanaPath,
		HealthPath:      LoadBalancerHealthPath,
		ResolveEvery:    resolveEvery.String(),
	}
	if edge.Redirect != nil {
		c.RedirectPort = EdgeRedirectPort
	}
	if edge.HTTPS != nil && edge.HTTPS.Port != 443 {
		c.HTTPSSuffix = ":" + strconv.Itoa(edge.HTTPS.Port)
	}
	return c
}

// RenderNginxConfig renders nginx.conf.
func RenderNginxConfig(c NginxConfig) (string, error) {
	return render("nginx.conf.tmpl", c)
}

// loadBalancerSpec is nginx at the edge, in front of the application's instances and Grafana. Its
// configuration names the instances' shared alias, not the instances, so scaling and rolling
// replacements never touch it.
func loadBalancerSpec(args ServiceArgs, image pulumi.StringInput, appPort int, edge EdgeTLS) (ContainerSpec, error) {
	text, err := RenderNginxConfig(LoadBalancerConfig(appPort, edge))
	if err != nil {
		return ContainerSpec{}, fmt.Errorf("load balancer: %w", err)
	}
	conf := File{Name: "nginx.conf", Content: pulumi.String(text)}
	var ports []PortBinding
	if edge.HTTPS != nil {
		ports = append(ports, PortBinding{HostIP: edge.HTTPS.IP, HostPort: edge.HTTPS.Port, ContainerPort: EdgeHTTPSPort})
	}
	if edge.Redirect != nil {
		ports = append(ports, PortBinding{HostIP: edge.Redirect.IP, HostPort: edge.Redirect.Port, ContainerPort: EdgeRedirectPort})
	}
	return ContainerSpec{
		Name:        args.ContainerName("lb"),
		Image:       image,
		Aliases:     []string{"lb"},
		Command:     []string{"nginx", "-c", conf.Path(), "-g", "daemon off;"},
		Files:       []File{conf, edgeCertificateFile.With(pulumi.String(edge.Certificate)), edgeKeyFile.With(edge.PrivateKey)},
		Ports:       ports,
		Resources:   args.Resources,
		HealthCheck: []string{"CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:" + strconv.Itoa(LoadBalancerPort) + LoadBalancerHealthPath},
		// The master process starts as root, gives its temp paths to the worker user (CHOWN) and
		// runs the workers as that user (SETGID, SETUID), as the upstream image does.
		Capabilities:  []string{"CHOWN", "SETGID", "SETUID"},
		WritablePaths: []string{"/tmp"},
	}, nil
}
