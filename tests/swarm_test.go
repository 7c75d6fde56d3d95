package tests

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/components"
	"github.com/maricusco/infra/stacks"
)

const (
	serviceType       = "docker:index/service:Service"
	dockerSecretType  = "docker:index/secret:Secret"
	dockerConfigType  = "docker:index/serviceConfig:ServiceConfig"
	remoteImageType   = "docker:index/remoteImage:RemoteImage"
	dataNodeContraint = "node.labels.maricusco.data==true"
)

// onSwarm is a shipped stack moved to the swarm target; dev's loopback ports, which a swarm's
// routing mesh cannot publish, give way to the seed's two published ports.
func onSwarm(t testing.TB, name string) StackConfig {
	sc := loadStack(t, name).with("orchestrator", "swarm")
	if name == "dev" {
		sc = sc.with("ports", map[string]string{"grafana": "0.0.0.0:3000", "postgres": "", "redis": "", "chromadb": "", "prometheus": ""})
		sc = edgeWith(t, sc, map[string]any{"https": "0.0.0.0:8443", "http": "0.0.0.0:8080"})
	}
	return sc
}

func forEachSwarmStack(t *testing.T, check func(t *testing.T, stack string, res *Result)) {
	for _, name := range shippedStacks {
		t.Run(name, func(t *testing.T) {
			check(t, name, mustRun(t, onSwarm(t, name)))
		})
	}
}

// obj walks into nested object inputs.
func obj(v resource.PropertyValue, path ...string) resource.PropertyValue {
	for _, p := range path {
		for v.IsSecret() {
			v = v.SecretValue().Element
		}
		if !v.IsObject() {
			return resource.NewNullProperty()
		}
		v = v.ObjectValue()[resource.PropertyKey(p)]
	}
	return v
}

// arr reads an array input; an absent one is empty.
func arr(v resource.PropertyValue) []resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	if !v.IsArray() {
		return nil
	}
	return v.ArrayValue()
}

func TestSwarmRunsOneServicePerService(t *testing.T) {
	forEachSwarmStack(t, func(t *testing.T, stack string, res *Result) {
		assert.ElementsMatch(t, []string{container("app"), container("postgres"), container("redis"), container("chromadb"),
			container("prometheus"), container("grafana"), container("backup"), container("lb")}, keys(res.Services()), "nginx at the edge, as on one engine")
		assert.Empty(t, res.OfType(containerType))
		assert.Empty(t, res.OfType(remoteImageType), "every node pulls the image a task needs")
		nets := res.OfType(networkType)
		require.Len(t, nets, len(networkNames))
		for _, n := range nets {
			assert.Equal(t, "overlay", n.Inputs["driver"].StringValue())
			assert.True(t, n.Inputs["attachable"].BoolValue())
			assert.Contains(t, n.Inputs["options"].ObjectValue(), resource.PropertyKey("encrypted"), "encrypted by default")
		}
		wantReplicas := map[string]float64{"dev": 1, "prod": 2}[stack]
		app := res.Service(t, container("app"))
		assert.Equal(t, wantReplicas, obj(app.Inputs["mode"], "replicated", "replicas").NumberValue(), "appReplicas replicas")
		for name, s := range res.Services() {
			if name != container("app") {
				assert.Equal(t, 1.0, obj(s.Inputs["mode"], "replicated", "replicas").NumberValue(), name)
			}
		}
		assert.Len(t, res.OfType("docker:index/volume:Volume"), 6, "the same five data volumes and the backups volume")
	})
}

func TestBothTargetsTakeTheSameLimits(t *testing.T) {
	docker, swarm := mustRun(t, loadStack(t, "prod")), mustRun(t, onSwarm(t, "prod"))
	for _, row := range stacks.Registry {
		service, spec := row.Name, row.Resources
		if service == "lb" {
			continue // no load balancer on a swarm
		}
		t.Run(service, func(t *testing.T) {
			cpuLimit, err := components.ParseNanoCPUs(spec.Limits.CPUs)
			require.NoError(t, err)
			cpuReserved, err := components.ParseNanoCPUs(spec.Reservations.CPUs)
			require.NoError(t, err)
			memLimit, err := components.ParseUnitBytes(spec.Limits.Memory)
			require.NoError(t, err)
			memReserved, err := components.ParseUnitBytes(spec.Reservations.Memory)
			require.NoError(t, err)
			name := "maricusco-" + service
			res := obj(swarm.Service(t, name).Inputs["taskSpec"], "resources")
			assert.Equal(t, float64(cpuLimit), obj(res, "limits", "nanoCpus").NumberValue(), "swarm limits CPU")
			assert.Equal(t, float64(memLimit), obj(res, "limits", "memoryBytes").NumberValue(), "swarm limits memory")
			assert.Equal(t, float64(cpuReserved), obj(res, "reservation", "nanoCpus").NumberValue(), "swarm reserves CPU itself")
			assert.Equal(t, float64(memReserved), obj(res, "reservation", "memoryBytes").NumberValue(), "swarm reserves memory")
			if service == "app" {
				name += "-1" // prod's first instance
			}
			c := docker.Container(t, name)
			assert.Equal(t, float64(memLimit)/(1<<20), c.Inputs["memory"].NumberValue(), "one engine: the same memory limit")
			assert.Equal(t, float64(memReserved)/(1<<20), c.Inputs["memoryReservation"].NumberValue(), "one engine: the same memory reservation")
			assert.InDelta(t, cpuReserved.CPUs()*1024, c.Inputs["cpuShares"].NumberValue(), 0.5, "one engine approximates the CPU reservation by weight")
		})
	}
}

func TestSwarmServicesKeepTheContainersRules(t *testing.T) {
	docker, swarm := mustRun(t, loadStack(t, "dev")), mustRun(t, onSwarm(t, "dev"))
	for name, s := range swarm.Services() {
		t.Run(name, func(t *testing.T) {
			if name == container("app") {
				name = container("app-1") // dev's one instance, behind nginx
			}
			c := docker.Container(t, name)
			spec := obj(s.Inputs["taskSpec"], "containerSpec")
			hc := obj(spec, "healthcheck")
			assert.Equal(t, strs(c.Inputs["healthcheck"].ObjectValue()["tests"]), strs(hc.ObjectValue()["tests"]), "the same test")
			assert.Equal(t, "30s", obj(hc, "interval").StringValue())
			assert.Equal(t, "2s", obj(hc, "timeout").StringValue())
			assert.Equal(t, "1m", obj(hc, "startPeriod").StringValue(), "as the provider reads a service's durations back")
			assert.Equal(t, 3.0, obj(hc, "retries").NumberValue())
			assert.False(t, obj(hc, "startInterval").HasValue(), "the provider's service has no start interval")
			assert.Equal(t, "any", obj(s.Inputs["taskSpec"], "restartPolicy", "condition").StringValue(), "unless-stopped restarts any exit")
			assert.Equal(t, []string{"ALL"}, strs(obj(spec, "capDrops")))
			assert.Equal(t, strs(c.Inputs["capabilities"].ObjectValue()["adds"]), strs(obj(spec, "capAdds")), "the same capabilities back")
			assert.Equal(t, c.Inputs["readOnly"].BoolValue(), obj(spec, "readOnly").BoolValue(), "the same read-only root")
			assert.Equal(t, "30s", obj(spec, "stopGracePeriod").StringValue())
			assert.Equal(t, "json-file", obj(s.Inputs["taskSpec"], "logDriver", "name").StringValue())
			assert.Equal(t, "10m", obj(s.Inputs["taskSpec"], "logDriver", "options", "max-size").StringValue())
			if c.Inputs.HasValue("user") {
				assert.Equal(t, c.Inputs["user"].StringValue(), obj(spec, "user").StringValue())
			}
			assert.Equal(t, "5m", obj(s.Inputs["convergeConfig"], "timeout").StringValue(), "up returns once converged, within healthyTimeout")
		})
	}
}

func TestSwarmRollsStatelessStartFirstStatefulStopFirst(t *testing.T) {
	forEachSwarmStack(t, func(t *testing.T, _ string, res *Result) {
		for name, s := range res.Services() {
			update, rollback := s.Inputs["updateConfig"], s.Inputs["rollbackConfig"]
			order := "stop-first"
			if name == container("app") || name == container("lb") {
				order = "start-first" // stateless: the new task serves before the old one goes
			}
			assert.Equal(t, order, obj(update, "order").StringValue(), "%s: two tasks never share a data volume", name)
			assert.Equal(t, 1.0, obj(update, "parallelism").NumberValue(), name)
			assert.Equal(t, "rollback", obj(update, "failureAction").StringValue(), name)
			assert.Equal(t, "32s", obj(update, "monitor").StringValue(), "%s: a new task stays healthy one healthcheck interval before the next rolls", name)
			assert.Equal(t, order, obj(rollback, "order").StringValue(), name)
			assert.Equal(t, "pause", obj(rollback, "failureAction").StringValue(), name)
		}
	})
}

func TestSwarmPinsStatefulServicesToTheDataNodeAndSpreadsTheRest(t *testing.T) {
	forEachSwarmStack(t, func(t *testing.T, _ string, res *Result) {
		for name, s := range res.Services() {
			constraints := strs(obj(s.Inputs["taskSpec"], "placement", "constraints"))
			prefs := strs(obj(s.Inputs["taskSpec"], "placement", "prefs"))
			if name == container("app") || name == container("lb") {
				assert.Empty(t, constraints, "%s runs on any node", name)
				assert.Equal(t, []string{"node.labels.maricusco.zone"}, prefs, "%s spreads over the zones first", name)
				continue
			}
			assert.Equal(t, []string{dataNodeContraint}, constraints, "%s stays with its volume", name)
			assert.Empty(t, prefs, "%s has one node to go to", name)
		}
	})
}

func TestSwarmPublishesThroughTheRoutingMesh(t *testing.T) {
	forEachSwarmStack(t, func(t *testing.T, stack string, res *Result) {
		published := map[string][]float64{}
		for name, s := range res.Services() {
			for _, p := range arr(obj(s.Inputs["endpointSpec"], "ports")) {
				assert.Equal(t, "ingress", obj(p, "publishMode").StringValue(), name)
				published[name] = append(published[name], obj(p, "publishedPort").NumberValue(), obj(p, "targetPort").NumberValue())
			}
		}
		want := map[string]map[string][]float64{
			"dev":  {container("lb"): {8443, 8443, 8080, 8080}, container("grafana"): {3000, 3000}},
			"prod": {container("lb"): {443, 8443, 80, 8080}},
		}[stack]
		assert.Equal(t, want, published, "the edge's https and redirect (published, target), and what the stack publishes for debugging")
	})
}

// swarmFiles are a service's mounted configs and secrets: target path to the Docker object.
func swarmFiles(t *testing.T, res *Result, service string) (configs, secrets map[string]Resource) {
	t.Helper()
	byURNName := func(typ string) map[string]Resource {
		out := map[string]Resource{}
		for _, r := range res.OfType(typ) {
			out[r.Name+"-id"] = r // the mocks' ID
		}
		return out
	}
	allConfigs, allSecrets := byURNName(dockerConfigType), byURNName(dockerSecretType)
	spec := obj(res.Service(t, service).Inputs["taskSpec"], "containerSpec")
	configs, secrets = map[string]Resource{}, map[string]Resource{}
	for _, c := range arr(obj(spec, "configs")) {
		configs[str(obj(c, "fileName"))] = allConfigs[str(obj(c, "configId"))]
		assert.Equal(t, 0o444, int(obj(c, "fileMode").NumberValue()))
	}
	for _, s := range arr(obj(spec, "secrets")) {
		secrets[str(obj(s, "fileName"))] = allSecrets[str(obj(s, "secretId"))]
	}
	return configs, secrets
}

func decoded(t *testing.T, r Resource) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(str(r.Inputs["data"]))
	require.NoError(t, err)
	return string(b)
}

func TestSwarmFilesAreSecretsAndConfigs(t *testing.T) {
	res := mustRun(t, onSwarm(t, "prod").withSecret(stacks.PostgresPasswordKey, "configured-Password-1"))
	for _, tc := range []struct {
		service          string
		configs, secrets []string
	}{
		{container("postgres"), []string{"/run/maricusco/postgres-entrypoint.sh", "/run/maricusco/postgres-roles.sh", "/run/maricusco/pg_hba.conf"},
			[]string{"/run/secrets/postgres_password", "/run/secrets/postgres_superuser_password", "/run/secrets/postgres_backup_password"}},
		{container("redis"), []string{"/run/maricusco/redis-entrypoint.sh"}, []string{"/run/secrets/redis.conf", "/run/secrets/redis_password"}},
		{container("app"), nil, []string{"/run/secrets/postgres_password", "/run/secrets/redis_password"}},
		{container("prometheus"), []string{"/run/maricusco/alerts.yml", "/run/maricusco/prometheus.yml"}, nil},
		{container("grafana"), []string{"/run/maricusco/grafana-entrypoint.sh", "/run/maricusco/grafana/dashboards/maricusco.json",
			"/run/maricusco/grafana/provisioning/dashboards/maricusco.yml", "/run/maricusco/grafana/provisioning/datasources/prometheus.yml"},
			[]string{"/run/secrets/grafana_admin_password"}},
		{container("backup"), []string{"/run/maricusco/backup.sh"}, []string{"/run/secrets/postgres_backup_password"}},
	} {
		t.Run(tc.service, func(t *testing.T) {
			configs, secrets := swarmFiles(t, res, tc.service)
			assert.ElementsMatch(t, tc.configs, keys(configs))
			assert.ElementsMatch(t, tc.secrets, keys(secrets))
			for path, s := range secrets {
				assert.True(t, s.Inputs["data"].IsSecret(), "%s is secret in the state", path)
				assert.True(t, strings.HasPrefix(s.Inputs["name"].StringValue(), tc.service+"-"), "%s: %s is named after its service", path, s.Inputs["name"].StringValue())
			}
			for path, c := range configs {
				assert.False(t, c.Inputs["data"].IsSecret(), "%s holds no secret", path)
				assert.Regexp(t, `^`+tc.service+`-[A-Za-z0-9_.-]+-[0-9a-f]{12}$`, c.Inputs["name"].StringValue(), path)
			}
		})
	}
	_, pgSecrets := swarmFiles(t, res, container("postgres"))
	assert.Equal(t, "configured-Password-1", decoded(t, pgSecrets["/run/secrets/postgres_password"]))
	configs, _ := swarmFiles(t, res, container("prometheus"))
	assert.Contains(t, decoded(t, configs["/run/maricusco/prometheus.yml"]), `names: ["tasks.app"]`, "Prometheus finds each replica through tasks.app")
}

func TestARotatedSecretIsANewDockerSecret(t *testing.T) {
	before := mustRun(t, onSwarm(t, "prod").withSecret(stacks.PostgresPasswordKey, "first-Password-123"))
	after := mustRun(t, onSwarm(t, "prod").withSecret(stacks.PostgresPasswordKey, "second-Password-456"))
	_, old := swarmFiles(t, before, container("postgres"))
	_, rotated := swarmFiles(t, after, container("postgres"))
	path := "/run/secrets/postgres_password"
	assert.NotEqual(t, old[path].Inputs["name"].StringValue(), rotated[path].Inputs["name"].StringValue(), "a new content is a new secret name")
	plan := planDiff(before, after)
	assert.Empty(t, plan.Added)
	assert.Empty(t, plan.Removed)
	var changedServices []string
	for _, c := range plan.Changed {
		if typ, name, _ := strings.Cut(c, "::"); typ == serviceType {
			changedServices = append(changedServices, name)
		}
	}
	assert.ElementsMatch(t, []string{"postgres-service", "app-service"}, changedServices, "only the services that read the app's password roll")
	again := mustRun(t, onSwarm(t, "prod").withSecret(stacks.PostgresPasswordKey, "second-Password-456"))
	assert.Equal(t, Plan{}, planDiff(after, again), "the same content keeps its name: nothing changes")
}

func TestSwarmShowsNoPlaintextSecretInAServiceOrConfig(t *testing.T) {
	const password = "visible-Password-789"
	res := mustRun(t, onSwarm(t, "prod").withSecret(stacks.RedisPasswordKey, password).withSecret(stacks.GrafanaAdminPasswordKey, password))
	for _, r := range res.Resources {
		if r.Type == dockerSecretType {
			continue
		}
		plain := resource.NewObjectProperty(r.Inputs).String()
		assert.NotContains(t, plain, password, "%s %s", r.Type, r.Name)
		if r.Type == dockerConfigType {
			assert.NotContains(t, decoded(t, r), password, r.Name)
		}
	}
}

func TestSwarmRefusesWhatItCannotDo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sc    StackConfig
		wants []string
	}{
		{"a loopback port", loadStack(t, "dev").with("orchestrator", "swarm"),
			[]string{"ports.postgres: 127.0.0.1:5432 cannot be published under swarm: the routing mesh publishes a port on every address"}},
		{"secret environment", onSwarm(t, "prod").withSecret("appSecretEnv", map[string]string{"API_KEY": "k"}),
			[]string{"appSecretEnv: cannot be used under swarm", "docker service inspect"}},
		{"an unknown orchestrator", loadStack(t, "prod").with("orchestrator", "kubernetes"),
			[]string{`orchestrator: "kubernetes" is not an orchestrator; use one of docker, swarm`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := run(t, tc.sc)
			require.Error(t, err)
			for _, want := range tc.wants {
				assert.Contains(t, err.Error(), want)
			}
			assert.Empty(t, res.Resources, "nothing is declared")
		})
	}
	for _, tc := range []struct {
		name  string
		nodes []stacks.SwarmNode
		err   error
		want  string
	}{
		{"an engine that is no manager", nil, assert.AnError, "docker swarm: " + assert.AnError.Error()},
		{"no data node", []stacks.SwarmNode{{Name: "n", CPUs: 16e9, Memory: 64 << 30}}, nil,
			"no ready node of the swarm is labelled maricusco.data=true"},
		{"a data node too small for the seed's reservations", []stacks.SwarmNode{{Name: "small", Data: true, CPUs: 1e9, Memory: 64 << 30}}, nil,
			"the stateful services reserve 1.85 CPUs and 1728M on the data node small, which offers 1.00 CPUs"},
		{"a swarm too small for the app while it rolls", []stacks.SwarmNode{{Name: "two-cpus", Data: true, CPUs: 2e9, Memory: 64 << 30}}, nil,
			"reserve 3.85 CPUs and 3392M, and the swarm's 1 ready node(s) offer 2.00 CPUs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := run(t, onSwarm(t, "prod"), stacks.WithSwarmNodes(func(string) ([]stacks.SwarmNode, error) {
				return tc.nodes, tc.err
			}))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, res.Resources, "nothing is declared")
		})
	}
	t.Run("the seed's reservations fit a data node of 4 CPUs", func(t *testing.T) {
		_, err := run(t, onSwarm(t, "prod"), stacks.WithSwarmNodes(func(string) ([]stacks.SwarmNode, error) {
			return []stacks.SwarmNode{{Name: "four", Data: true, CPUs: 4e9, Memory: 8 << 30}}, nil
		}))
		require.NoError(t, err)
	})
}

func TestScalingTheAppOnSwarmChangesOnlyItsReplicas(t *testing.T) {
	before := mustRun(t, onSwarm(t, "prod"))
	after := mustRun(t, onSwarm(t, "prod").with("appReplicas", "4"))
	assert.Equal(t, Plan{Changed: []string{serviceType + "::app-service"}}, planDiff(before, after))
	assert.Equal(t, 4.0, obj(after.Service(t, container("app")).Inputs["mode"], "replicated", "replicas").NumberValue())
}

func TestDNSRoundRobinPublishesNothing(t *testing.T) {
	sc := edgeWith(t, onSwarm(t, "prod").with("swarmEndpointMode", "dnsrr"), map[string]any{"https": "", "http": ""})
	res := mustRun(t, sc)
	for name, s := range res.Services() {
		assert.Equal(t, "dnsrr", obj(s.Inputs["endpointSpec"], "mode").StringValue(), name)
		assert.Empty(t, arr(obj(s.Inputs["endpointSpec"], "ports")), name)
	}
	vip := mustRun(t, onSwarm(t, "prod"))
	assert.False(t, obj(vip.Service(t, container("postgres")).Inputs["endpointSpec"], "mode").HasValue(), "vip is the swarm's own default")

	for _, tc := range []struct {
		name string
		sc   StackConfig
		want string
	}{
		{"dnsrr with the default published ports", onSwarm(t, "prod").with("swarmEndpointMode", "dnsrr"),
			"edge.https: 0.0.0.0:443 cannot be published under swarm: the routing mesh publishes on 0.0.0.0 of every node, and dnsrr publishes nothing"},
		{"dnsrr on one engine", loadStack(t, "prod").with("swarmEndpointMode", "dnsrr"),
			"swarmEndpointMode: dnsrr applies to swarm services only"},
		{"an unknown mode", onSwarm(t, "prod").with("swarmEndpointMode", "ipvs"),
			`swarmEndpointMode: "ipvs" is not an endpoint mode; use vip or dnsrr`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, tc.sc)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestASwarmSecretsNameCannotConfirmAGuessedPassword(t *testing.T) {
	const guess = "summer-Password-2026"
	res := mustRun(t, onSwarm(t, "prod").withSecret(stacks.PostgresPasswordKey, guess))
	_, pg := swarmFiles(t, res, container("postgres"))
	const path = "/run/secrets/postgres_password"
	name := pg[path].Inputs["name"].StringValue()
	unkeyed := sha256.Sum256([]byte(path + "\x00" + guess))
	assert.NotContains(t, name, hex.EncodeToString(unkeyed[:])[:12], "the hash in %s is keyed: hashing a guess does not reproduce it", name)
	var generated []string
	for _, pw := range res.OfType(passwordType) {
		generated = append(generated, pw.Name)
	}
	assert.Contains(t, generated, "secrets-naming-key", "the key is a generated secret of the stack, never configured")
}

func TestTheSwarmOverlayIsEncryptedUnlessTheStackSaysNot(t *testing.T) {
	options := func(sc StackConfig) []resource.PropertyValue {
		nets := mustRun(t, sc).OfType(networkType)
		require.Len(t, nets, len(networkNames))
		var out []resource.PropertyValue
		for _, n := range nets {
			out = append(out, n.Inputs["options"])
		}
		return out
	}
	t.Run("encrypted, each on a VXLAN id of its own so that Docker's read-back changes nothing", func(t *testing.T) {
		ids := map[string]bool{}
		for _, o := range options(onSwarm(t, "prod")) {
			opts := o.ObjectValue()
			assert.Equal(t, "", opts["encrypted"].StringValue())
			id := opts["com.docker.network.driver.overlay.vxlanid_list"].StringValue()
			assert.NotEmpty(t, id)
			ids[id] = true
		}
		assert.Len(t, ids, len(networkNames), "no two networks share a VXLAN id")
	})
	t.Run("plain with swarmOverlayEncrypted false", func(t *testing.T) {
		for _, o := range options(onSwarm(t, "prod").with("swarmOverlayEncrypted", false)) {
			assert.True(t, o.IsNull())
		}
	})
	t.Run("a live plain overlay is never replaced by an up", func(t *testing.T) {
		plain := stacks.WithEngineNetwork(func(_, name string) (stacks.NetworkState, bool, error) {
			return stacks.NetworkState{Driver: "overlay", Options: map[string]string{"com.docker.network.driver.overlay.vxlanid_list": "4097"}}, name == dataNetwork, nil
		})
		res, err := run(t, onSwarm(t, "prod"), plain)
		require.ErrorContains(t, err, "maricusco:swarmOverlayEncrypted is true, but the overlay network maricusco-data is not encrypted")
		assert.Empty(t, res.Resources, "refused before anything is registered")
		_, err = run(t, onSwarm(t, "prod").with("swarmOverlayEncrypted", false), plain)
		assert.NoError(t, err, "kept as it is")
	})
}

func TestASwarmSecretFileIsItsReadersAlone(t *testing.T) {
	res := mustRun(t, onSwarm(t, "prod"))
	// The uid each service's secrets are read as: the app's and the backup's users, Grafana's
	// image user, and root for the entrypoints that start as root and hand a copy to the user
	// they drop to (postgres, redis).
	for service, reader := range map[string]string{"app": components.AppUser, "backup": "0", "grafana": components.GrafanaUID, "postgres": "0", "redis": "0"} {
		t.Run(service, func(t *testing.T) {
			spec := obj(res.Service(t, container(service)).Inputs["taskSpec"], "containerSpec")
			refs := arr(obj(spec, "secrets"))
			require.NotEmpty(t, refs)
			for _, ref := range refs {
				file := str(obj(ref, "fileName"))
				assert.Equal(t, 0o400, int(obj(ref, "fileMode").NumberValue()), "%s: read by its owner alone", file)
				assert.Equal(t, reader, str(obj(ref, "fileUid")), "%s: owned by the user that reads it", file)
			}
		})
	}
}
