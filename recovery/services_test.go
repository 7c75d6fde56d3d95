package recovery

import (
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTheSwarmServicesAreTheStatesWithTheirConvergeTimeout(t *testing.T) {
	e := Export{Deployment: apitype.DeploymentV3{Resources: []apitype.ResourceV3{
		{Type: "docker:index/service:Service", Inputs: map[string]any{"name": "maricusco-app", "convergeConfig": map[string]any{"timeout": "5m", "delay": "2s"}}},
		{Type: "docker:index/service:Service", Inputs: map[string]any{"name": "maricusco-redis"}},
		{Type: "docker:index/service:Service", Inputs: map[string]any{"name": "maricusco-old"}, Delete: true},
		{Type: "docker:index/container:Container", Inputs: map[string]any{"name": "maricusco-lb"}},
	}}}
	got, err := e.SwarmServices()
	require.NoError(t, err)
	assert.Equal(t, []SwarmService{{"maricusco-app", 5 * time.Minute}, {"maricusco-redis", 5 * time.Minute}}, got)
}

func TestABadConvergeTimeoutNamesTheService(t *testing.T) {
	e := Export{Deployment: apitype.DeploymentV3{Resources: []apitype.ResourceV3{
		{Type: "docker:index/service:Service", Inputs: map[string]any{"name": "maricusco-app", "convergeConfig": map[string]any{"timeout": "soon"}}},
	}}}
	_, err := e.SwarmServices()
	assert.ErrorContains(t, err, `service maricusco-app: convergeConfig.timeout "soon"`)
}
