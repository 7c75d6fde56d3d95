package deploysteps

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/engine"
	"github.com/maricusco/infra/recovery"
)

// answers is an engine that gives its answers in turn, then the last one for ever, and records
// which services each question asked for.
type answers struct {
	rounds []answer
	asked  [][]string
}

type answer struct {
	rollouts map[string]engine.Rollout
	err      error
}

func (a *answers) rollouts(names []string) (map[string]engine.Rollout, error) {
	a.asked = append(a.asked, names)
	r := a.rounds[min(len(a.asked), len(a.rounds))-1]
	return r.rollouts, r.err
}

func TestConvergeWaitsForEveryServiceAndAsksAgainWhenTheEngineIsSilent(t *testing.T) {
	done := engine.Rollout{Replicas: 2, Running: 2}
	rolling := engine.Rollout{Replicas: 2, Running: 2, Starting: 1, UpdateState: "updating"}
	silent := answer{err: errors.New("ssh: connect to host 10.0.0.1 port 22: Connection timed out")}
	app := recovery.SwarmService{Name: "maricusco-app", Timeout: time.Hour}
	redis := recovery.SwarmService{Name: "maricusco-redis", Timeout: time.Hour}
	for _, tc := range []struct {
		rule     string
		services []recovery.SwarmService
		rounds   []answer
		asked    [][]string
		err      string
		notInErr string
		log      string
	}{
		{
			rule:     "services already converged are asked once, together",
			services: []recovery.SwarmService{app, redis},
			rounds:   []answer{{rollouts: map[string]engine.Rollout{"maricusco-app": done, "maricusco-redis": done}}},
			asked:    [][]string{{"maricusco-app", "maricusco-redis"}},
		},
		{
			rule:     "a converged service is not asked about again",
			services: []recovery.SwarmService{app, redis},
			rounds: []answer{
				{rollouts: map[string]engine.Rollout{"maricusco-app": rolling, "maricusco-redis": done}},
				{rollouts: map[string]engine.Rollout{"maricusco-app": done}},
			},
			asked: [][]string{{"maricusco-app", "maricusco-redis"}, {"maricusco-app"}},
		},
		{
			rule:     "a silent engine is asked again, and says so",
			services: []recovery.SwarmService{app},
			rounds:   []answer{silent, silent, {rollouts: map[string]engine.Rollout{"maricusco-app": done}}},
			asked:    [][]string{{"maricusco-app"}, {"maricusco-app"}, {"maricusco-app"}},
			log:      "converge: asking again, the engine did not answer: ssh: connect to host 10.0.0.1 port 22: Connection timed out\n",
		},
		{
			rule:     "an engine silent past the timeout fails with its last error",
			services: []recovery.SwarmService{{Name: "maricusco-app", Timeout: 30 * time.Millisecond}},
			rounds:   []answer{silent},
			err:      "services maricusco-app: no answer from the engine within 30ms after up returned: ssh: connect to host 10.0.0.1 port 22: Connection timed out",
		},
		{
			rule:     "a service that never converges fails, naming its state, and the others still converge",
			services: []recovery.SwarmService{{Name: "maricusco-app", Timeout: 30 * time.Millisecond}, redis},
			rounds: []answer{
				{rollouts: map[string]engine.Rollout{"maricusco-app": rolling, "maricusco-redis": rolling}},
				{rollouts: map[string]engine.Rollout{"maricusco-app": rolling, "maricusco-redis": done}},
			},
			err:      "service maricusco-app has not converged 30ms after up returned: 2/2 running, 1 starting, update updating",
			notInErr: "maricusco-redis",
		},
		{
			rule:     "a service the engine does not have fails at once",
			services: []recovery.SwarmService{app},
			rounds:   []answer{{err: fmt.Errorf("ssh://root@10.0.0.1: %w maricusco-app", engine.ErrNoService)}},
			asked:    [][]string{{"maricusco-app"}},
			err:      "services maricusco-app: ssh://root@10.0.0.1: no service maricusco-app",
		},
		{
			rule:     "a service missing from an answer is still waited for",
			services: []recovery.SwarmService{app},
			rounds:   []answer{{rollouts: map[string]engine.Rollout{}}, {rollouts: map[string]engine.Rollout{"maricusco-app": done}}},
			asked:    [][]string{{"maricusco-app"}, {"maricusco-app"}},
		},
		{
			rule:     "no service is nothing to ask",
			services: nil,
			rounds:   []answer{silent},
		},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			asked := &answers{rounds: tc.rounds}
			var log bytes.Buffer
			err := awaitConverged(tc.services, asked.rollouts, time.Millisecond, &log)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				if tc.notInErr != "" {
					assert.NotContains(t, err.Error(), tc.notInErr)
				}
				if tc.asked != nil {
					assert.Equal(t, tc.asked, asked.asked)
				}
				return
			}
			require.NoError(t, err)
			if tc.asked != nil {
				assert.Equal(t, tc.asked, asked.asked)
			} else {
				assert.Empty(t, asked.asked)
			}
			if tc.log != "" {
				assert.Contains(t, log.String(), tc.log)
			}
		})
	}
}
