package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"slices"
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

// ErrNoService is Rollouts' answer when the engine has no service of a name asked for: an answer,
// not silence, so asking again cannot help.
var ErrNoService = errors.New("no service")

// Rollouts reads how far each swarm service named has rolled, in two questions whatever their
// number: over ssh://, each question is a login to the manager.
func (Docker) Rollouts(host string, names []string) (map[string]Rollout, error) {
	var services []struct {
		ID   string
		Spec struct {
			Name string
			Mode struct{ Replicated *struct{ Replicas uint64 } }
		}
		UpdateStatus *struct{ State string }
	}
	if err := ask(host, "/services", inspectServices(names), &services); err != nil {
		return nil, err
	}
	wanted := set(names)
	filter, err := json.Marshal(map[string]map[string]bool{"service": wanted, "desired-state": {"running": true}})
	if err != nil {
		return nil, err
	}
	var tasks []taskAnswer
	if err := ask(host, "/tasks?filters="+url.QueryEscape(string(filter)), tasksOfServices(names), &tasks); err != nil {
		return nil, err
	}
	rollouts := map[string]Rollout{}
	// The API names a task's service by its ID, tasksOfServices by its name: both resolve.
	serviceOf := map[string]string{}
	for _, s := range services {
		if !wanted[s.Spec.Name] {
			continue
		}
		var r Rollout
		if s.Spec.Mode.Replicated != nil {
			r.Replicas = s.Spec.Mode.Replicated.Replicas
		}
		if s.UpdateStatus != nil {
			r.UpdateState = s.UpdateStatus.State
		}
		rollouts[s.Spec.Name] = r
		serviceOf[s.ID], serviceOf[s.Spec.Name] = s.Spec.Name, s.Spec.Name
	}
	for _, name := range names {
		if _, ok := rollouts[name]; !ok {
			return nil, fmt.Errorf("%s: %w %s", host, ErrNoService, name)
		}
	}
	for _, t := range tasks {
		if name, ok := serviceOf[t.ServiceID]; ok {
			rollouts[name] = rollouts[name].counting(t)
		}
	}
	return rollouts, nil
}

// inspectServices is /services of the services named, through the CLI, which refuses the whole
// question when one is missing (cliNotFound) where the API lists the others.
func inspectServices(names []string) query {
	return func(run func(args ...string) ([]byte, error)) ([]byte, error) {
		b, err := run(append([]string{"service", "inspect"}, names...)...)
		var exit *exec.ExitError
		if errors.As(err, &exit) && slices.ContainsFunc(names, func(name string) bool { return cliNotFound(exit.Stderr, name) }) {
			return nil, fmt.Errorf("%w: %w", ErrNoService, err)
		}
		return b, err
	}
}

// taskAnswer is what Rollouts reads of a task meant to run.
type taskAnswer struct {
	ServiceID string
	Status    struct{ State string }
}

// counting is the rollout with one more task meant to run: running, or not yet.
func (r Rollout) counting(t taskAnswer) Rollout {
	if t.Status.State == "running" {
		r.Running++
	} else {
		r.Starting++
	}
	return r
}

func set(names []string) map[string]bool {
	s := make(map[string]bool, len(names))
	for _, n := range names {
		s[n] = true
	}
	return s
}

// tasksOfServices is /tasks of the services meant to run, through the CLI, which prints a task's
// state only as "Running 3 seconds ago": its first word, lower case, is the API's state. A
// replicated task is named <service>.<slot>, a global one <service>.<node ID>.
func tasksOfServices(names []string) query {
	return func(run func(args ...string) ([]byte, error)) ([]byte, error) {
		out, err := run(append([]string{"service", "ps", "--filter", "desired-state=running", "--format", "{{.Name}} {{.CurrentState}}"}, names...)...)
		if err != nil {
			return nil, err
		}
		tasks := []taskAnswer{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if fields := strings.Fields(line); len(fields) > 1 {
				var t taskAnswer
				t.ServiceID = fields[0][:max(strings.LastIndex(fields[0], "."), 0)]
				t.Status.State = strings.ToLower(fields[1])
				tasks = append(tasks, t)
			}
		}
		return json.Marshal(tasks)
	}
}
