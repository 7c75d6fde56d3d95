package recovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/maricusco/infra/engine"
)

// Engine is what resolving pending operations asks of the Docker engine the stack deploys to.
type Engine interface {
	Find(kind, name string) (engine.Object, bool, error)
	RemoveContainer(name string) error
}

// kinds are the resource types a killed create can leave behind on the engine under the name in
// their inputs. Volumes are not among them: creating a volume that exists takes the existing one.
var kinds = map[string]string{
	"docker:index/container:Container": engine.ContainerKind,
	"docker:index/service:Service":     engine.ServiceKind,
	"docker:index/network:Network":     engine.NetworkKind,
}

// Export is a stack's state as `pulumi stack export` prints it.
type Export struct {
	apitype.UntypedDeployment
	Deployment apitype.DeploymentV3
}

// ReadExport parses `pulumi stack export`.
func ReadExport(data []byte) (Export, error) {
	var e Export
	if err := json.Unmarshal(data, &e.UntypedDeployment); err != nil {
		return e, fmt.Errorf("reading the stack's export: %w", err)
	}
	if e.Version != 3 {
		return e, fmt.Errorf("the stack's export is version %d; this recovery reads version 3", e.Version)
	}
	if err := json.Unmarshal(e.UntypedDeployment.Deployment, &e.Deployment); err != nil {
		return e, fmt.Errorf("reading the stack's deployment: %w", err)
	}
	return e, nil
}

// Marshal is the export for `pulumi stack import`.
func (e Export) Marshal() ([]byte, error) {
	raw, err := json.Marshal(e.Deployment)
	if err != nil {
		return nil, err
	}
	return json.Marshal(apitype.UntypedDeployment{Version: 3, Deployment: raw})
}

// DockerHost is the host the stack's docker provider deploys to, when its inputs name one.
func (e Export) DockerHost() string {
	for _, r := range e.Deployment.Resources {
		if r.Type == "pulumi:providers:docker" {
			if host, ok := r.Inputs["host"].(string); ok && host != "" {
				return host
			}
		}
	}
	return ""
}

// EngineHost is the engine the stack deploys to: its provider's host, else DOCKER_HOST, else the
// local socket, as the provider itself chooses.
func (e Export) EngineHost() string {
	if host := e.DockerHost(); host != "" {
		return host
	}
	if host := os.Getenv("DOCKER_HOST"); host != "" {
		return host
	}
	return "unix:///var/run/docker.sock"
}

// Resolve settles every pending operation from what the engine has, and says what it did for
// each. A create the engine finished (the object runs under its name, with the labels the inputs
// give it) is adopted into the state; a container created but never started is removed, as the
// provider's refresh would drop it from the state and the next create would then meet its name;
// anything else is cleared, because the refresh before the next update reads every resource the
// state holds as the engine has it.
func Resolve(e Export, eng Engine) (Export, []string, error) {
	d := &e.Deployment
	d.Resources = slices.Clone(d.Resources)
	var did []string
	var errs []error
	for _, op := range d.PendingOperations {
		r := op.Resource
		kind, name := kinds[string(r.Type)], inputName(r)
		if op.Type != apitype.OperationTypeCreating || kind == "" || name == "" {
			did = append(did, fmt.Sprintf("cleared the pending %s of %s: the refresh reads it as it is", op.Type, r.URN.Name()))
			continue
		}
		// A replacement deletes the old object first (the names are fixed), and the state keeps
		// its entry, marked pendingReplacement, until the new one is created.
		replaced := slices.IndexFunc(d.Resources, func(s apitype.ResourceV3) bool { return s.URN == r.URN && !s.Delete })
		obj, found, err := eng.Find(kind, name)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("looking for %s %s: %w", kind, name, err))
		case !found:
			did = append(did, fmt.Sprintf("cleared the pending create of %s: %s was never created, the deploy creates it", r.URN.Name(), name))
		case !carries(obj.Labels, r):
			errs = append(errs, fmt.Errorf("%s %s exists without the labels this stack puts on it: something else holds the name; remove or rename it, then deploy again", kind, name))
		case replaced >= 0 && string(d.Resources[replaced].ID) == obj.ID:
			did = append(did, fmt.Sprintf("cleared the pending create of %s: %s is still the one the state holds", r.URN.Name(), name))
		case kind == engine.ContainerKind && !obj.Running:
			if err := eng.RemoveContainer(name); err != nil {
				errs = append(errs, err)
				continue
			}
			did = append(did, fmt.Sprintf("removed container %s, created but not running when the deploy was killed; the deploy creates it again", name))
		default:
			r.ID = resource.ID(obj.ID)
			r.Outputs = maps.Clone(r.Inputs)
			r.PendingReplacement = false
			if replaced >= 0 {
				d.Resources[replaced] = r
			} else {
				d.Resources = append(d.Resources, r)
			}
			did = append(did, fmt.Sprintf("adopted %s %s (%.12s) into the state: the killed deploy had created it", kind, name, obj.ID))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return e, did, err
	}
	d.PendingOperations = nil
	return e, did, nil
}

func inputName(r apitype.ResourceV3) string {
	name, _ := r.Inputs["name"].(string)
	return name
}

// carries says whether labels hold every label the resource's inputs declare, as the provider
// writes them: a list of {label, value}.
func carries(labels map[string]string, r apitype.ResourceV3) bool {
	declared, _ := r.Inputs["labels"].([]any)
	for _, l := range declared {
		entry, _ := l.(map[string]any)
		key, _ := entry["label"].(string)
		value, _ := entry["value"].(string)
		if got, ok := labels[key]; !ok || got != value {
			return false
		}
	}
	return true
}
