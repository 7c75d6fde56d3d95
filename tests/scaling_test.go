package tests

import (
	"fmt"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const nginxConfig = "/run/maricusco/nginx.conf"

// nginxTest runs `nginx -t` on the lb container's config, with the files it reads.
func nginxTest(t *testing.T, lb Resource, config string) {
	t.Helper()
	dir := t.TempDir()
	path := writeLocally(t, lb, config, dir)
	out, err := exec.Command(tool(t, "nginx", "nginx"), "-t", "-p", dir, "-c", path).CombinedOutput()
	require.NoError(t, err, "nginx -t:\n%s\n%s", out, config)
	assert.Contains(t, string(out), "test is successful")
}

func TestNginxAcceptsTheLoadBalancerConfig(t *testing.T) {
	base := loadStack(t, "prod")
	configs := map[int]string{}
	for _, n := range []int{1, 3, 10} {
		t.Run(fmt.Sprintf("%d instances", n), func(t *testing.T) {
			res := mustRun(t, base.with("appReplicas", fmt.Sprint(n)))
			assert.Len(t, res.AppInstances(), n)
			lb, hasLB := res.Containers()[container("lb")]
			require.True(t, hasLB, "nginx stands in front of one instance as of several")
			files, _ := uploads(lb)
			require.Contains(t, files, nginxConfig)
			assert.Contains(t, strs(lb.Inputs["command"]), nginxConfig)
			nginxTest(t, lb, files[nginxConfig])
			configs[n] = files[nginxConfig]
			for _, app := range res.AppInstances() {
				assert.False(t, app.Inputs.HasValue("ports"), "instances behind the load balancer publish nothing")
			}
		})
	}
	assert.Equal(t, configs[1], configs[3], "the config names the shared alias, so scaling never reloads nginx")
	assert.Equal(t, configs[3], configs[10], "the config names the shared alias, so scaling never reloads nginx")
}

func TestAnImageRollKeepsTheLoadBalancer(t *testing.T) {
	base := loadStack(t, "prod")
	before := mustRun(t, base)
	after := mustRun(t, base.with("appImage", "maricusco:1.1.0"))
	names := func(r *Result) map[string]string {
		out := map[string]string{}
		for _, c := range r.AppInstances() {
			out[c.Name] = c.Inputs["name"].StringValue()
		}
		return out
	}
	assert.Equal(t, names(before), names(after), "an instance keeps its name: the old container is gone before the new one is created, so no name can collide")
	instances := after.AppInstances()
	for i, c := range instances {
		assert.True(t, c.DeleteBeforeReplace, c.Name)
		if i > 0 {
			assert.Contains(t, containerDeps(c), instances[i-1].Name, "%s goes only once the one before it is healthy", c.Name)
		}
		aliases := strs(c.Inputs["networksAdvanced"].ArrayValue()[0].ObjectValue()["aliases"])
		assert.Contains(t, aliases, "app", "the load balancer finds every instance by the shared alias")
	}
	lbBefore, lbAfter := before.Container(t, container("lb")), after.Container(t, container("lb"))
	assert.True(t, lbBefore.Inputs.DeepEquals(lbAfter.Inputs), "the load balancer keeps serving through the roll")
}

func TestPlanDiffTouchesOnlyWhatAChangeDependsOn(t *testing.T) {
	base := loadStack(t, "prod")
	before := mustRun(t, base)
	appContainers := func(n int) []string {
		var out []string
		for i := 1; i <= n; i++ {
			out = append(out, fmt.Sprintf("%s::app-%d", containerType, i))
		}
		return out
	}
	cases := []struct {
		name string
		to   StackConfig
		want Plan
	}{
		{"the same config twice changes nothing", base, Plan{}},
		{"replicas 2 to 3 adds exactly one app container", base.with("appReplicas", "3"),
			Plan{Added: appContainers(3)[2:]}},
		{"replicas 2 to 1 removes exactly one app container, nginx kept", base.with("appReplicas", "1"),
			Plan{Removed: appContainers(2)[1:]}},
		{"a new app image tag changes only the app", base.with("appImage", "maricusco:1.1.0"),
			Plan{Changed: append(appContainers(2), imageType+"::app-image")}},
		{"one service's limit changes only its container", base.with("resources", map[string]any{"redis": map[string]any{"limits": map[string]string{"cpus": "1.5"}}}),
			Plan{Changed: []string{containerType + "::redis-container"}}},
		{"a grafana port changes only grafana", base.with("ports", map[string]string{"grafana": "127.0.0.1:3000"}),
			Plan{Changed: []string{containerType + "::grafana-container"}}},
	}
	one := mustRun(t, base.with("appReplicas", "1"))
	t.Run("replicas 1 to 3 adds two app containers and leaves nginx, which holds the port", func(t *testing.T) {
		plan := planDiff(one, mustRun(t, base.with("appReplicas", "3")))
		assert.ElementsMatch(t, appContainers(3)[1:], plan.Added)
		assert.Empty(t, plan.Removed)
		assert.Empty(t, plan.Changed)
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planDiff(before, mustRun(t, tc.to))
			assert.ElementsMatch(t, tc.want.Added, plan.Added, "added")
			assert.ElementsMatch(t, tc.want.Removed, plan.Removed, "removed")
			assert.ElementsMatch(t, tc.want.Changed, plan.Changed, "changed")
		})
	}
}

func TestURNsStayStableWhenConfigChanges(t *testing.T) {
	base := loadStack(t, "prod")
	urns := func(r *Result) []string {
		var out []string
		for _, res := range r.Resources {
			out = append(out, res.key())
		}
		return out
	}
	want := urns(mustRun(t, base))
	for name, sc := range map[string]StackConfig{
		"images":    base.with("appImage", "maricusco:2.0.0").with("postgresImage", "timescale/timescaledb:2.18.0-pg16"),
		"limits":    base.with("resources", map[string]any{"app": map[string]any{"limits": map[string]string{"memory": "8G"}}}),
		"ports":     edgeWith(t, base, map[string]any{"https": "0.0.0.0:8443"}),
		"secrets":   base.withSecret("postgresPassword", "a-new-Password-123"),
		"docker":    base.with("dockerHost", "ssh://deploy@docker.example"),
		"healthchk": base.with("healthcheckInterval", "10s"),
	} {
		t.Run(name, func(t *testing.T) {
			got := urns(mustRun(t, sc))
			if name == "secrets" {
				// A configured password replaces its generator; nothing else moves.
				assert.Subset(t, want, got)
				assert.Len(t, got, len(want)-1)
				return
			}
			assert.ElementsMatch(t, want, got)
		})
	}
}

func TestProdProtectsStatefulResources(t *testing.T) {
	prod := loadStack(t, "prod")
	for _, tc := range []struct {
		name    string
		stack   StackConfig
		protect bool
	}{
		{"prod as shipped", prod, true},
		{"protect lifted for a deliberate teardown", prod.with("protect", "false"), false},
		{"dev", loadStack(t, "dev"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := mustRun(t, tc.stack)
			vols := res.OfType(volumeType)
			require.Len(t, vols, 6, "five data volumes and the backups")
			for _, v := range vols {
				assert.Equal(t, tc.protect, v.Protect, v.Name)
				assert.True(t, v.RetainOnDelete, "%s survives a destroy either way", v.Name)
			}
			for _, c := range res.Containers() {
				assert.False(t, c.Protect, "containers hold no state and can always be replaced")
			}
		})
	}
}

// BenchmarkProgram runs the whole program through the mocks with 1, 10 and 100 app instances.
// Measured on the 2-core build machine (go test ./tests -run x -bench Program -benchmem):
//
//	replicas=1      6.3 ms/op    34 resources    1.9 MB/op
//	replicas=10    10.5 ms/op    45 resources    3.4 MB/op
//	replicas=100   62.8 ms/op   135 resources   17.1 MB/op
//
// Each added instance costs about the same (0.5 to 0.6 ms, 0.15 MB): growth is linear. Each
// instance waits for the one before it to register, which is what makes a roll one at a time.
func BenchmarkProgram(b *testing.B) {
	base := loadStack(b, "prod")
	for _, n := range []int{1, 10, 100} {
		sc := base.with("appReplicas", fmt.Sprint(n))
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			var resources int
			for b.Loop() {
				resources = len(mustRun(b, sc).Resources)
			}
			b.ReportMetric(float64(resources), "resources")
		})
	}
}
