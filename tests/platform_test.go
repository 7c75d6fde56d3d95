package tests

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/stacks"
)

var shippedStacks = []string{"dev", "prod"}

// seedContainers are the seed's container names, by service.
var seedContainers = map[string]string{
	"app":        container("app"),
	"postgres":   container("postgres"),
	"redis":      container("redis"),
	"chromadb":   container("chromadb"),
	"prometheus": container("prometheus"),
	"grafana":    container("grafana"),
}

const (
	containerType = "docker:index/container:Container"
	volumeType    = "docker:index/volume:Volume"
	networkType   = "docker:index/network:Network"
	imageType     = "docker:index/remoteImage:RemoteImage"
	providerType  = "pulumi:providers:docker"
	passwordType  = "random:index/randomPassword:RandomPassword"
)

// forEachStack runs the program once per shipped stack file and hands the result to check.
func forEachStack(t *testing.T, check func(t *testing.T, stack string, res *Result)) {
	for _, name := range shippedStacks {
		t.Run(name, func(t *testing.T) {
			check(t, name, mustRun(t, loadStack(t, name)))
		})
	}
}

// wantNetworks are the networks each service joins: the edge carries nginx's requests to the app,
// the data network the app's and the backups' connections to the data services, monitoring
// Prometheus's scrapes and Grafana's queries.
var wantNetworks = map[string][]string{
	"lb":         {edgeNetwork, monitoringNetwork}, // the app's instances, and Grafana at /grafana/
	"app":        {edgeNetwork, dataNetwork, monitoringNetwork},
	"postgres":   {dataNetwork},
	"redis":      {dataNetwork},
	"chromadb":   {dataNetwork},
	"backup":     {dataNetwork, monitoringNetwork},
	"prometheus": {monitoringNetwork},
	"grafana":    {monitoringNetwork},
}

// serviceOf is the registry name of a container or swarm service: maricusco-app-2 is the app's.
func serviceOf(dockerName string) string {
	svc := strings.TrimPrefix(dockerName, prefix+"-")
	if strings.HasPrefix(svc, "app-") {
		return "app"
	}
	return svc
}

func TestNetworksAreSplitByNeed(t *testing.T) {
	check := func(t *testing.T, driver string, res *Result, workloads map[string]Resource) {
		var names []string
		for _, n := range res.OfType(networkType) {
			names = append(names, n.Inputs["name"].StringValue())
			assert.Equal(t, driver, n.Inputs["driver"].StringValue())
		}
		assert.ElementsMatch(t, networkNames, names)
		reach := map[string][]string{} // network -> the services on it
		for name, w := range workloads {
			nets := joined(t, w)
			assert.ElementsMatch(t, wantNetworks[serviceOf(name)], keys(nets), "%s joins the networks of what it talks to, and no other", name)
			for network, aliases := range nets {
				assert.Contains(t, aliases, serviceOf(name), "%s answers its DNS name on %s", name, network)
				reach[network] = append(reach[network], serviceOf(name))
			}
		}
		for network, services := range reach {
			for _, outside := range []string{"grafana", "lb"} {
				if slices.Contains(services, outside) {
					for _, data := range []string{"postgres", "redis", "chromadb"} {
						assert.NotContains(t, services, data, "%s shares %s with %s", outside, network, data)
					}
				}
			}
		}
	}
	forEachStack(t, func(t *testing.T, _ string, res *Result) { check(t, "bridge", res, res.Containers()) })
	t.Run("swarm", func(t *testing.T) {
		forEachSwarmStack(t, func(t *testing.T, _ string, res *Result) { check(t, "overlay", res, res.Services()) })
	})
}

func TestVolumesAreComposeNamedAndMountedWhereImagesKeepData(t *testing.T) {
	want := map[string]struct{ container, path string }{
		"maricusco_backups":         {container("backup"), "/backups"},
		"maricusco_postgres_data":   {container("postgres"), "/var/lib/postgresql/data"},
		"maricusco_redis_data":      {container("redis"), "/data"},
		"maricusco_chromadb_data":   {container("chromadb"), "/data"},
		"maricusco_prometheus_data": {container("prometheus"), "/prometheus"},
		"maricusco_grafana_data":    {container("grafana"), "/var/lib/grafana"},
	}
	forEachStack(t, func(t *testing.T, _ string, res *Result) {
		vols := res.OfType(volumeType)
		var names []string
		for _, v := range vols {
			names = append(names, v.Inputs["name"].StringValue())
		}
		assert.ElementsMatch(t, keys(want), names)
		for vol, w := range want {
			c := res.Container(t, w.container)
			var mounts []string
			for _, m := range c.Inputs["volumes"].ArrayValue() {
				o := m.ObjectValue()
				mounts = append(mounts, str(o["volumeName"])+":"+str(o["containerPath"]))
			}
			assert.Contains(t, mounts, vol+":"+w.path)
		}
		for _, app := range res.AppInstances() {
			assert.False(t, app.Inputs.HasValue("volumes"), "the app keeps no data")
		}
	})
}

func TestDevRunsOneInstanceBehindNginx(t *testing.T) {
	res := mustRun(t, loadStack(t, "dev"))
	want := []string{container("backup"), container("lb"), container("app-1")}
	for svc, name := range seedContainers {
		if svc != "app" {
			want = append(want, name)
		}
	}
	assert.ElementsMatch(t, want, keys(res.Containers()), "the seed's services, the backup service and nginx in front of the one instance")
}

func TestProdRunsTwoInstancesBehindNginx(t *testing.T) {
	res := mustRun(t, loadStack(t, "prod"))
	names := keys(res.Containers())
	assert.Len(t, names, 9, "two instances, nginx, five services and the backup service")
	for svc, name := range seedContainers {
		if svc != "app" {
			assert.Contains(t, names, name)
		}
	}
	assert.Contains(t, names, container("lb"))
	instances := res.AppInstances()
	require.Len(t, instances, 2)
	for i, c := range instances {
		assert.Equal(t, fmt.Sprintf("maricusco-app-%d", i+1), c.Inputs["name"].StringValue())
	}
}

func TestEveryServiceHasAliasRestartAndPinnedImage(t *testing.T) {
	forEachStack(t, func(t *testing.T, stack string, res *Result) {
		cfg := loadStack(t, stack)
		images := map[string]string{}
		for _, img := range res.OfType(imageType) {
			images[imageID(img.Inputs["name"].StringValue())] = img.Inputs["name"].StringValue()
			assert.True(t, img.Inputs["keepLocally"].BoolValue(), "an image other stacks may use stays on the host")
		}
		for svc, name := range seedContainers {
			containers := res.AppInstances()
			if svc != "app" {
				containers = []Resource{res.Container(t, name)}
			}
			require.NotEmpty(t, containers, svc)
			for _, c := range containers {
				name := c.Inputs["name"].StringValue()
				na := c.Inputs["networksAdvanced"].ArrayValue()[0].ObjectValue()
				assert.Equal(t, svc, strs(na["aliases"])[0], "%s answers the seed's DNS name", name)
				assert.Equal(t, "unless-stopped", c.Inputs["restart"].StringValue(), name)
				ref, ok := images[c.Inputs["image"].StringValue()]
				require.True(t, ok, "%s runs an image the program pulls", name)
				wantRef := defaultKey(t, svc+"Image").(string)
				if v, set := cfg.Values["maricusco:"+svc+"Image"]; set {
					wantRef = v
				}
				assert.Equal(t, wantRef, ref, name)
				assert.Regexp(t, `^[^@]+:[^:/@]+$|@sha256:`, ref, "%s pins its image", name)
			}
		}
		assert.Contains(t, images[res.Container(t, container("postgres")).Inputs["image"].StringValue()], "timescale/timescaledb:")
	})
}

func TestEveryDockerResourceUsesTheExplicitProvider(t *testing.T) {
	forEachStack(t, func(t *testing.T, _ string, res *Result) {
		providers := res.OfType(providerType)
		require.Len(t, providers, 1)
		for _, r := range res.Resources {
			if strings.HasPrefix(r.Type, "docker:") {
				assert.True(t, strings.HasPrefix(r.Provider, "urn:pulumi:"+"") && strings.Contains(r.Provider, "pulumi:providers:docker::docker::"),
					"%s %s uses provider %q", r.Type, r.Name, r.Provider)
			}
		}
	})
}

func TestTheDockerHostPrecedence(t *testing.T) {
	dev := loadStack(t, "dev")
	cases := []struct {
		name, config, env, want string
	}{
		{"local socket when nothing is set", "", "", "unix:///var/run/docker.sock"},
		{"DOCKER_HOST like the docker CLI", "", "tcp://build-host:2376", "tcp://build-host:2376"},
		{"config wins over DOCKER_HOST", "ssh://deploy@docker.example", "tcp://build-host:2376", "ssh://deploy@docker.example"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tc.env)
			sc := dev
			if tc.config != "" {
				sc = dev.with("dockerHost", tc.config)
			}
			res := mustRun(t, sc)
			p := res.OfType(providerType)
			require.Len(t, p, 1)
			assert.Equal(t, tc.want, p[0].Inputs["host"].StringValue())
		})
	}
}

func TestAppRunsAsUID1000OnPort8000WithTheSeedSettings(t *testing.T) {
	want := map[string]map[string]string{
		"dev":  {"UVICORN_WORKERS": "1", "EXTRA_UVICORN_ARGS": "--log-level debug"},
		"prod": {"UVICORN_WORKERS": "4", "EXTRA_UVICORN_ARGS": "--log-level info"},
	}
	forEachStack(t, func(t *testing.T, stack string, res *Result) {
		expected := map[string]string{
			"APP_MODULE": "maricusco.api.app:app", "APP_HOST": "0.0.0.0", "APP_PORT": "8000", "UVICORN_RELOAD": "false",
			"POSTGRES_HOST": "postgres", "POSTGRES_PORT": "5432", "POSTGRES_DB": "maricusco", "POSTGRES_USER": "maricusco",
			"REDIS_HOST": "redis", "REDIS_PORT": "6379", "CHROMADB_HOST": "chromadb", "CHROMADB_PORT": "8000",
		}
		for k, v := range want[stack] {
			expected[k] = v
		}
		for _, app := range res.AppInstances() {
			assert.Equal(t, "1000", app.Inputs["user"].StringValue())
			vars, _ := env(app)
			for k, v := range expected {
				assert.Equal(t, v, vars[k], k)
			}
		}
		// The app is published by the edge in front of the instances: https, and the redirect.
		for _, app := range res.AppInstances() {
			assert.False(t, app.Inputs.HasValue("ports"), "%s publishes nothing", app.Name)
		}
		var internal []float64
		for _, p := range res.Container(t, container("lb")).Inputs["ports"].ArrayValue() {
			internal = append(internal, p.ObjectValue()["internal"].NumberValue())
		}
		assert.Equal(t, []float64{8443, 8080}, internal, "nginx's https and redirect ports")
	})
}

func TestAppSettingsArePerStack(t *testing.T) {
	sc := loadStack(t, "prod").
		with("appUvicornWorkers", "8").
		with("appModule", "maricusco.api.v2:app").
		with("appEnv", map[string]string{"FEATURE_X": "on"}).
		withSecret("appSecretEnv", map[string]string{"BROKER_API_KEY": "k3y-value-abc"})
	app := mustRun(t, sc).AppInstances()[0]
	vars, secret := env(app)
	assert.Equal(t, "8", vars["UVICORN_WORKERS"])
	assert.Equal(t, "maricusco.api.v2:app", vars["APP_MODULE"])
	assert.Equal(t, "on", vars["FEATURE_X"])
	assert.False(t, secret["FEATURE_X"])
	assert.Equal(t, "k3y-value-abc", vars["BROKER_API_KEY"])
	assert.True(t, secret["BROKER_API_KEY"], "a secret variable stays secret in the state")
}

func TestLimitsAndReservationsAreTheSeedsInDockerUnits(t *testing.T) {
	// cpus as the provider reads NanoCPUs back, memory MiB, CPU shares (1024 per reserved CPU),
	// memory reservation MiB.
	want := map[string]struct {
		cpus              string
		memory, shares    float64
		memoryReservation float64
	}{
		container("app"):        {"2.0", 4096, 512, 512},
		container("postgres"):   {"2.0", 2048, 512, 512},
		container("redis"):      {"1.0", 1024, 256, 256},
		container("chromadb"):   {"2.0", 2048, 512, 512},
		container("grafana"):    {"1.0", 512, 256, 128},
		container("prometheus"): {"1.0", 1024, 256, 256},
		container("lb"):         {"1.0", 256, 256, 64},
		container("backup"):     {"0.5", 512, 102, 64},
	}
	forEachStack(t, func(t *testing.T, _ string, res *Result) {
		for name, c := range res.Containers() {
			w, ok := want[name]
			if strings.HasPrefix(name, "maricusco-app-") {
				w, ok = want[container("app")]
			}
			require.True(t, ok, "%s has limits", name)
			assert.Equal(t, w.cpus, c.Inputs["cpus"].StringValue(), name)
			assert.Equal(t, w.memory, c.Inputs["memory"].NumberValue(), name)
			assert.Equal(t, 2*w.memory, c.Inputs["memorySwap"].NumberValue(), "%s: swap stated as Docker fills it in", name)
			assert.Equal(t, w.shares, c.Inputs["cpuShares"].NumberValue(), name)
			assert.Equal(t, w.memoryReservation, c.Inputs["memoryReservation"].NumberValue(), name)
		}
	})
}

func TestAServicesLimitsCanBeOverriddenPerStack(t *testing.T) {
	sc := loadStack(t, "prod").with("resources", map[string]any{
		"redis": map[string]any{"limits": map[string]string{"memory": "2G"}, "reservations": map[string]string{"cpus": "0.5"}},
	})
	res := mustRun(t, sc)
	redis := res.Container(t, container("redis"))
	assert.Equal(t, 2048.0, redis.Inputs["memory"].NumberValue())
	assert.Equal(t, 512.0, redis.Inputs["cpuShares"].NumberValue())
	assert.Equal(t, "1.0", redis.Inputs["cpus"].StringValue(), "fields not overridden keep the seed's value")
	assert.Equal(t, 4096.0, res.AppInstances()[0].Inputs["memory"].NumberValue(), "other services keep theirs")
}

func TestHealthchecksAreTheSeedsWithAFastStartPhase(t *testing.T) {
	// The first word of each test is a program the pinned image ships (DESIGN.md, docs/configuration.md).
	want := map[string][]string{
		container("app"):        {"CMD", "/usr/local/bin/healthcheck"},
		container("postgres"):   {"CMD-SHELL", "test -f /var/run/postgresql/maricusco-roles-ready && pg_isready"},
		container("redis"):      {"CMD-SHELL", "REDISCLI_AUTH="},
		container("chromadb"):   {"CMD", "/bin/bash"},
		container("prometheus"): {"CMD", "wget"},
		container("grafana"):    {"CMD", "wget"},
		container("lb"):         {"CMD", "wget"},
		container("backup"):     {"CMD", "/bin/sh"},
	}
	contains := map[string]string{
		container("app"):        "/usr/local/bin/healthcheck",
		container("lb"):         "http://127.0.0.1:8000/lb-health",
		container("postgres"):   "pg_isready -h 127.0.0.1 -p 5432 -U postgres -d maricusco",
		container("redis"):      "redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG",
		container("chromadb"):   "GET /api/v2/heartbeat",
		container("prometheus"): "http://127.0.0.1:9090/-/healthy",
		container("grafana"):    "http://127.0.0.1:3000/grafana/api/health",
		container("backup"):     "/run/maricusco/backup.sh health",
	}
	forEachStack(t, func(t *testing.T, _ string, res *Result) {
		for name, c := range res.Containers() {
			kind := name
			if strings.HasPrefix(name, "maricusco-app-") {
				kind = container("app")
			}
			prefix, ok := want[kind]
			require.True(t, ok, "%s has a healthcheck", name)
			hc := c.Inputs["healthcheck"].ObjectValue()
			test := strs(hc["tests"])
			require.GreaterOrEqual(t, len(test), 2, name)
			assert.Equal(t, prefix[0], test[0], name)
			assert.True(t, strings.HasPrefix(test[1], prefix[1]), "%s healthcheck %v", name, test)
			assert.Contains(t, strings.Join(test, " "), contains[kind], name)
			assert.Equal(t, "30s", hc["interval"].StringValue(), name)
			assert.Equal(t, "2s", hc["timeout"].StringValue(), name)
			assert.Equal(t, "500ms", hc["startInterval"].StringValue(), "%s checks fast while starting on an engine that can", name)
			assert.Equal(t, "1m0s", hc["startPeriod"].StringValue(), name)
			assert.False(t, c.Inputs["wait"].BoolValue(), "%s: the program's health gate waits for it, not the provider", name)
		}
	})
}

func TestConfiguredHealthcheckTimingReachesEveryWorkload(t *testing.T) {
	timing := func(sc StackConfig) StackConfig {
		return sc.with("healthcheckInterval", "10s").with("healthcheckTimeout", "3s").with("healthcheckRetries", "5").
			with("healthcheckStartPeriod", "20s").with("healthcheckStartInterval", "1s")
	}
	for name, c := range mustRun(t, timing(loadStack(t, "prod"))).Containers() {
		hc := c.Inputs["healthcheck"].ObjectValue()
		assert.Equal(t, []any{"10s", "3s", 5.0, "20s", "1s"},
			[]any{str(hc["interval"]), str(hc["timeout"]), hc["retries"].NumberValue(), str(hc["startPeriod"]), str(hc["startInterval"])}, name)
	}
	for name, s := range mustRun(t, timing(onSwarm(t, "prod"))).Services() {
		hc := obj(s.Inputs["taskSpec"], "containerSpec", "healthcheck")
		assert.Equal(t, []any{"10s", "3s", 5.0, "20s"},
			[]any{str(obj(hc, "interval")), str(obj(hc, "timeout")), obj(hc, "retries").NumberValue(), str(obj(hc, "startPeriod"))}, name)
	}
}

func TestTheStartIntervalIsSentOnlyToEnginesThatTakeIt(t *testing.T) {
	dev := loadStack(t, "dev")
	engine := func(api string) stacks.Option {
		return stacks.WithEngineAPIVersion(func(string) (string, error) { return api, nil })
	}
	for _, tc := range []struct {
		name          string
		stack         StackConfig
		opts          []stacks.Option
		startInterval bool
	}{
		{"Docker 20.10 (API 1.41) gets none", dev, []stacks.Option{engine("1.41")}, false},
		{"Docker 24 (API 1.43) gets none", dev, []stacks.Option{engine("1.43")}, false},
		{"Docker 25 (API 1.44) gets it", dev, []stacks.Option{engine("1.44")}, true},
		{"Docker 28 (API 1.51) gets it", dev, []stacks.Option{engine("1.51")}, true},
		{"dockerApiVersion overrides the engine's answer", dev.with("dockerApiVersion", "1.41"), []stacks.Option{engine("1.45")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := mustRun(t, tc.stack, tc.opts...)
			for name, c := range res.Containers() {
				hc := c.Inputs["healthcheck"].ObjectValue()
				assert.Equal(t, tc.startInterval, hc.HasValue("startInterval"), name)
				assert.Equal(t, "1m0s", hc["startPeriod"].StringValue(), "%s: every engine since API 1.29 takes a start period", name)
			}
		})
	}
	t.Run("an engine that does not answer stops the deploy, naming the key that skips the question", func(t *testing.T) {
		res, err := run(t, dev, stacks.WithEngineAPIVersion(func(string) (string, error) { return "", fmt.Errorf("connection refused") }))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "connection refused")
		assert.Contains(t, err.Error(), "maricusco:dockerApiVersion")
		assert.Empty(t, res.Resources)
	})
}

func TestLimitsBeyondTheEnginesHostAreRefusedBeforeAnythingIsDeclared(t *testing.T) {
	small := stacks.WithEngineMachine(func(string) (stacks.Machine, error) { return stacks.Machine{CPUs: 1e9, Memory: 3 << 30}, nil })
	for _, stack := range shippedStacks {
		t.Run(stack, func(t *testing.T) {
			res, err := run(t, loadStack(t, stack), small)
			require.Error(t, err)
			for _, key := range []string{"resources.app.limits.cpus", "resources.app.limits.memory", "resources.postgres.limits.cpus", "resources.chromadb.limits.cpus"} {
				assert.Contains(t, err.Error(), "maricusco:"+key+": ", "the seed's 2.0 CPUs and 4G do not fit a host of one CPU and 3G")
			}
			assert.NotContains(t, err.Error(), "resources.grafana.limits", "grafana's 1.0 CPUs and 512M fit")
			assert.Empty(t, res.Resources)
		})
	}
	t.Run("an engine that cannot say what its host has stops the deploy", func(t *testing.T) {
		_, err := run(t, loadStack(t, "dev"), stacks.WithEngineMachine(func(string) (stacks.Machine, error) { return stacks.Machine{}, fmt.Errorf("connection refused") }))
		assert.ErrorContains(t, err, "cannot ask unix:///var/run/docker.sock what its host offers (connection refused)")
	})
}

// containerDeps are the logical names of the containers c waits for.
func containerDeps(c Resource) []string {
	var deps []string
	for _, d := range c.DependsOn {
		if strings.Contains(d, containerType+"::") {
			deps = append(deps, d[strings.LastIndex(d, "::")+2:])
		}
	}
	return deps
}

func TestOnlyWhatNeedsAServiceWaitsForIt(t *testing.T) {
	dataServices := []string{"postgres-container", "redis-container", "chromadb-container"}
	for _, replicas := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("%d instance(s)", replicas), func(t *testing.T) {
			res := mustRun(t, loadStack(t, "prod").with("appReplicas", fmt.Sprint(replicas)))
			waits := map[string][]string{}
			for name, c := range res.Containers() {
				waits[name] = containerDeps(c)
			}
			assert.ElementsMatch(t, dataServices, waits[container("app-1")], "the first instance starts once the data services are healthy")
			delete(waits, container("app-1"))
			for i := 2; i <= replicas; i++ {
				assert.Equal(t, []string{fmt.Sprintf("app-%d", i-1)}, waits[fmt.Sprintf("maricusco-app-%d", i)],
					"instance %d is replaced only once instance %d is back, so one instance at a time is down", i, i-1)
				delete(waits, fmt.Sprintf("maricusco-app-%d", i))
			}
			assert.Equal(t, []string{fmt.Sprintf("app-%d", replicas)}, waits[container("lb")], "the load balancer takes the port once every instance is healthy")
			delete(waits, container("lb"))
			assert.Equal(t, []string{"postgres-container"}, waits[container("backup")], "the first dump is taken once the database is healthy")
			delete(waits, container("backup"))
			for name, deps := range waits {
				assert.Empty(t, deps, "%s need not wait for another container, so Pulumi creates it at once", name)
			}
		})
	}
}

func TestAFirstDeployStartsTheInstancesSideBySide(t *testing.T) {
	dataServices := []string{"postgres-container", "redis-container", "chromadb-container"}
	var asked []string
	nothingRuns := stacks.WithEngineRunning(func(_, name string) (bool, error) { asked = append(asked, name); return false, nil })
	res, err := run(t, loadStack(t, "prod").with("appReplicas", "3"), nothingRuns)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{container("app"), container("lb")}, asked, "the containers that could be answering on the port")
	for i := 1; i <= 3; i++ {
		assert.ElementsMatch(t, dataServices, containerDeps(res.Container(t, fmt.Sprintf("maricusco-app-%d", i))),
			"instance %d waits for the data services only: nothing serves that a roll would keep up", i)
	}
	assert.Empty(t, containerDeps(res.Container(t, container("lb"))), "nginx resolves the instances per request, so it starts at once")

	t.Run("an engine that cannot say stops the deploy", func(t *testing.T) {
		_, err := run(t, loadStack(t, "prod"), stacks.WithEngineRunning(func(string, string) (bool, error) { return false, fmt.Errorf("connection refused") }))
		assert.ErrorContains(t, err, "whether maricusco-app runs: connection refused")
	})
	t.Run("a swarm service rolls by its own update order", func(t *testing.T) {
		_, err := run(t, onSwarm(t, "prod"), stacks.WithEngineRunning(func(string, string) (bool, error) { return false, fmt.Errorf("not asked") }))
		assert.NoError(t, err)
	})
}

func TestProdPublishesOnlyTheEdgesHTTPSAndRedirect(t *testing.T) {
	res := mustRun(t, loadStack(t, "prod"))
	published := publishedPorts(res)
	assert.Equal(t, map[string]string{container("lb"): "0.0.0.0:443->8443,0.0.0.0:80->8080"}, published, "Grafana is reached through the edge")
}

func TestDevPublishesEveryServiceOnLoopbackOnly(t *testing.T) {
	res := mustRun(t, loadStack(t, "dev"))
	assert.Equal(t, map[string]string{
		container("lb"):         "127.0.0.1:8080->8080,127.0.0.1:8443->8443",
		container("grafana"):    "127.0.0.1:3000->3000",
		container("postgres"):   "127.0.0.1:5432->5432",
		container("redis"):      "127.0.0.1:6379->6379",
		container("chromadb"):   "127.0.0.1:8001->8000",
		container("prometheus"): "127.0.0.1:9090->9090",
	}, publishedPorts(res))
}

func publishedPorts(res *Result) map[string]string {
	out := map[string]string{}
	for name, c := range res.Containers() {
		if !c.Inputs.HasValue("ports") {
			continue
		}
		var ps []string
		for _, p := range c.Inputs["ports"].ArrayValue() {
			o := p.ObjectValue()
			ps = append(ps, fmt.Sprintf("%s:%v->%v", str(o["ip"]), o["external"].NumberValue(), o["internal"].NumberValue()))
		}
		sort.Strings(ps)
		out[name] = strings.Join(ps, ",")
	}
	return out
}

func TestNoProdImageIsLatest(t *testing.T) {
	res := mustRun(t, loadStack(t, "prod"))
	for _, img := range res.OfType(imageType) {
		ref := img.Inputs["name"].StringValue()
		assert.NotContains(t, ref, ":latest", ref)
		assert.Regexp(t, `:[^/]+$|@sha256:`, ref)
	}
}

func TestGeneratedSecretsAreSecretAndDeliveredAsFiles(t *testing.T) {
	forEachStack(t, func(t *testing.T, _ string, res *Result) {
		generated := map[string]bool{}
		for _, pw := range res.OfType(passwordType) {
			generated[pw.Name] = true
		}
		assert.Equal(t, map[string]bool{"secrets-postgres-password": true, "secrets-postgres-superuser-password": true, "secrets-postgres-backup-password": true,
			"secrets-redis-password": true, "secrets-grafana-admin-password": true}, generated, "a secret the stack does not set is generated")
		checkSecretFile(t, res, container("postgres"), "POSTGRES_PASSWORD_FILE", "generated-secrets-postgres-superuser-password")
		checkSecretFile(t, res, container("postgres"), "MARICUSCO_APP_PASSWORD_FILE", "generated-secrets-postgres-password")
		checkSecretFile(t, res, container("postgres"), "MARICUSCO_BACKUP_PASSWORD_FILE", "generated-secrets-postgres-backup-password")
		checkSecretFile(t, res, container("backup"), "BACKUP_PASSWORD_FILE", "generated-secrets-postgres-backup-password")
		for _, app := range res.AppInstances() {
			name := app.Inputs["name"].StringValue()
			checkSecretFile(t, res, name, "POSTGRES_PASSWORD_FILE", "generated-secrets-postgres-password")
			checkSecretFile(t, res, name, "REDIS_PASSWORD_FILE", "generated-secrets-redis-password")
		}
		checkSecretFile(t, res, container("grafana"), "GF_SECURITY_ADMIN_PASSWORD__FILE", "generated-secrets-grafana-admin-password")
		files, secret := uploads(res.Container(t, container("redis")))
		assert.Contains(t, files["/run/secrets/redis.conf"], `requirepass "generated-secrets-redis-password"`)
		assert.True(t, secret["/run/secrets/redis.conf"], "redis.conf holds the password, so it is secret")
		assertNoPlainSecret(t, res, "generated-")
	})
}

func TestConfiguredSecretsReplaceGeneratedOnes(t *testing.T) {
	sc := loadStack(t, "prod").
		withSecret(stacks.PostgresPasswordKey, "pg-Secret-from-config-1").
		withSecret(stacks.GrafanaAdminPasswordKey, "graf-Secret-from-config-2")
	res := mustRun(t, sc)
	var generated []string
	for _, pw := range res.OfType(passwordType) {
		generated = append(generated, pw.Name)
	}
	assert.Equal(t, []string{"secrets-postgres-backup-password", "secrets-postgres-superuser-password", "secrets-redis-password"}, generated)
	checkSecretFile(t, res, container("postgres"), "MARICUSCO_APP_PASSWORD_FILE", "pg-Secret-from-config-1")
	checkSecretFile(t, res, container("grafana"), "GF_SECURITY_ADMIN_PASSWORD__FILE", "graf-Secret-from-config-2")
	assertNoPlainSecret(t, res, "pg-Secret-from-config-1")
	assertNoPlainSecret(t, res, "graf-Secret-from-config-2")
	conn := res.Exports["postgresConnectionString"]
	assert.True(t, conn.Secret)
	assert.Equal(t, "postgresql://maricusco:pg-Secret-from-config-1@postgres:5432/maricusco", conn.Value)
}

// checkSecretFile asserts that the container reads a secret from the file its variable names,
// and that the file's content is that secret, marked secret.
func checkSecretFile(t *testing.T, res *Result, container, variable, value string) {
	t.Helper()
	c := res.Container(t, container)
	vars, _ := env(c)
	path := vars[variable]
	require.NotEmpty(t, path, "%s has %s", container, variable)
	files, secret := uploads(c)
	assert.Equal(t, value, files[path], "%s: %s", container, path)
	assert.True(t, secret[path], "%s: %s is secret", container, path)
}

// assertNoPlainSecret fails when a value containing needle appears unmarked in any resource's inputs.
func assertNoPlainSecret(t *testing.T, res *Result, needle string) {
	t.Helper()
	for _, r := range res.Resources {
		assert.NotContains(t, serializePlain(t, r.Inputs), needle, "%s %s holds a secret in plaintext", r.Type, r.Name)
	}
}

// plaintextSecrets are the secret keys a stack file sets without `secure:`.
func plaintextSecrets(sc StackConfig) []string {
	var out []string
	for _, k := range stacks.Keys() {
		full := stacks.Namespace + ":" + k.Name
		if _, set := sc.Values[full]; set && k.Secret && !slices.Contains(sc.Secrets, full) {
			out = append(out, full)
		}
	}
	return out
}

func TestStackFilesHoldNoPlaintextSecret(t *testing.T) {
	for _, name := range shippedStacks {
		t.Run(name, func(t *testing.T) {
			sc := loadStack(t, name)
			assert.Empty(t, plaintextSecrets(sc), "set them with `pulumi config set --secret`")
			leaked := sc.with(stacks.RedisPasswordKey, "x").with("appSecretEnv", map[string]string{"API_TOKEN": "y"})
			assert.ElementsMatch(t, []string{"maricusco:" + stacks.RedisPasswordKey, "maricusco:appSecretEnv"}, plaintextSecrets(leaked),
				"the check sees a secret written in plaintext")
		})
	}
}

func TestOutputsNameWhatWasDeployed(t *testing.T) {
	want := map[string]map[string]any{
		"dev":  {"appUrl": "https://localhost:8443", "grafanaUrl": "https://localhost:8443/grafana/"},
		"prod": {"appUrl": "https://localhost", "grafanaUrl": "https://localhost/grafana/"},
	}
	forEachStack(t, func(t *testing.T, stack string, res *Result) {
		for k, v := range want[stack] {
			assert.Equal(t, v, res.Exports[k].Value, k)
			assert.False(t, res.Exports[k].Secret, k)
		}
		var edge struct{ Certificate string }
		require.NoError(t, json.Unmarshal([]byte(loadStack(t, stack).Values["maricusco:edge"]), &edge))
		assert.Equal(t, edge.Certificate, res.Exports["tlsCertificate"].Value, "the chain the edge serves, for clients to trust")
		assert.False(t, res.Exports["tlsCertificate"].Secret)
		assert.Equal(t, map[string]string{"edge": edgeNetwork, "data": dataNetwork, "monitoring": monitoringNetwork}, res.Exports["networkNames"].Value)
		assert.Equal(t, map[string]string{
			"postgres": "maricusco_postgres_data", "redis": "maricusco_redis_data", "chromadb": "maricusco_chromadb_data",
			"prometheus": "maricusco_prometheus_data", "grafana": "maricusco_grafana_data", "backup": "maricusco_backups",
		}, res.Exports["volumeNames"].Value)
		names := res.Exports["containerNames"].Value.(map[string]any)
		var apps []string
		for _, app := range res.AppInstances() {
			apps = append(apps, app.Inputs["name"].StringValue())
		}
		assert.Equal(t, apps, names["app"])
		assert.Equal(t, container("lb"), names["lb"])
		for svc, name := range seedContainers {
			if svc != "app" {
				assert.Equal(t, name, names[svc], svc)
			}
		}
		assert.True(t, res.Exports["grafanaAdminPassword"].Secret)
		assert.Equal(t, "generated-secrets-grafana-admin-password", res.Exports["grafanaAdminPassword"].Value)
		conn := res.Exports["postgresConnectionString"]
		assert.True(t, conn.Secret, "the connection string carries the password")
		assert.Equal(t, "postgresql://maricusco:generated-secrets-postgres-password@postgres:5432/maricusco", conn.Value)
	})
}

func TestDataVolumesOutliveContainers(t *testing.T) {
	forEachStack(t, func(t *testing.T, stack string, res *Result) {
		for _, v := range res.OfType(volumeType) {
			assert.True(t, v.RetainOnDelete, "%s is kept in Docker when Pulumi deletes it", v.Name)
			assert.Equal(t, stack == "prod", v.Protect, "%s is protected in prod only", v.Name)
			assert.Equal(t, []string{"labels"}, v.IgnoreChanges, "%s: the labels of a volume compose created are adopted as they are", v.Name)
		}
		for name, c := range res.Containers() {
			assert.True(t, c.DeleteBeforeReplace, "%s: Docker refuses a second container of one name, so the old one goes first", name)
			assert.Empty(t, c.IgnoreChanges, "%s: every container field is sent as the provider reads it back", name)
			assert.Equal(t, 30.0, c.Inputs["destroyGraceSeconds"].NumberValue(), "%s stops gracefully when Pulumi deletes it", name)
		}
	})
	res := mustRun(t, loadStack(t, "dev").with("deleteVolumesOnDestroy", "true"))
	for _, v := range res.OfType(volumeType) {
		assert.False(t, v.RetainOnDelete, "%s: the stack asked for deletion", v.Name)
	}
}
