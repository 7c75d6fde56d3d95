package components

import (
	"fmt"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// PrometheusPort is Prometheus's port on the platform network.
const PrometheusPort = 9090

// PrometheusHost is Prometheus's DNS name on the platform network.
const PrometheusHost = "prometheus"

// PrometheusArgs configure Prometheus.
type PrometheusArgs struct {
	ServiceArgs
	PrometheusConfig
	// Retention is how long samples are kept (Prometheus notation, e.g. 15d).
	Retention string
}

// Prometheus collects the application's metrics, data in its named volume.
type Prometheus struct {
	pulumi.ResourceState
	Service
}

// NewPrometheus declares Prometheus with its generated scrape configuration and alert rules.
func NewPrometheus(ctx *pulumi.Context, name string, args *PrometheusArgs, opts ...pulumi.ResourceOption) (*Prometheus, error) {
	p := &Prometheus{}
	rules := File{Name: "alerts.yml"}
	cfg := args.PrometheusConfig
	cfg.RulesFile = rules.Path()
	cfg.AppDNS = args.Runtime.Target.TasksDNS(AppHost)
	rulesText, err := RenderAlertRules(cfg)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	configText, err := RenderPrometheusConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	rules.Content = pulumi.String(rulesText)
	config := File{Name: "prometheus.yml", Content: pulumi.String(configText)}
	svc, err := newService(ctx, name, p, args.ServiceArgs, ServiceDecl{Type: "maricusco:components:Prometheus", Service: "prometheus", Spec: ContainerSpec{
		Aliases: []string{PrometheusHost},
		Command: []string{
			"--config.file=" + config.Path(),
			"--storage.tsdb.path=/prometheus",
			"--storage.tsdb.retention.time=" + args.Retention,
		},
		Files:         []File{config, rules},
		Ports:         args.ports(PrometheusPort),
		HealthCheck:   []string{"CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:" + strconv.Itoa(PrometheusPort) + "/-/healthy"},
		WritablePaths: []string{"/tmp"},
	}, Data: args.DataAt("prometheus", "/prometheus")}, opts)
	if err != nil {
		return nil, err
	}
	p.Service = svc
	return p, nil
}
