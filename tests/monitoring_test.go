package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/maricusco/infra/components"
	"github.com/maricusco/infra/stacks"
)

const (
	prometheusConfig = "/run/maricusco/prometheus.yml"
	alertRules       = "/run/maricusco/alerts.yml"
)

// tool returns the path of a validator the tests need, failing with how to install it.
func tool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			if _, statErr := os.Stat(filepath.Join(dir, name)); statErr == nil {
				return filepath.Join(dir, name)
			}
		}
		t.Fatalf("%s is needed to validate the generated config: apt-get install %s (.ci/run installs it)", name, debianPackage)
	}
	return path
}

// prometheusFiles writes the Prometheus config and rules the program delivers into a directory,
// pointing the config's rule_files at it, and returns the config's path.
func prometheusFiles(t *testing.T, res *Result) (configPath, rulesPath string) {
	t.Helper()
	files, _ := uploads(res.Container(t, container("prometheus")))
	require.Contains(t, files, prometheusConfig)
	require.Contains(t, files, alertRules)
	dir := t.TempDir()
	configPath, rulesPath = filepath.Join(dir, "prometheus.yml"), filepath.Join(dir, "alerts.yml")
	config := strings.ReplaceAll(files[prometheusConfig], alertRules, rulesPath)
	require.NoError(t, os.WriteFile(configPath, []byte(config), 0o644))
	require.NoError(t, os.WriteFile(rulesPath, []byte(files[alertRules]), 0o644))
	return configPath, rulesPath
}

func promtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(tool(t, "promtool", "prometheus"), args...).CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtoolAcceptsTheConfigAndRules(t *testing.T) {
	forEachStack(t, func(t *testing.T, _ string, res *Result) {
		config, rules := prometheusFiles(t, res)
		promtool(t, "check", "config", config)
		promtool(t, "check", "rules", rules)
	})
}

func TestAppAlertsFireOnData(t *testing.T) {
	// promtool's rule unit tests evaluate the generated rules on synthetic series.
	res := mustRun(t, loadStack(t, "prod").with("alertErrorRatio", "0.1"))
	_, rules := prometheusFiles(t, res)
	unitTest := `
rule_files: [` + rules + `]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'up{job="maricusco-app", instance="a:8000"}'
        values: '1 1 0 0 0 0 0 0 0 0'
      - series: 'http_requests_total{job="maricusco-app", status="2xx"}'
        values: '0+80x40'
      - series: 'http_requests_total{job="maricusco-app", status="5xx"}'
        values: '0+20x40'
    alert_rule_test:
      - eval_time: 45s
        alertname: AppInstanceDown
        exp_alerts: []
      - eval_time: 2m
        alertname: AppInstanceDown
        exp_alerts:
          - exp_labels: {severity: critical, job: maricusco-app, instance: "a:8000"}
            exp_annotations:
              summary: "App instance a:8000 is down"
              description: "Prometheus has not scraped a:8000 for over a minute."
      - eval_time: 9m
        alertname: AppHighErrorRatio
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations:
              summary: "More than 10% of app requests fail with 5xx"
              description: "The 5xx ratio has stayed above 0.1 for five minutes."
  - interval: 15s
    input_series:
      - series: 'http_requests_total{job="maricusco-app", status="2xx"}'
        values: '0+95x40'
      - series: 'http_requests_total{job="maricusco-app", status="5xx"}'
        values: '0+5x40'
    alert_rule_test:
      - eval_time: 9m
        alertname: AppHighErrorRatio
        exp_alerts: []
`
	path := filepath.Join(t.TempDir(), "alerts_test.yml")
	require.NoError(t, os.WriteFile(path, []byte(unitTest), 0o644))
	promtool(t, "test", "rules", path)
}

func TestPrometheusScrapesEveryAppInstance(t *testing.T) {
	cases := []struct {
		name             string
		stack            StackConfig
		interval, retain string
	}{
		{"seed defaults", loadStack(t, "prod"), "15s", "15d"},
		{"from config", loadStack(t, "dev").with("prometheusScrapeInterval", "30s").with("prometheusRetention", "30d"), "30s", "30d"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := mustRun(t, tc.stack)
			prom := res.Container(t, container("prometheus"))
			assert.Contains(t, strs(prom.Inputs["command"]), "--storage.tsdb.retention.time="+tc.retain)
			assert.Contains(t, strs(prom.Inputs["command"]), "--config.file="+prometheusConfig)
			files, _ := uploads(prom)
			var cfg struct {
				Global struct {
					ScrapeInterval string `yaml:"scrape_interval"`
				} `yaml:"global"`
				ScrapeConfigs []struct {
					JobName     string `yaml:"job_name"`
					MetricsPath string `yaml:"metrics_path"`
					DNSSD       []struct {
						Names []string `yaml:"names"`
						Type  string   `yaml:"type"`
						Port  int      `yaml:"port"`
					} `yaml:"dns_sd_configs"`
				} `yaml:"scrape_configs"`
			}
			require.NoError(t, yaml.Unmarshal([]byte(files[prometheusConfig]), &cfg))
			assert.Equal(t, tc.interval, cfg.Global.ScrapeInterval)
			jobs := map[string]int{}
			for i, j := range cfg.ScrapeConfigs {
				jobs[j.JobName] = i
			}
			require.Contains(t, jobs, components.AppJob)
			require.Contains(t, jobs, "prometheus")
			app := cfg.ScrapeConfigs[jobs[components.AppJob]]
			assert.Equal(t, "/metrics", app.MetricsPath)
			require.Len(t, app.DNSSD, 1)
			assert.Equal(t, []string{"app"}, app.DNSSD[0].Names, "the alias every instance answers")
			assert.Equal(t, "A", app.DNSSD[0].Type)
			assert.Equal(t, 8000, app.DNSSD[0].Port)
		})
	}
}

// appMetrics are the series the app job yields: Prometheus's own `up`, and the HTTP metrics of
// the app's /metrics endpoint (prometheus-fastapi-instrumentator's names).
var appMetrics = map[string]bool{"up": true, "http_requests_total": true, "http_request_duration_seconds_bucket": true}

var selector = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}`)

func TestGrafanaIsProvisioned(t *testing.T) {
	forEachStack(t, func(t *testing.T, _ string, res *Result) {
		g := res.Container(t, container("grafana"))
		vars, _ := env(g)
		assert.Equal(t, "false", vars["GF_AUTH_ANONYMOUS_ENABLED"])
		assert.Equal(t, "false", vars["GF_USERS_ALLOW_SIGN_UP"])
		assert.Equal(t, "admin", vars["GF_SECURITY_ADMIN_USER"])
		provisioning := vars["GF_PATHS_PROVISIONING"]
		files, _ := uploads(g)

		var ds struct {
			Datasources []struct {
				Name, Type, URL, UID string
				IsDefault            bool `yaml:"isDefault"`
			} `yaml:"datasources"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(files[provisioning+"/datasources/prometheus.yml"]), &ds))
		require.Len(t, ds.Datasources, 1)
		assert.Equal(t, "prometheus", ds.Datasources[0].Type)
		assert.Equal(t, "http://prometheus:9090", ds.Datasources[0].URL, "Prometheus by its internal name")
		assert.True(t, ds.Datasources[0].IsDefault)

		var providers struct {
			Providers []struct {
				Options struct{ Path string } `yaml:"options"`
			} `yaml:"providers"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(files[provisioning+"/dashboards/maricusco.yml"]), &providers))
		require.Len(t, providers.Providers, 1)
		dashboard, ok := files[providers.Providers[0].Options.Path+"/maricusco.json"]
		require.True(t, ok, "the dashboard sits where the provider looks")

		var d struct {
			Title  string
			Panels []struct {
				Title      string
				Datasource struct{ UID string }
				Targets    []struct{ Expr string }
			}
		}
		require.NoError(t, json.Unmarshal([]byte(dashboard), &d))
		var titles []string
		for _, p := range d.Panels {
			titles = append(titles, p.Title)
			assert.Equal(t, ds.Datasources[0].UID, p.Datasource.UID, p.Title)
			require.NotEmpty(t, p.Targets, p.Title)
			for _, target := range p.Targets {
				sels := selector.FindAllStringSubmatch(target.Expr, -1)
				require.NotEmpty(t, sels, "%s: %s", p.Title, target.Expr)
				for _, s := range sels {
					assert.True(t, appMetrics[s[1]], "%s queries %s, which the app job does not yield", p.Title, s[1])
					assert.Contains(t, s[2], `job="`+components.AppJob+`"`, "%s queries the app job", p.Title)
				}
			}
		}
		assert.Equal(t, []string{"Request rate (req/s)", "Error rate (5xx share)", "Latency percentiles", "Instances up"}, titles)
	})
}

func TestMonitoringChangesTouchOnlyTheirService(t *testing.T) {
	base := loadStack(t, "prod")
	before := mustRun(t, base)
	promOnly := []string{containerType + "::prometheus-container"}
	cases := []struct {
		name  string
		after *Result
		want  []string
	}{
		{"scrape interval", mustRun(t, base.with("prometheusScrapeInterval", "30s")), promOnly},
		{"retention", mustRun(t, base.with("prometheusRetention", "30d")), promOnly},
		{"alert threshold", mustRun(t, base.with("alertErrorRatio", "0.2")), promOnly},
		{"dashboard", mustRun(t, base, stacks.WithDashboards(fstest.MapFS{
			"maricusco.json": {Data: []byte(`{"title": "Maricusco application", "panels": []}`)},
		})), []string{containerType + "::grafana-container"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planDiff(before, tc.after)
			assert.Empty(t, plan.Added)
			assert.Empty(t, plan.Removed)
			assert.Equal(t, tc.want, plan.Changed)
		})
	}
}

// TestAlertsFireAboveTheirLimitsAndNotAtThem evaluates the generated rules, with limits from
// config, on series that sit exactly at each limit and then just above it.
func TestAlertsFireAboveTheirLimitsAndNotAtThem(t *testing.T) {
	res := mustRun(t, loadStack(t, "prod").with("alertErrorRatio", "0.25").
		with("backup", map[string]any{"walMaxAge": "2m", "walRetainedLimit": "64M", "interval": "1h"}))
	_, rules := prometheusFiles(t, res)
	backup := `{job="maricusco-backup", instance="backup:9187"}`
	unitTest := `
rule_files: [` + rules + `]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'maricusco_backup_wal_archive_age_seconds` + backup + `'
        values: '120 121'
      - series: 'maricusco_backup_wal_receiver_down_seconds` + backup + `'
        values: '120 121'
      - series: 'maricusco_backup_wal_slot_retained_bytes` + backup + `'
        values: '67108864 67108865'
    alert_rule_test:
      - {eval_time: 0m, alertname: BackupWALNotArchived, exp_alerts: []}
      - {eval_time: 0m, alertname: BackupWALReceiverDown, exp_alerts: []}
      - {eval_time: 0m, alertname: BackupSlotRetainsTooMuchWAL, exp_alerts: []}
      - eval_time: 1m
        alertname: BackupWALNotArchived
        exp_alerts:
          - exp_labels: {severity: critical, job: maricusco-backup, instance: "backup:9187"}
            exp_annotations:
              summary: "Committed transactions are not in the WAL archive"
              description: "WAL written 121 s ago has not reached the archive (limit 120 s): a loss of the database now would lose it."
      - eval_time: 1m
        alertname: BackupWALReceiverDown
        exp_alerts:
          - exp_labels: {severity: critical, job: maricusco-backup, instance: "backup:9187"}
            exp_annotations:
              summary: "No WAL is streamed into the archive"
              description: "The backup service's WAL receiver has been down for 121 s; its log says why."
      - eval_time: 1m
        alertname: BackupSlotRetainsTooMuchWAL
        exp_alerts:
          - exp_labels: {severity: critical, job: maricusco-backup, instance: "backup:9187"}
            exp_annotations:
              summary: "The WAL slot fills the database's disk"
              description: "The slot holds back 64MiB of WAL (limit 64M); at four times the limit the database gives the slot up and the archive needs a new base backup."
  - interval: 1m
    input_series:
      - series: 'maricusco_backup_base_backup_timestamp_seconds` + backup + `'
        values: '0x100'
      - series: 'maricusco_backup_dump_timestamp_seconds` + backup + `'
        values: '60x100'
      - series: 'up` + backup + `'
        values: '1 0x10'
    alert_rule_test:
      - {eval_time: 90m, alertname: BackupTooOld, exp_alerts: []}
      - eval_time: 91m
        alertname: BackupTooOld
        exp_alerts:
          - exp_labels: {severity: warning, job: maricusco-backup}
            exp_annotations:
              summary: "The newest base backup or dump is older than 1.5 intervals"
              description: "The oldest of the newest base backup and dump is 5460 s old; the backup service's log says why the last runs failed."
      - {eval_time: 2m, alertname: BackupServiceDown, exp_alerts: []}
      - eval_time: 3m
        alertname: BackupServiceDown
        exp_alerts:
          - exp_labels: {severity: critical, job: maricusco-backup, instance: "backup:9187"}
            exp_annotations:
              summary: "The backup service does not answer"
              description: "Prometheus has not scraped the backup service for two minutes: neither WAL nor backups are known to be archived."
  - interval: 15s
    input_series:
      - series: 'http_requests_total{job="maricusco-app", status="2xx"}'
        values: '0+45x40'
      - series: 'http_requests_total{job="maricusco-app", status="5xx"}'
        values: '0+15x40'
    alert_rule_test:
      - {eval_time: 9m, alertname: AppHighErrorRatio, exp_alerts: []}
`
	path := filepath.Join(t.TempDir(), "limits_test.yml")
	require.NoError(t, os.WriteFile(path, []byte(unitTest), 0o644))
	promtool(t, "test", "rules", path)
}
