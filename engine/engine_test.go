package engine

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/components"
	"github.com/maricusco/infra/internal/fakecli"
)

// daemon serves the Docker Engine API paths given, as JSON, on a unix socket, and returns its host.
func daemon(t *testing.T, answers map[string]any) string {
	t.Helper()
	return serveSocket(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(a)
	}))
}

// serveSocket serves h on a unix socket, as an engine does, and returns its host.
func serveSocket(t *testing.T, h http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "docker") // short: a socket's path has a length limit
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "unix://" + sock
}

func TestTheAPIVersionIsAskedOverTheSocket(t *testing.T) {
	host := daemon(t, map[string]any{"/version": map[string]any{"Version": "26.1.5", "APIVersion": "1.45"}})
	v, err := Docker{}.APIVersion(host)
	require.NoError(t, err)
	assert.Equal(t, "1.45", v)
}

func TestTheMachineIsTheEnginesCPUsAndMemory(t *testing.T) {
	host := daemon(t, map[string]any{"/info": map[string]any{"NCPU": 2, "MemTotal": 25174310912}})
	m, err := Docker{}.Machine(host)
	require.NoError(t, err)
	assert.Equal(t, components.Machine{CPUs: 2e9, Memory: 25174310912}, m)
	_, err = Docker{}.Machine(daemon(t, map[string]any{"/info": map[string]any{"NCPU": 0}}))
	assert.ErrorContains(t, err, "no NCPU or MemTotal", "an engine that does not say is no machine of no size")
}

func TestAnEngineThatDoesNotAnswerIsAnError(t *testing.T) {
	_, err := Docker{}.APIVersion("unix:///nonexistent/docker.sock")
	assert.ErrorContains(t, err, "unix:///nonexistent/docker.sock")
	_, err = Docker{}.APIVersion(daemon(t, nil))
	assert.ErrorContains(t, err, "404")
}

func TestSwarmNodesAreTheReadyOnesWithTheirDataLabel(t *testing.T) {
	node := func(name, state string, labels map[string]string) map[string]any {
		return map[string]any{
			"Spec":        map[string]any{"Labels": labels},
			"Description": map[string]any{"Hostname": name, "Resources": map[string]any{"NanoCPUs": 2e9, "MemoryBytes": 4 << 30}},
			"Status":      map[string]any{"State": state},
		}
	}
	host := daemon(t, map[string]any{
		"/info": map[string]any{"Swarm": map[string]any{"LocalNodeState": "active", "ControlAvailable": true}},
		"/nodes": []any{
			node("data", "ready", map[string]string{components.DataNodeLabel: "true"}),
			node("worker", "ready", nil),
			node("gone", "down", nil),
		},
	})
	got, err := Docker{}.SwarmNodes(host)
	require.NoError(t, err)
	assert.Equal(t, []components.SwarmNode{
		{Name: "data", Data: true, CPUs: 2e9, Memory: 4 << 30},
		{Name: "worker", CPUs: 2e9, Memory: 4 << 30},
	}, got)
}

func TestAnEngineThatIsNoSwarmManagerIsRefused(t *testing.T) {
	for _, swarm := range []map[string]any{
		{"LocalNodeState": "inactive", "ControlAvailable": false},
		{"LocalNodeState": "active", "ControlAvailable": false},
	} {
		_, err := Docker{}.SwarmNodes(daemon(t, map[string]any{"/info": map[string]any{"Swarm": swarm}}))
		assert.ErrorContains(t, err, "is not a swarm manager")
	}
}

func TestFindReadsAnObjectsIDLabelsAndState(t *testing.T) {
	host := daemon(t, map[string]any{
		"/containers/maricusco-app/json": map[string]any{"Id": "c1", "State": map[string]any{"Running": true},
			"Config": map[string]any{"Labels": map[string]string{"maricusco.stack": "dev"}}},
		"/services/maricusco-redis": map[string]any{"ID": "s1", "Spec": map[string]any{"Labels": map[string]string{"maricusco.stack": "prod"}}},
	})
	for _, tc := range []struct {
		kind, name string
		want       Object
		found      bool
	}{
		{ContainerKind, "maricusco-app", Object{ID: "c1", Running: true, Labels: map[string]string{"maricusco.stack": "dev"}}, true},
		{ServiceKind, "maricusco-redis", Object{ID: "s1", Labels: map[string]string{"maricusco.stack": "prod"}}, true},
		{ContainerKind, "maricusco-grafana", Object{}, false},
	} {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			got, found, err := Docker{}.Find(host, tc.kind, tc.name)
			require.NoError(t, err)
			assert.Equal(t, tc.found, found)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFindOnAnEngineThatDoesNotAnswerIsAnError(t *testing.T) {
	_, _, err := Docker{}.Find("unix:///nonexistent/docker.sock", ContainerKind, "maricusco-app")
	assert.Error(t, err)
}

func TestANetworkIsReadWithItsDriverAndOptions(t *testing.T) {
	// As Docker 20.10 answers /networks/{name} for an encrypted overlay.
	host := daemon(t, map[string]any{"/networks/maricusco-network": map[string]any{"Id": "n1", "Driver": "overlay", "Scope": "swarm",
		"Options": map[string]string{"encrypted": "", "com.docker.network.driver.overlay.vxlanid_list": "4242"}}})
	got, found, err := Docker{}.Network(host, "maricusco-network")
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, components.NetworkState{Driver: "overlay", Options: map[string]string{"encrypted": "", "com.docker.network.driver.overlay.vxlanid_list": "4242"}}, got)
	_, found, err = Docker{}.Network(host, "other-network")
	require.NoError(t, err)
	assert.False(t, found)
}

func TestTheCLIsNotFoundIsNoObjectAndAnyOtherErrorIsOne(t *testing.T) {
	for _, tc := range []struct {
		stderr   string
		notFound bool
	}{
		{"Error: No such container: maricusco-edge\n", true},
		{"Error: no such service: maricusco-edge\n", true},
		{"Error response from daemon: network maricusco-edge not found\n", true},
		{"error during connect: Get \"http://docker.example.com/v1.45/networks/maricusco-edge\": command [ssh -o ConnectTimeout=30 -T -- root@10.0.0.1 docker system dial-stdio] has exited with exit status 255\n", false},
		{"Error response from daemon: This node is not a swarm manager.\n", false},
		{"permission denied while trying to connect to the Docker daemon socket\n", false},
		{"bash: line 1: docker: command not found\n", false},
		{"Error response from daemon: network maricusco-data not found\n", false},
	} {
		t.Run(tc.stderr, func(t *testing.T) {
			assert.Equal(t, tc.notFound, cliNotFound([]byte(tc.stderr), "maricusco-edge"))
		})
	}
}

func TestRolloutsAreReadFromTheServicesAndTheirTasks(t *testing.T) {
	host := daemon(t, map[string]any{
		"/services": []any{
			map[string]any{"ID": "s1", "Spec": map[string]any{"Name": "maricusco-app", "Mode": map[string]any{"Replicated": map[string]any{"Replicas": 2}}},
				"UpdateStatus": map[string]any{"State": "updating"}},
			map[string]any{"ID": "s2", "Spec": map[string]any{"Name": "maricusco-redis", "Mode": map[string]any{"Replicated": map[string]any{"Replicas": 1}}}},
			map[string]any{"ID": "s3", "Spec": map[string]any{"Name": "someone-elses", "Mode": map[string]any{"Replicated": map[string]any{"Replicas": 1}}}},
		},
		"/tasks": []any{
			map[string]any{"ServiceID": "s1", "Status": map[string]any{"State": "running"}},
			map[string]any{"ServiceID": "s1", "Status": map[string]any{"State": "running"}},
			map[string]any{"ServiceID": "s1", "Status": map[string]any{"State": "starting"}},
			map[string]any{"ServiceID": "s2", "Status": map[string]any{"State": "running"}},
			map[string]any{"ServiceID": "s3", "Status": map[string]any{"State": "running"}},
		},
	})
	got, err := Docker{}.Rollouts(host, []string{"maricusco-app", "maricusco-redis"})
	require.NoError(t, err)
	assert.Equal(t, map[string]Rollout{
		"maricusco-app":   {Replicas: 2, UpdateState: "updating", Running: 2, Starting: 1},
		"maricusco-redis": {Replicas: 1, Running: 1},
	}, got)
	assert.Equal(t, "2/2 running, 1 starting, update updating", got["maricusco-app"].String())
}

func TestAServiceTheEngineDoesNotHoldIsNoRollout(t *testing.T) {
	host := daemon(t, map[string]any{"/services": []any{}, "/tasks": []any{}})
	_, err := Docker{}.Rollouts(host, []string{"maricusco-app"})
	assert.ErrorIs(t, err, ErrNoService)
	assert.ErrorContains(t, err, "no service maricusco-app", "a missing service has not converged")
}

func TestAServiceTheCLIDoesNotFindIsNoRollout(t *testing.T) {
	bin := t.TempDir()
	fake := "#!/bin/sh\necho 'Error: no such service: maricusco-app' >&2\nexit 1\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "docker"), []byte(fake), 0o755))
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	_, err := Docker{}.Rollouts("ssh://root@10.0.0.1", []string{"maricusco-app"})
	assert.ErrorIs(t, err, ErrNoService)
	assert.ErrorContains(t, err, "no such service: maricusco-app")
}

func TestAServiceHasConvergedWhenItRunsItsReplicasAndNoUpdate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rollout   Rollout
		converged bool
	}{
		{"never updated, all running", Rollout{Replicas: 2, Running: 2}, true},
		{"update completed, all running", Rollout{Replicas: 2, UpdateState: "completed", Running: 2}, true},
		{"a start-first roll's extra task still runs", Rollout{Replicas: 4, UpdateState: "completed", Running: 5}, false},
		{"a task still starting", Rollout{Replicas: 2, Running: 2, Starting: 1}, false},
		{"a replica missing", Rollout{Replicas: 2, Running: 1}, false},
		{"an update under way", Rollout{Replicas: 2, UpdateState: "updating", Running: 2}, false},
		{"a rollback under way", Rollout{Replicas: 2, UpdateState: "rollback_started", Running: 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.converged, tc.rollout.Converged())
		})
	}
}

func TestTheCLIsTasksAreTheAPIsByServiceName(t *testing.T) {
	run := func(args ...string) ([]byte, error) {
		assert.Equal(t, []string{"service", "ps", "--filter", "desired-state=running", "--format", "{{.Name}} {{.CurrentState}}", "maricusco-app", "maricusco-node.exporter"}, args)
		return []byte("maricusco-app.1 Running 3 seconds ago\nmaricusco-app.2 Starting 1 second ago\nmaricusco-node.exporter.x7k2 Running 1 second ago\n"), nil
	}
	out, err := tasksOfServices([]string{"maricusco-app", "maricusco-node.exporter"})(run)
	require.NoError(t, err)
	assert.JSONEq(t, `[{"ServiceID":"maricusco-app","Status":{"State":"running"}},{"ServiceID":"maricusco-app","Status":{"State":"starting"}},
		{"ServiceID":"maricusco-node.exporter","Status":{"State":"running"}}]`, string(out))
}

func TestAQuestionPastItsTimeoutEndsWithTheCLIsChildren(t *testing.T) {
	childPID := fakecli.DockerWithAChild(t)
	defer func(was time.Duration) { timeout = was }(timeout)
	// Long enough for a busy machine's sh to start its child and write its pid first.
	timeout = 2 * time.Second

	start := time.Now()
	_, err := Docker{}.APIVersion("ssh://root@10.0.0.1")
	assert.Error(t, err)
	assert.Less(t, time.Since(start), time.Minute, "the question ends at its timeout, not when the child does (300 s)")
	pid := childPID()
	assert.Eventually(t, func() bool { return !fakecli.Alive(pid) }, 5*time.Second, 50*time.Millisecond, "the CLI's child is killed with it")
}

func TestEndQuestionsEndsTheCLIsUnderWayAndTheirChildren(t *testing.T) {
	childPID := fakecli.DockerWithAChild(t)
	t.Cleanup(func() { questions, endQuestions = context.WithCancel(context.Background()) })

	answered := make(chan error, 1)
	go func() {
		_, err := Docker{}.APIVersion("ssh://root@10.0.0.1")
		answered <- err
	}()
	pid := childPID()

	EndQuestions()
	select {
	case err := <-answered:
		assert.Error(t, err, "the question ended unanswered")
	case <-time.After(time.Minute):
		t.Fatal("the question did not end")
	}
	assert.Eventually(t, func() bool { return !fakecli.Alive(pid) }, 5*time.Second, 50*time.Millisecond, "the CLI's child is killed with it")
	_, err := Docker{}.APIVersion("ssh://root@10.0.0.1")
	assert.ErrorIs(t, err, context.Canceled, "a question after the end ends at once")
}
