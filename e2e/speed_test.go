package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/components"
)

// TestAsFastAsCompose measures a deploy from nothing to all healthy against its peer, Compose v2
// running the seed's services and healthchecks with the program's start interval
// (testdata/compose-peer), one after the other on
// the same engine, for dev and for prod's shape, on both engines. It reports the times and their
// ratio; it asserts only that both reach healthy, since a time is a figure, not a rule.
func TestAsFastAsCompose(t *testing.T) {
	requireRealEngine(t)
	// Among the lanes' other tests: a sequential test holds back every parallel one, so the
	// Docker 26 lane would wait for the machine's engine's longer speed run.
	t.Parallel()
	composeBin := composeV2(t)
	for _, lane := range []struct {
		name   string
		engine func(*testing.T) engine
		shift  int
	}{
		{"the machine's engine", hostEngine, 0},
		{"Docker 26", modernEngine, 10000}, // beside the lane of the machine's engine
	} {
		t.Run(lane.name, func(t *testing.T) {
			e := lane.engine(t)
			buildImages(t, e)
			for _, stack := range []string{"dev", "prod"} {
				t.Run(stack, func(t *testing.T) {
					peer := composePeerUp(t, e, composeBin, stack)
					var ours time.Duration
					var profile string
					t.Run("ours", func(t *testing.T) {
						p := forStack(t, e, stack)
						if lane.shift != 0 {
							p.shiftPorts(t, stack, lane.shift)
						}
						start := time.Now()
						out := p.must(t, stack, "up", "--yes", "--skip-preview")
						ours = time.Since(start).Round(100 * time.Millisecond)
						profile = createdIn(out)
						// The figure is to all healthy: every container is when `up` returns.
						p.waitHealthy(t, p.containers(t, stack), 0)
					})
					figure(t, e.name, stack+" from nothing to all healthy: Compose v2 peer (s)", peer.Seconds())
					figure(t, e.name, stack+" from nothing to all healthy: ours, `./deploy.sh "+stack+" up` (s)", ours.Seconds())
					if ours > 0 {
						figure(t, e.name, stack+" from nothing to all healthy: ours / Compose v2", fmt.Sprintf("%.2f", ours.Seconds()/peer.Seconds()))
						figure(t, e.name, stack+" from nothing: each container from create to healthy, as `up` reports it (s)", profile)
					}
				})
			}
		})
	}
}

var startIntervalLine = regexp.MustCompile(`(?m)^\s*start_interval:.*\n`)

var containerCreated = regexp.MustCompile(`docker:index:Container\s+(\S+)\s+created\s+\((\d+)s\)`)

// createdIn lists each container `up` created with the seconds it reports for it, from the
// creation to the health the provider waits for.
func createdIn(out string) string {
	var each []string
	for _, m := range containerCreated.FindAllStringSubmatch(out, -1) {
		each = append(each, m[1]+" "+m[2])
	}
	return strings.Join(each, ", ")
}

// composeV2 is the path of Compose v2, which docker-modern.sh installs from Debian 13's package.
func composeV2(t *testing.T) string {
	t.Helper()
	out, err := runModernScript("compose")
	require.NoError(t, err, "REAL-ENGINE SUITE CANNOT RUN: Compose v2 did not install: %s", tail(string(out), 5))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// composePeerUp runs the peer of stack on e until every service is healthy, returns how long that
// took, and removes it with its volumes.
func composePeerUp(t *testing.T, e engine, bin, stack string) time.Duration {
	t.Helper()
	// Compose refuses a start interval that the engine cannot take (before API 1.44).
	api := e.mustDocker(t, "version", "--format", "{{.Server.APIVersion}}")
	dir := t.TempDir()
	for _, name := range []string{"docker-compose.yml", "prod.yml", "nginx.conf"} {
		b, err := os.ReadFile(filepath.Join("testdata", "compose-peer", name))
		require.NoError(t, err)
		if !components.SupportsStartInterval(api) {
			b = startIntervalLine.ReplaceAll(b, nil)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	files := []string{"-f", filepath.Join(dir, "docker-compose.yml")}
	if stack == "prod" {
		files = append(files, "-f", filepath.Join(dir, "prod.yml"))
	}
	refs := imageRefs(t)
	compose := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append(append([]string{"-p", "maricusco-peer"}, files...), args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host, "START_INTERVAL="+programDefault(t, "healthcheckStartInterval"),
			"APP_IMAGE="+refs["app"][0], "POSTGRES_IMAGE="+refs["postgres"][0], "REDIS_IMAGE="+refs["redis"][0],
			"CHROMADB_IMAGE="+refs["chromadb"][0], "PROMETHEUS_IMAGE="+refs["prometheus"][0],
			"GRAFANA_IMAGE="+refs["grafana"][0], "NGINX_IMAGE="+refs["nginx"][0])
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = compose("down", "--volumes", "--timeout", "5") })
	start := time.Now()
	out, err := compose("up", "--detach", "--wait", "--wait-timeout", "300")
	took := time.Since(start).Round(100 * time.Millisecond)
	require.NoError(t, err, "the Compose peer reaches healthy:\n%s", tail(out, 20))
	_, err = compose("down", "--volumes", "--timeout", "5")
	require.NoError(t, err)
	return took
}
