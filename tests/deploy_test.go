package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deployInCI runs deploy.sh as a CI job would (CI=true), with env on top of a clean environment
// and a fake pulumi CLI that records that it was called.
func deployInCI(t *testing.T, env ...string) (string, int, bool) {
	t.Helper()
	dir := t.TempDir()
	called := filepath.Join(dir, "called")
	fake := filepath.Join(dir, "pulumi")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\ntouch "+called+"\n"), 0o755))
	cmd := exec.Command("./deploy.sh", "dev", "config")
	cmd.Dir = repoRoot
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "CI=true", "PULUMI_CONFIG_PASSPHRASE=x", "PULUMI=" + fake}, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	_, statErr := os.Stat(called)
	return string(out), code, statErr == nil
}

func TestInCIAnEmptyBackendOrDockerHostFailsBeforePulumiRuns(t *testing.T) {
	for _, tc := range []struct {
		rule    string
		env     []string
		missing []string
	}{
		{"neither is named", nil, []string{"PULUMI_BACKEND_URL is empty", "DOCKER_HOST is empty"}},
		{"no backend", []string{"DOCKER_HOST=ssh://deploy@dev-host"}, []string{"PULUMI_BACKEND_URL is empty"}},
		{"no Docker host", []string{"PULUMI_BACKEND_URL=s3://state"}, []string{"DOCKER_HOST is empty"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			out, code, called := deployInCI(t, tc.env...)
			assert.Equal(t, 2, code, out)
			assert.False(t, called, "pulumi must not run")
			for _, m := range tc.missing {
				assert.Contains(t, out, m)
			}
			assert.Equal(t, len(tc.missing), strings.Count(out, "\n"), "one line per missing value:\n%s", out)
		})
	}
	t.Run("both named, the job goes on", func(t *testing.T) {
		out, code, called := deployInCI(t, "PULUMI_BACKEND_URL=s3://state", "DOCKER_HOST=ssh://deploy@dev-host")
		assert.Zero(t, code, out)
		assert.True(t, called)
	})
}

// fakePulumi is a pulumi CLI that answers deploy.sh's and cmd/recover's calls, and prints preview
// as a preview's output with exit status previewExit.
func fakePulumi(t *testing.T, preview string, previewExit int) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "preview.json"), []byte(preview), 0o644))
	script := fmt.Sprintf(`#!/bin/sh
case "$1 $2" in
  "stack select") exit 0 ;;
  "stack export") echo '{"version":3,"deployment":{}}'; exit 0 ;;
esac
[ "$1" = preview ] || exit 64
cat %q
exit %d
`, filepath.Join(dir, "preview.json"), previewExit)
	path := filepath.Join(dir, "pulumi")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	return path
}

func TestTheDriftCheckTellsDriftFromFailure(t *testing.T) {
	atRest := `{"steps":[{"op":"same","urn":"urn:pulumi:dev::maricusco::docker:index/container:Container::redis-container"},{"op":"refresh","urn":"urn:pulumi:dev::maricusco::docker:index/container:Container::app-front"}]}`
	drifted := `{"steps":[{"op":"same","urn":"urn:pulumi:dev::maricusco::docker:index/container:Container::redis-container"},{"op":"create","urn":"urn:pulumi:dev::maricusco::maricusco:components:Grafana$docker:index/container:Container::grafana-container"}]}`
	for _, tc := range []struct {
		rule    string
		preview string
		exit    int
		want    int
		says    string
	}{
		{"a stack at rest is no drift", atRest, 0, 0, "no drift in dev"},
		{"a change is drift, named", drifted, 0, 1, "create grafana-container"},
		{"a preview that fails is no drift", `{"diagnostics":[]}`, 255, 2, "this is no drift"},
		{"output that is no preview is no drift", "Permission denied (publickey)", 0, 2, "no JSON document with its steps"},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			report := filepath.Join(t.TempDir(), "report")
			cmd := exec.Command("scripts/drift.sh", "dev", report)
			cmd.Dir = repoRoot
			cmd.Env = append(os.Environ(), "PULUMI_CONFIG_PASSPHRASE=x", "PULUMI="+fakePulumi(t, tc.preview, tc.exit),
				"PULUMI_BACKEND_URL=file://"+t.TempDir(), "CI=")
			out, err := cmd.CombinedOutput()
			code := 0
			if exit, ok := err.(*exec.ExitError); ok {
				code = exit.ExitCode()
			}
			assert.Equal(t, tc.want, code, "%s", out)
			assert.Contains(t, string(out), tc.says)
			if tc.want == 1 {
				written, err := os.ReadFile(report)
				require.NoError(t, err)
				assert.Contains(t, string(written), tc.says)
			}
		})
	}
}
