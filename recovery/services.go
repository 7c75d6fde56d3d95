package recovery

import (
	"fmt"
	"time"
)

// SwarmService is a swarm service of the stack, and how long `up` waits for it to converge.
type SwarmService struct {
	Name    string
	Timeout time.Duration
}

// SwarmServices are the swarm services the stack's state holds, each with the timeout of its
// convergeConfig.
func (e Export) SwarmServices() ([]SwarmService, error) {
	var out []SwarmService
	for _, r := range e.Deployment.Resources {
		if r.Type != "docker:index/service:Service" || r.Delete {
			continue
		}
		s := SwarmService{Name: inputName(r), Timeout: 5 * time.Minute}
		if converge, ok := r.Inputs["convergeConfig"].(map[string]any); ok {
			if timeout, ok := converge["timeout"].(string); ok && timeout != "" {
				d, err := time.ParseDuration(timeout)
				if err != nil {
					return nil, fmt.Errorf("service %s: convergeConfig.timeout %q: %w", s.Name, timeout, err)
				}
				s.Timeout = d
			}
		}
		out = append(out, s)
	}
	return out, nil
}
