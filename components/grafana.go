package components

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// GrafanaPort is Grafana's port on the platform network.
const GrafanaPort = 3000

// GrafanaUID is the user the Grafana image runs as (grafana/grafana's Dockerfile: GF_UID 472).
const GrafanaUID = "472"

// GrafanaHost is Grafana's DNS name on the platform network.
const GrafanaHost = "grafana"

// GrafanaArgs configure Grafana.
type GrafanaArgs struct {
	ServiceArgs
	// AdminUser is the administrator's login.
	AdminUser string
	// AdminPassword is the administrator's password (a secret).
	AdminPassword pulumi.StringInput
	// Dashboards holds the dashboards to provision, one JSON file each (nil: Dashboards()).
	Dashboards fs.FS
	// RootURL is where users reach Grafana, below the edge's GrafanaPath
	// (https://host/grafana/): Grafana serves from that sub-path and links to it.
	RootURL string
}

// Grafana shows the dashboards, provisioned from files: Prometheus as its data source and the
// Maricusco dashboard. Data (users, preferences) lives in its named volume.
type Grafana struct {
	pulumi.ResourceState
	Service
}

// NewGrafana declares Grafana.
func NewGrafana(ctx *pulumi.Context, name string, args *GrafanaArgs, opts ...pulumi.ResourceOption) (*Grafana, error) {
	g := &Grafana{}
	dashboards, err := args.Dashboards, error(nil)
	if dashboards == nil {
		if dashboards, err = Dashboards(); err != nil {
			return nil, fmt.Errorf("grafana: %w", err)
		}
	}
	files, err := grafanaFiles(dashboards)
	if err != nil {
		return nil, fmt.Errorf("grafana: %w", err)
	}
	password := File{Name: "grafana_admin_password", Secret: true, Content: args.AdminPassword}
	entrypoint, err := asset("grafana-entrypoint.sh")
	if err != nil {
		return nil, fmt.Errorf("grafana: %w", err)
	}
	wrapper := File{Name: "grafana-entrypoint.sh", Content: pulumi.String(entrypoint)}
	svc, err := newService(ctx, name, g, args.ServiceArgs, ServiceDecl{Type: "maricusco:components:Grafana", Service: "grafana", Spec: ContainerSpec{
		Aliases: []string{GrafanaHost},
		// The image's /run.sh, wrapped so that a rotated admin password reaches Grafana's database.
		Entrypoint:   []string{"/bin/sh", wrapper.Path()},
		SecretReader: GrafanaUID,
		Env: plainEnv(map[string]string{
			"GF_SECURITY_ADMIN_USER":           args.AdminUser,
			"GF_SECURITY_ADMIN_PASSWORD__FILE": password.Path(),
			"GF_PATHS_PROVISIONING":            FilesDir + "/" + grafanaProvisioning,
			"GF_AUTH_ANONYMOUS_ENABLED":        "false",
			"GF_USERS_ALLOW_SIGN_UP":           "false",
			"GF_SERVER_ROOT_URL":               args.RootURL,
			"GF_SERVER_SERVE_FROM_SUB_PATH":    "true",
		}),
		Files: append(files, password, wrapper),
		Ports: args.ports(GrafanaPort),
		// Served from the sub-path, Grafana answers nothing at the root.
		HealthCheck:   []string{"CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:" + strconv.Itoa(GrafanaPort) + strings.TrimSuffix(GrafanaPath, "/") + "/api/health"},
		WritablePaths: []string{"/tmp"},
	}, Data: args.DataAt("grafana", "/var/lib/grafana")}, opts)
	if err != nil {
		return nil, err
	}
	g.Service = svc
	return g, nil
}

const (
	grafanaProvisioning = "grafana/provisioning"
	grafanaDashboards   = "grafana/dashboards"
)

// grafanaFiles are the provisioning files: the Prometheus data source, the dashboard provider
// and the dashboards it loads.
func grafanaFiles(dashboards fs.FS) ([]File, error) {
	datasource, err := render("grafana-datasource.yml.tmpl", struct{ PrometheusURL string }{
		"http://" + PrometheusHost + ":" + strconv.Itoa(PrometheusPort),
	})
	if err != nil {
		return nil, err
	}
	provider, err := render("grafana-dashboards.yml.tmpl", struct{ DashboardsDir string }{FilesDir + "/" + grafanaDashboards})
	if err != nil {
		return nil, err
	}
	files := []File{
		{Name: grafanaProvisioning + "/datasources/prometheus.yml", Content: pulumi.String(datasource)},
		{Name: grafanaProvisioning + "/dashboards/maricusco.yml", Content: pulumi.String(provider)},
	}
	names, err := fs.Glob(dashboards, "*.json")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		content, err := fs.ReadFile(dashboards, name)
		if err != nil {
			return nil, err
		}
		if !json.Valid(content) {
			return nil, fmt.Errorf("dashboard %s is not valid JSON", name)
		}
		files = append(files, File{Name: grafanaDashboards + "/" + name, Content: pulumi.String(content)})
	}
	return files, nil
}
