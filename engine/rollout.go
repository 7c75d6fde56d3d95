package engine

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// Rollout is how far a swarm service is from what its spec declares.
type Rollout struct {
	// Replicas is the number of tasks the spec declares.
	Replicas uint64
	// UpdateState is Docker's state of the last update (updating, completed, rollback_started,
	// ...), empty when the service was never updated.
	UpdateState string
	// Running and Starting are the tasks meant to run: those that do, and those that do not yet.
	Running, Starting uint64
}

// Converged tells whether the service runs as declared: no update under way, and exactly its
// replicas running, none still starting. A start-first roll runs one task more than declared
// until the old one stops, and the docker provider's own wait, one running task per slot, ends
// before that (kreuzwerker 7e649b0, resource_docker_service_funcs.go, replicatedConsoleLogUpdater).
func (r Rollout) Converged() bool {
	updating := r.UpdateState == "updating" || r.UpdateState == "rollback_started"
	return !updating && r.Starting == 0 && r.Running == r.Replicas
}

func (r Rollout) String() string {
	s := fmt.Sprintf("%d/%d running", r.Running, r.Replicas)
	if r.Starting > 0 {
		s += fmt.Sprintf(", %d starting", r.Starting)
	}
	if r.UpdateState != "" {
		s += ", update " + r.UpdateState
	}
	return s
}

// Rollout reads how far the swarm service named name has rolled.
func (Docker) Rollout(host, name string) (Rollout, error) {
	var service struct {
		Spec struct {
			Mode struct{ Replicated *struct{ Replicas uint64 } }
		}
		UpdateStatus *struct{ State string }
	}
	path := "/services/" + url.PathEscape(name)
	if err := ask(host, path, cli("service", "inspect", "--format", "{{json .}}", name), &service); err != nil {
		return Rollout{}, err
	}
	var r Rollout
	if service.Spec.Mode.Replicated != nil {
		r.Replicas = service.Spec.Mode.Replicated.Replicas
	}
	if service.UpdateStatus != nil {
		r.UpdateState = service.UpdateStatus.State
	}
	filter, err := json.Marshal(map[string]map[string]bool{"service": {name: true}, "desired-state": {"running": true}})
	if err != nil {
		return Rollout{}, err
	}
	var tasks []struct{ Status struct{ State string } }
	if err := ask(host, "/tasks?filters="+url.QueryEscape(string(filter)), tasksOfService(name), &tasks); err != nil {
		return Rollout{}, err
	}
	for _, t := range tasks {
		if t.Status.State == "running" {
			r.Running++
		} else {
			r.Starting++
		}
	}
	return r, nil
}

// tasksOfService is /tasks of a service meant to run, through the CLI, which prints a task's
// state only as "Running 3 seconds ago": its first word, lower case, is the API's state.
func tasksOfService(name string) query {
	return func(run func(args ...string) ([]byte, error)) ([]byte, error) {
		out, err := run("service", "ps", "--filter", "desired-state=running", "--format", "{{.CurrentState}}", name)
		if err != nil {
			return nil, err
		}
		type task struct{ Status struct{ State string } }
		tasks := []task{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if fields := strings.Fields(line); len(fields) > 0 {
				var t task
				t.Status.State = strings.ToLower(fields[0])
				tasks = append(tasks, t)
			}
		}
		return json.Marshal(tasks)
	}
}
