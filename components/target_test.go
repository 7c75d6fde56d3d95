package components

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTheOrchestratorKeyChoosesTheTarget(t *testing.T) {
	for _, tc := range []struct {
		orchestrator, mode string
		want               Orchestrator
		problem            string
	}{
		{"docker", "vip", OrchestratorDocker, ""},
		{"swarm", "vip", OrchestratorSwarm, ""},
		{"swarm", "dnsrr", OrchestratorSwarm, ""},
		{"swarm", "ipvs", OrchestratorSwarm, `swarmEndpointMode: "ipvs" is not an endpoint mode; use vip or dnsrr`},
		{"docker", "dnsrr", OrchestratorDocker, "swarmEndpointMode: dnsrr applies to swarm services only"},
		{"kubernetes", "vip", "", `orchestrator: "kubernetes" is not an orchestrator; use one of docker, swarm`},
	} {
		t.Run(tc.orchestrator+"/"+tc.mode, func(t *testing.T) {
			target, problems := NewTarget(tc.orchestrator, TargetOptions{SwarmEndpointMode: tc.mode})
			if tc.problem == "" {
				require.Empty(t, problems)
			} else {
				require.Len(t, problems, 1)
				assert.Contains(t, problems[0].Key+": "+problems[0].Message, tc.problem)
			}
			if tc.want != "" {
				assert.Equal(t, tc.want, target.Orchestrator())
			}
		})
	}
}
