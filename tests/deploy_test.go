package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/internal/worktree"
)

// combinedOutput runs cmd and returns its output and exit status; failing to start it fails t.
func combinedOutput(t *testing.T, cmd *exec.Cmd) (string, int) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok {
		return string(out), exit.ExitCode()
	}
	require.NoError(t, err)
	return string(out), 0
}

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
	out, code := combinedOutput(t, cmd)
	_, statErr := os.Stat(called)
	return out, code, statErr == nil
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

// fakePulumi is a pulumi CLI that records each call in calls, answers deploy.sh's and
// its recover step's questions (the stack is protected), and prints preview as a preview's output
// with exit status previewExit.
func fakePulumi(t *testing.T, preview string, previewExit int) (cli, calls string) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "preview.json"), []byte(preview), 0o644))
	calls = filepath.Join(dir, "calls")
	script := fmt.Sprintf(`#!/bin/sh
echo "$*" >>%q
case "$1 $2 $3" in
  "config get protect") echo true ;;
  "stack export "*) echo '{"version":3,"deployment":{}}' ;;
  preview*) cat %q; exit %d ;;
esac
exit 0
`, calls, filepath.Join(dir, "preview.json"), previewExit)
	cli = filepath.Join(dir, "pulumi")
	require.NoError(t, os.WriteFile(cli, []byte(script), 0o755))
	return cli, calls
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
			cli, _ := fakePulumi(t, tc.preview, tc.exit)
			cmd.Env = append(os.Environ(), "PULUMI_CONFIG_PASSPHRASE=x", "PULUMI="+cli, "PULUMI_BACKEND_URL=file://"+t.TempDir(), "CI=")
			out, code := combinedOutput(t, cmd)
			assert.Equal(t, tc.want, code, "%s", out)
			assert.Contains(t, out, tc.says)
			if tc.want == 1 {
				written, err := os.ReadFile(report)
				require.NoError(t, err)
				assert.Contains(t, string(written), tc.says)
			}
		})
	}
}

// deployRecorded runs deploy.sh with args on fakePulumi, with an empty preview; it returns the
// output, exit status and the calls pulumi received.
func deployRecorded(t *testing.T, args ...string) (string, int, []string) {
	t.Helper()
	cli, log := fakePulumi(t, "", 0)
	cmd := exec.Command("./deploy.sh", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "PULUMI_CONFIG_PASSPHRASE=x", "PULUMI="+cli, "PULUMI_BACKEND_URL=file://"+t.TempDir(), "CI=")
	out, code := combinedOutput(t, cmd)
	calls, _ := os.ReadFile(log)
	return out, code, strings.Split(strings.TrimSpace(string(calls)), "\n")
}

// ran tells whether pulumi was called for action (destroy), and with sub (set) when given.
func ran(calls []string, action string, sub ...string) bool {
	for _, c := range calls {
		words := strings.Fields(c)
		if len(words) > 0 && words[0] == action && (len(sub) == 0 || slices.Contains(words, sub[0])) {
			return true
		}
	}
	return false
}

func TestAProtectedStackIsNeverDestroyedWithoutItsPreview(t *testing.T) {
	for _, flags := range [][]string{{"--skip-preview"}, {"-f", "--yes"}, {"--yes", "-f"}, {"-yf"}, {"-fy"}, {"--skip-preview=true"}, {"--skip-preview=1"}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			out, code, calls := deployRecorded(t, append([]string{"prod", "destroy"}, flags...)...)
			assert.Equal(t, 2, code, out)
			assert.Contains(t, out, "the prod stack is protected")
			assert.False(t, ran(calls, "destroy"), "pulumi destroy must not run: %v", calls)
		})
	}
	t.Run("with its preview, the destroy goes to pulumi", func(t *testing.T) {
		for _, flags := range [][]string{nil, {"--skip-preview=false"}, {"--yes"}} {
			out, code, calls := deployRecorded(t, append([]string{"prod", "destroy"}, flags...)...)
			assert.Zero(t, code, out)
			assert.True(t, ran(calls, "destroy"), "%v: %v", flags, calls)
		}
	})
}

func TestDeployShActsOnlyOnTheStackItChose(t *testing.T) {
	for _, args := range [][]string{
		{"dev", "destroy", "--skip-preview", "--stack", "prod"},
		{"dev", "destroy", "--stack=prod"},
		{"dev", "up", "-s", "prod"},
		{"dev", "up", "-ys", "prod"},
		{"dev", "preview", "--cwd", "/elsewhere"},
		{"dev", "preview", "-C", "/elsewhere"},
		{"dev", "config", "set", "appReplicas", "3", "--stack", "prod"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, code, calls := deployRecorded(t, args...)
			assert.Equal(t, 2, code, out)
			assert.Contains(t, out, "deploy.sh acts on the dev stack")
			assert.Equal(t, []string{""}, calls, "pulumi must not run")
		})
	}
}

func TestASecretSetWithoutSecretIsRefusedBeforeAnythingIsWritten(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		refused bool
	}{
		{[]string{"config", "set", "postgresPassword", "x"}, true},
		{[]string{"config", "set", "maricusco:redisPassword", "x"}, true},
		{[]string{"config", "set", "--plaintext", "grafanaAdminPassword", "x"}, true},
		{[]string{"config", "set", "--path", "appSecretEnv.API_TOKEN", "x"}, true},
		{[]string{"config", "set-all", "--plaintext", "postgresBackupPassword=x"}, true},
		{[]string{"config", "set", "--secret", "postgresPassword", "x"}, false},
		{[]string{"config", "set", "--path", "--secret", "appSecretEnv.API_TOKEN", "x"}, false},
		{[]string{"config", "set", "appReplicas", "3"}, false},
		{[]string{"config", "set", "--path", "appEnv.LOG_LEVEL", "debug"}, false},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, code, calls := deployRecorded(t, append([]string{"dev"}, tc.args...)...)
			wrote := ran(calls, "config", "set") || ran(calls, "config", "set-all")
			if tc.refused {
				assert.Equal(t, 2, code, out)
				assert.Contains(t, out, "is a secret: set it with --secret")
				assert.False(t, wrote, "pulumi must not write it: %v", calls)
				return
			}
			assert.Zero(t, code, out)
			assert.True(t, wrote, "%v", calls)
		})
	}
}

func TestPreviewAndUpReadTheEngineFirstOnOneEngine(t *testing.T) {
	// A container removed by hand is only seen, and so recreated, when up refreshes first.
	for _, action := range []string{"preview", "up"} {
		out, code, calls := deployRecorded(t, "dev", action)
		require.Zero(t, code, out)
		require.True(t, ran(calls, action), "%v", calls)
		for _, c := range calls {
			if strings.HasPrefix(c, action+" ") {
				assert.Contains(t, strings.Fields(c), "--refresh", c)
			}
		}
	}
}

// TestAFreshCopyStartsFromTheProgramLinkedLastAndRelinksWhenItsSourcesDiffer runs deploy.sh's
// build (a plain config set builds the program to learn the secret keys) in fresh copies of the
// project that share one user cache. A link of the same sources gives the same bytes, so the
// cached binary carries a mark past its end, which a relink would not keep.
func TestAFreshCopyStartsFromTheProgramLinkedLastAndRelinksWhenItsSourcesDiffer(t *testing.T) {
	goCache, err := exec.Command("go", "env", "GOCACHE").Output()
	require.NoError(t, err)
	cache := t.TempDir()
	cached := filepath.Join(cache, "maricusco", "infra")
	build := func(dir string) []byte {
		t.Helper()
		cli, _ := fakePulumi(t, "", 0)
		cmd := exec.Command("./deploy.sh", "dev", "config", "set", "appReplicas", "3")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache, "GOCACHE="+strings.TrimSpace(string(goCache)),
			"PULUMI_CONFIG_PASSPHRASE=x", "PULUMI="+cli, "CI=")
		out, code := combinedOutput(t, cmd)
		require.Zero(t, code, out)
		linked, err := os.ReadFile(filepath.Join(dir, "bin", "infra"))
		require.NoError(t, err)
		return linked
	}
	first := build(projectCopy(t))
	kept, err := os.ReadFile(cached)
	require.NoError(t, err, "the binary linked is kept in the user's cache")
	require.True(t, bytes.Equal(first, kept), "the cache holds the binary linked last")
	mark := []byte("\nkept by the cache\n")
	require.NoError(t, os.WriteFile(cached, append(kept, mark...), 0o755))

	t.Run("the same sources are not linked again", func(t *testing.T) {
		assert.True(t, bytes.HasSuffix(build(projectCopy(t)), mark), "go build takes the cached binary as up to date")
	})
	t.Run("other sources are linked, and kept in its place", func(t *testing.T) {
		changed := projectCopy(t)
		require.NoError(t, os.WriteFile(filepath.Join(changed, "zz_changed.go"), []byte("package main\n\nvar changed = 1\n"), 0o644))
		relinked := build(changed)
		assert.False(t, bytes.HasSuffix(relinked, mark), "a binary of other sources is never taken from the cache")
		now, err := os.ReadFile(cached)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(now, relinked), "the cache holds the binary linked last")
	})
}

// projectCopy is a fresh copy of the project's tracked and new files, without what a deploy built.
func projectCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, worktree.Copy(repoRoot, dir))
	return dir
}
