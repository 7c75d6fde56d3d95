package engine

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/components"
)

// execDaemon is an engine whose container maricusco-redis runs each exec for runningPolls
// inspections, then exits with exitCode; it records the commands it was given.
type execDaemon struct {
	runningPolls, exitCode int
	mu                     sync.Mutex
	cmds                   [][]string
	polls                  int
}

func (d *execDaemon) serve(t *testing.T) string {
	t.Helper()
	return serveSocket(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/containers/maricusco-redis/exec":
			var body struct{ Cmd []string }
			_ = json.NewDecoder(r.Body).Decode(&body)
			d.cmds = append(d.cmds, body.Cmd)
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]string{"Id": "e1"})
		case r.Method == http.MethodPost && r.URL.Path == "/exec/e1/start":
			w.WriteHeader(http.StatusOK)
		case r.Method == http.MethodGet && r.URL.Path == "/exec/e1/json":
			d.polls++
			_ = json.NewEncoder(w).Encode(map[string]any{"Running": d.polls <= d.runningPolls, "ExitCode": d.exitCode})
		default:
			http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
		}
	}))
}

func TestAProbeRunsTheHealthcheckTestAsTheEngineDoes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		test   []string
		daemon *execDaemon
		cmd    []string
		passed bool
	}{
		{"a CMD test that exits 0 passed", []string{"CMD", "redis-cli", "ping"}, &execDaemon{runningPolls: 2}, []string{"redis-cli", "ping"}, true},
		{"a CMD-SHELL test runs under /bin/sh -c", []string{"CMD-SHELL", "redis-cli ping | grep -q PONG"}, &execDaemon{}, []string{"/bin/sh", "-c", "redis-cli ping | grep -q PONG"}, true},
		{"a test that exits 1 did not pass", []string{"CMD", "false"}, &execDaemon{exitCode: 1}, []string{"false"}, false},
		{"a test still running at its timeout did not pass", []string{"CMD", "sleep", "9"}, &execDaemon{runningPolls: 1 << 30}, []string{"sleep", "9"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.daemon.serve(t)
			passed, err := Docker{}.Probe(host, "maricusco-redis", tc.test, 300*time.Millisecond)
			require.NoError(t, err)
			assert.Equal(t, tc.passed, passed)
			assert.Equal(t, [][]string{tc.cmd}, tc.daemon.cmds)
		})
	}
}

func TestAProbeOfAContainerTheEngineDoesNotHoldIsAnError(t *testing.T) {
	host := (&execDaemon{}).serve(t)
	_, err := Docker{}.Probe(host, "maricusco-gone", []string{"CMD", "true"}, time.Second)
	assert.ErrorContains(t, err, "404")
	_, err = Docker{}.Probe(host, "maricusco-redis", []string{"NONE"}, time.Second)
	assert.ErrorContains(t, err, "runs nothing")
}

func TestAProbeThroughTheCLIIsTheTestsExitStatus(t *testing.T) {
	for _, tc := range []struct {
		exit   string
		passed bool
		err    bool
	}{{"0", true, false}, {"1", false, false}, {"125", false, true}} {
		t.Run("exit "+tc.exit, func(t *testing.T) {
			bin := t.TempDir()
			args := filepath.Join(bin, "args")
			fake := "#!/bin/sh\necho \"$@\" > " + args + "\nexit " + tc.exit + "\n"
			require.NoError(t, os.WriteFile(filepath.Join(bin, "docker"), []byte(fake), 0o755))
			t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
			passed, err := Docker{}.Probe("ssh://root@10.0.0.1", "maricusco-redis", []string{"CMD-SHELL", "redis-cli ping"}, time.Second)
			assert.Equal(t, tc.passed, passed)
			assert.Equal(t, tc.err, err != nil, "%v", err)
			b, _ := os.ReadFile(args)
			assert.Equal(t, "--host ssh://root@10.0.0.1 exec maricusco-redis /bin/sh -c redis-cli ping", strings.TrimSpace(string(b)))
		})
	}
}

func TestHealthIsTheEnginesStatusAndItsLastProbesOutput(t *testing.T) {
	host := daemon(t, map[string]any{
		"/containers/maricusco-redis/json": map[string]any{"State": map[string]any{"Health": map[string]any{
			"Status": "starting", "Log": []any{map[string]any{"Output": "old"}, map[string]any{"Output": "Could not connect\n"}}}}},
		"/containers/maricusco-plain/json": map[string]any{"State": map[string]any{}},
	})
	h, err := Docker{}.Health(host, "maricusco-redis")
	require.NoError(t, err)
	assert.Equal(t, components.Health{Status: "starting", LastOutput: "Could not connect"}, h)
	_, err = Docker{}.Health(host, "maricusco-plain")
	assert.ErrorContains(t, err, "maricusco-plain has no healthcheck")
}

func TestContainersAreTheLabelledOnesByName(t *testing.T) {
	host := daemon(t, map[string]any{"/containers/json": []any{
		map[string]any{"Id": "abc", "Names": []string{"/maricusco-redis"}},
		map[string]any{"Id": "def", "Names": []string{"/maricusco-app-1"}},
	}})
	ids, err := Docker{}.Containers(host, "maricusco.stack=dev")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"maricusco-redis": "abc", "maricusco-app-1": "def"}, ids)
}

func TestAProbeThatTheEngineDoesNotStartInTimeDidNotPass(t *testing.T) {
	host := serveSocket(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/exec/e1/start" {
			time.Sleep(time.Second) // a busy engine
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{"Id": "e1"})
	}))
	passed, err := Docker{}.Probe(host, "maricusco-postgres", []string{"CMD", "pg_isready"}, 200*time.Millisecond)
	require.NoError(t, err, "the next probe asks again")
	assert.False(t, passed)
}
