package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/stacks"
)

// imageCapabilities are the Linux capabilities each image needs, named as Docker stores them
// (and the provider reads them back); every other one is dropped.
var imageCapabilities = map[string][]string{
	container("app"):        nil,
	container("postgres"):   {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID"},
	container("redis"):      {"CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"},
	container("chromadb"):   nil,
	container("prometheus"): nil,
	container("grafana"):    nil,
	// nginx's master chowns its temp paths to the worker user at start.
	container("lb"):     {"CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"},
	container("backup"): nil,
}

// readmeExceptions reads docs/hardening.md's table of hardening exceptions: container -> rules not met.
func readmeExceptions(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "docs", "hardening.md"))
	require.NoError(t, err)
	text := string(raw)
	start := strings.Index(text, "<!-- hardening-exceptions -->")
	require.GreaterOrEqual(t, start, 0, "docs/hardening.md has the hardening exceptions table")
	// A row may wrap onto the next lines; the table ends at the first blank line after it.
	var rows []string
lines:
	for _, line := range strings.Split(text[start:], "\n")[1:] {
		switch {
		case strings.HasPrefix(line, "|"):
			rows = append(rows, line)
		case strings.TrimSpace(line) == "" && len(rows) > 0:
			break lines
		case len(rows) > 0:
			rows[len(rows)-1] += " " + line
		}
	}
	out := map[string][]string{}
	for _, line := range rows {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "maricusco-") {
			continue
		}
		for _, c := range strings.Split(cells[1], ",") {
			name := strings.Trim(strings.TrimSpace(c), "`")
			out[name] = append(out[name], strings.TrimSpace(cells[2]))
			assert.NotEmpty(t, strings.TrimSpace(cells[3]), "%s's exception has a reason", name)
		}
	}
	return out
}

// imageStartsAsRoot are the containers whose image's own user is root (the program sets no
// user for them): their entrypoints drop to a user of their own, or they stay root.
var imageStartsAsRoot = map[string]bool{
	container("postgres"): true, container("redis"): true, container("lb"): true, container("chromadb"): true,
}

func TestEveryContainerMeetsTheCISRules(t *testing.T) {
	exceptions := readmeExceptions(t)
	forEachStack(t, func(t *testing.T, _ string, res *Result) {
		images := map[string]string{}
		for _, img := range res.OfType(imageType) {
			images[imageID(img.Inputs["name"].StringValue())] = img.Inputs["name"].StringValue()
		}
		for name, c := range res.Containers() {
			kind := name
			if strings.HasPrefix(name, "maricusco-app-") {
				kind = container("app")
			}
			in := c.Inputs
			t.Run(name, func(t *testing.T) {
				assert.False(t, in["privileged"].BoolValue(), "not privileged")
				for _, ns := range []string{"networkMode", "pidMode", "usernsMode", "cgroupnsMode"} {
					assert.False(t, in.HasValue(resource.PropertyKey(ns)), "no %s: no host namespace", ns)
				}
				assert.Equal(t, "private", in["ipcMode"].StringValue(), "own IPC namespace")
				assert.False(t, in.HasValue("mounts"), "no bind mounts")
				if in.HasValue("volumes") {
					for _, v := range in["volumes"].ArrayValue() {
						o := v.ObjectValue()
						assert.False(t, o.HasValue("hostPath"), "no host path is mounted")
						assert.True(t, o.HasValue("volumeName"), "only named volumes")
					}
				}
				serialized, err := json.Marshal(in.Mappable())
				require.NoError(t, err)
				assert.NotContains(t, string(serialized), "docker.sock", "the Docker socket is never mounted")
				assert.Contains(t, strs(in["securityOpts"]), "no-new-privileges:true")
				if in.HasValue("uploads") {
					for _, u := range in["uploads"].ArrayValue() {
						o := u.ObjectValue()
						mode, err := strconv.ParseUint(str(o["permissions"]), 8, 32)
						require.NoError(t, err, "%s: an octal mode", str(o["file"]))
						assert.Zero(t, mode&0o222, "%s is %o: no process of the container may rewrite its config or secrets", str(o["file"]), mode)
					}
				}
				caps := in["capabilities"].ObjectValue()
				assert.Equal(t, []string{"ALL"}, strs(caps["drops"]), "every capability dropped")
				assert.ElementsMatch(t, imageCapabilities[kind], strs(caps["adds"]), "only what the image needs is added back")
				if !in["readOnly"].BoolValue() {
					assert.Contains(t, exceptions[kind], "read-only root filesystem", "a writable root filesystem is a documented exception")
				}
				user := ""
				if in.HasValue("user") {
					user = str(in["user"])
				}
				if user == "0" || user == "root" || user == "" && imageStartsAsRoot[kind] {
					assert.True(t, slices.ContainsFunc(exceptions[kind], func(rule string) bool { return strings.Contains(rule, "non-root user") }),
						"%s runs as root (user %q): a documented exception", kind, user)
				}
				assert.Positive(t, in["memory"].NumberValue(), "memory limit")
				assert.NotEmpty(t, in["cpus"].StringValue(), "CPU limit")
				assert.Positive(t, in["cpuShares"].NumberValue(), "CPU weight")
				assert.NotEmpty(t, strs(in["healthcheck"].ObjectValue()["tests"]), "healthcheck")
				assert.Contains(t, []string{"unless-stopped", "always", "on-failure"}, in["restart"].StringValue(), "restart policy")
				if in.HasValue("ports") {
					for _, p := range in["ports"].ArrayValue() {
						assert.NotEmpty(t, str(p.ObjectValue()["ip"]), "published on a configured host address")
					}
				}
				named, err := reference.ParseNormalizedNamed(images[in["image"].StringValue()])
				require.NoError(t, err)
				tagged, ok := named.(reference.Tagged)
				assert.True(t, ok && tagged.Tag() != "latest", "image pinned: %s", named)
				nets := keys(joined(t, c))
				require.NotEmpty(t, nets, "a network")
				assert.Subset(t, networkNames, nets, "the platform's user-defined networks, not the default bridge")
				assert.Equal(t, "json-file", in["logDriver"].StringValue())
				opts := in["logOpts"].ObjectValue()
				assert.Equal(t, "10m", str(opts["max-size"]), "log rotation")
				assert.Equal(t, "3", str(opts["max-file"]), "log rotation")
			})
		}
	})
}

func TestGuardrailsRefuseProdWarnDevYieldToWaivers(t *testing.T) {
	prod, dev := loadStack(t, "prod"), loadStack(t, "dev")
	cases := []struct {
		name     string
		stack    StackConfig
		refused  string
		warnings []string
	}{
		{"latest in prod is refused", prod.with("appImage", "maricusco:latest"),
			"guardrail pinned-images", nil},
		{"latest in prod with the rule waived deploys, with a warning", prod.with("appImage", "maricusco:latest").with("waivers", []string{"pinned-images"}),
			"", []string{"maricusco:appImage", "guardrail pinned-images is waived"}},
		{"latest in dev deploys, with a warning", dev.with("redisImage", "redis:latest"),
			"", []string{"maricusco:redisImage", "prod would refuse this"}},
		{"a data service published to the world in prod is refused", prod.with("ports", map[string]string{"redis": "0.0.0.0:6379"}),
			"guardrail published-ports", nil},
		{"the same with the rule waived deploys", prod.with("ports", map[string]string{"redis": "0.0.0.0:6379"}).with("waivers", []string{"published-ports"}),
			"", []string{"maricusco:ports.redis", "guardrail published-ports is waived"}},
		{"no restart policy in prod is refused", prod.with("restartPolicy", "no"),
			"guardrail restart-policy", nil},
		{"dev as shipped breaks no rule", dev, "", nil},
		{"prod as shipped breaks no rule", prod, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(t, tc.stack)
			res, runErr := run(t, tc.stack)
			if tc.refused != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.refused)
				assert.Contains(t, err.Error(), "waive the rule deliberately")
				require.Error(t, runErr)
				assert.Empty(t, res.Resources, "nothing is deployed")
				return
			}
			require.NoError(t, err)
			require.NoError(t, runErr)
			assert.NotEmpty(t, res.Resources)
			if tc.warnings == nil {
				assert.Empty(t, cfg.Warnings)
				return
			}
			require.Len(t, cfg.Warnings, 1)
			for _, w := range tc.warnings {
				assert.Contains(t, cfg.Warnings[0], w)
			}
		})
	}
}

func TestNoSecretAppearsInPlaintextInAnyInputOrOutput(t *testing.T) {
	configured := map[string]string{
		stacks.PostgresPasswordKey:     "pg-Configured-Secret-1",
		stacks.RedisPasswordKey:        "redis-Configured-Secret-2",
		stacks.GrafanaAdminPasswordKey: "grafana-Configured-Secret-3",
	}
	for _, name := range shippedStacks {
		for _, mode := range []string{"generated", "configured"} {
			t.Run(name+"/"+mode, func(t *testing.T) {
				sc := loadStack(t, name)
				secrets := []string{"generated-secrets-postgres-password", "generated-secrets-redis-password", "generated-secrets-grafana-admin-password"}
				if mode == "configured" {
					secrets = []string{"broker-Key-Secret-4"}
					for k, v := range configured {
						sc = sc.withSecret(k, v)
						secrets = append(secrets, v)
					}
					sc = sc.withSecret("appSecretEnv", map[string]string{"BROKER_API_KEY": "broker-Key-Secret-4"})
				}
				res := mustRun(t, sc)
				for _, r := range res.Resources {
					text := serializePlain(t, r.Inputs)
					for _, s := range secrets {
						assert.NotContains(t, text, s, "%s %s holds a secret in plaintext", r.Type, r.Name)
					}
				}
				for key, out := range res.Exports {
					if out.Secret {
						continue
					}
					text, err := json.Marshal(out.Value)
					require.NoError(t, err)
					for _, s := range secrets {
						assert.NotContains(t, string(text), s, "output %s", key)
					}
				}
				assert.True(t, res.Exports["postgresConnectionString"].Secret)
			})
		}
	}
}

// serializePlain is a resource's inputs as the state would show them unencrypted: every secret
// replaced by a marker.
func serializePlain(t *testing.T, m resource.PropertyMap) string {
	t.Helper()
	var mask func(v resource.PropertyValue) resource.PropertyValue
	mask = func(v resource.PropertyValue) resource.PropertyValue {
		switch {
		case v.IsSecret():
			return resource.NewProperty("[secret]")
		case v.IsArray():
			arr := make([]resource.PropertyValue, len(v.ArrayValue()))
			for i, e := range v.ArrayValue() {
				arr[i] = mask(e)
			}
			return resource.NewProperty(arr)
		case v.IsObject():
			return resource.NewProperty(maskMap(v.ObjectValue(), mask))
		}
		return v
	}
	b, err := json.Marshal(maskMap(m, mask).Mappable())
	require.NoError(t, err)
	return string(b)
}

func maskMap(m resource.PropertyMap, mask func(resource.PropertyValue) resource.PropertyValue) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		out[k] = mask(v)
	}
	return out
}
