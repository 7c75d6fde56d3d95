package components

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"text/template"
	"time"
)

//go:embed assets
var assets embed.FS

var templates = template.Must(template.ParseFS(assets, "assets/*.tmpl"))

// asset returns an embedded file, as the program delivers it.
func asset(name string) (string, error) {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		return "", fmt.Errorf("asset %s: %w", name, err)
	}
	return string(b), nil
}

// AppJob is the Prometheus job that scrapes the application; the dashboard and the alert rules
// query it by this name.
const AppJob = "maricusco-app"

// Dashboards are the Grafana dashboards the program provisions: every JSON file in
// components/assets/dashboards.
func Dashboards() (fs.FS, error) {
	sub, err := fs.Sub(assets, "assets/dashboards")
	if err != nil {
		return nil, fmt.Errorf("dashboards: %w", err)
	}
	return sub, nil
}

// PrometheusConfig is what the generated Prometheus configuration and alert rules depend on.
type PrometheusConfig struct {
	// Stack labels every series, so several stacks' data can be told apart.
	Stack string
	// ScrapeInterval is Prometheus's scrape and rule evaluation interval (Prometheus notation, e.g. 15s).
	ScrapeInterval string
	// AppPort is the port the instances serve /metrics on.
	AppPort int
	// ErrorRatio is the share of 5xx responses (0 to 1) above which the error alert fires.
	ErrorRatio float64
	// RulesFile is where Prometheus finds the alert rules.
	RulesFile string
	// AppDNS answers one A record per app instance (empty: AppHost, as on one engine).
	AppDNS string
	// Backups are scraped and alerted on when the stack runs them (nil: it does not).
	Backups *BackupAlerting
}

// BackupJob is the Prometheus job that scrapes the backup service.
const BackupJob = "maricusco-backup"

// BackupAlerting is what the backup alerts watch: the WAL archive's limits and the schedule.
type BackupAlerting struct {
	// WALMaxAge is how long written WAL may wait for the archive.
	WALMaxAge time.Duration
	// WALRetainedLimit is the WAL the slot may hold back on the database's disk.
	WALRetainedLimit UnitBytes
	// Interval is the time between two base backups and dumps; 1.5 of them is too old.
	Interval time.Duration
}

// Target is where Prometheus scrapes the backup service.
func (BackupAlerting) Target() string { return BackupHost + ":" + strconv.Itoa(BackupMetricsPort) }

// Seconds are the limits as the rules compare them.
func (b BackupAlerting) Seconds() struct{ WALMaxAge, TooOld int64 } {
	return struct{ WALMaxAge, TooOld int64 }{int64(b.WALMaxAge.Seconds()), int64(b.Interval.Seconds() * 3 / 2)}
}

// RenderPrometheusConfig renders prometheus.yml.
func RenderPrometheusConfig(c PrometheusConfig) (string, error) {
	if c.AppDNS == "" {
		c.AppDNS = AppHost
	}
	return render("prometheus.yml.tmpl", struct {
		PrometheusConfig
		AppJob, BackupJob string
		Port              int
	}{c, AppJob, BackupJob, PrometheusPort})
}

// RenderAlertRules renders the alert rules file.
func RenderAlertRules(c PrometheusConfig) (string, error) {
	return render("alerts.yml.tmpl", struct {
		PrometheusConfig
		AppJob, BackupJob string
		ErrorRatioPercent float64
	}{c, AppJob, BackupJob, c.ErrorRatio * 100})
}

func render(name string, data any) (string, error) {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return b.String(), nil
}
