package tests

import (
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
