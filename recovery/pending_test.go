package recovery

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/engine"
)

// fakeEngine holds objects by kind/name and records what was removed.
type fakeEngine struct {
	objects map[string]engine.Object
	removed []string
	err     error
}

func (f *fakeEngine) Find(kind, name string) (engine.Object, bool, error) {
	o, ok := f.objects[kind+"/"+name]
	return o, ok, f.err
}

func (f *fakeEngine) RemoveContainer(name string) error {
	f.removed = append(f.removed, name)
	return nil
}

var ours = map[string]string{"maricusco.stack": "dev", "maricusco.project": "maricusco"}

func containerOp(name string) apitype.OperationV2 {
	return apitype.OperationV2{Type: apitype.OperationTypeCreating, Resource: apitype.ResourceV3{
		URN:    resource.URN("urn:pulumi:dev::maricusco::maricusco:components:Postgres$docker:index/container:Container::" + name),
		Custom: true, Type: "docker:index/container:Container",
		Inputs: map[string]any{"name": "maricusco-" + name, "labels": []any{
			map[string]any{"label": "maricusco.project", "value": "maricusco"},
			map[string]any{"label": "maricusco.stack", "value": "dev"},
		}},
	}}
}

func exportWith(ops ...apitype.OperationV2) Export {
	var e Export
	e.Version = 3
	e.Deployment.Resources = []apitype.ResourceV3{{URN: "urn:pulumi:dev::maricusco::pulumi:providers:docker::docker", Custom: true, ID: "p1",
		Type: "pulumi:providers:docker", Inputs: map[string]any{"host": "unix:///run/docker.sock"}}}
	e.Deployment.PendingOperations = ops
	return e
}

func TestResolve(t *testing.T) {
	running := engine.Object{ID: "c0ffee", Running: true, Labels: ours}
	for _, tc := range []struct {
		rule     string
		op       apitype.OperationV2
		objects  map[string]engine.Object
		adopted  string
		removed  []string
		says     string
		refusal  string
		inResult int
	}{
		{rule: "a running container of a pending create is adopted", op: containerOp("postgres"),
			objects: map[string]engine.Object{"containers/maricusco-postgres": running}, adopted: "c0ffee", says: "adopted", inResult: 2},
		{rule: "a pending create the engine never made is cleared", op: containerOp("postgres"),
			objects: map[string]engine.Object{}, says: "never created", inResult: 1},
		{rule: "a container created but not started is removed", op: containerOp("postgres"),
			objects: map[string]engine.Object{"containers/maricusco-postgres": {ID: "c0ffee", Labels: ours}}, removed: []string{"maricusco-postgres"}, says: "removed", inResult: 1},
		{rule: "a container of that name without our labels is refused", op: containerOp("postgres"),
			objects: map[string]engine.Object{"containers/maricusco-postgres": {ID: "beef", Running: true, Labels: map[string]string{"maricusco.stack": "prod"}}}, refusal: "without the labels"},
		{rule: "a pending delete is cleared for the refresh", op: apitype.OperationV2{Type: apitype.OperationTypeDeleting, Resource: containerOp("app-1").Resource},
			objects: map[string]engine.Object{"containers/maricusco-app-1": running}, says: "cleared the pending deleting", inResult: 1},
		{rule: "a pending create of a resource the engine cannot hold is cleared", op: apitype.OperationV2{Type: apitype.OperationTypeCreating, Resource: apitype.ResourceV3{
			URN: "urn:pulumi:dev::maricusco::random:index/randomPassword:RandomPassword::redis-password", Custom: true, Type: "random:index/randomPassword:RandomPassword"}},
			says: "cleared", inResult: 1},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			eng := &fakeEngine{objects: tc.objects}
			got, did, err := Resolve(exportWith(tc.op), eng)
			if tc.refusal != "" {
				require.ErrorContains(t, err, tc.refusal)
				assert.NotEmpty(t, got.Deployment.PendingOperations, "a refusal changes nothing")
				return
			}
			require.NoError(t, err)
			assert.Empty(t, got.Deployment.PendingOperations)
			assert.Len(t, got.Deployment.Resources, tc.inResult)
			assert.Equal(t, tc.removed, eng.removed)
			require.Len(t, did, 1)
			assert.Contains(t, did[0], tc.says)
			if tc.adopted != "" {
				last := got.Deployment.Resources[len(got.Deployment.Resources)-1]
				assert.EqualValues(t, tc.adopted, last.ID)
				assert.Equal(t, tc.op.Resource.URN, last.URN)
				assert.Equal(t, "maricusco-postgres", last.Outputs["name"])
			}
		})
	}
}

func TestAnEngineThatDoesNotAnswerSettlesNothing(t *testing.T) {
	got, _, err := Resolve(exportWith(containerOp("redis")), &fakeEngine{err: errors.New("connection refused")})
	assert.ErrorContains(t, err, "connection refused")
	assert.Len(t, got.Deployment.PendingOperations, 1)
}

func TestAnExportSurvivesTheRoundTrip(t *testing.T) {
	e := exportWith(containerOp("redis"))
	data, err := e.Marshal()
	require.NoError(t, err)
	back, err := ReadExport(data)
	require.NoError(t, err)
	assert.Equal(t, e.Deployment, back.Deployment)
	assert.Equal(t, "unix:///run/docker.sock", back.DockerHost())

	_, err = ReadExport([]byte(`{"version":2,"deployment":{}}`))
	assert.ErrorContains(t, err, fmt.Sprint("version ", 2))
}

func TestAReplacementCreatedBeforeTheKillTakesItsPredecessorsPlace(t *testing.T) {
	op := containerOp("app")
	old := op.Resource
	old.ID, old.PendingReplacement = "0ld", true
	e := exportWith(op)
	e.Deployment.Resources = append(e.Deployment.Resources, old, apitype.ResourceV3{URN: "urn:pulumi:dev::maricusco::x$docker:index/container:Container::after", ID: "a1"})

	got, did, err := Resolve(e, &fakeEngine{objects: map[string]engine.Object{"containers/maricusco-app": {ID: "n3w", Running: true, Labels: ours}}})
	require.NoError(t, err)
	require.Len(t, got.Deployment.Resources, 3, "in place, not beside it")
	adopted := got.Deployment.Resources[1]
	assert.EqualValues(t, "n3w", adopted.ID)
	assert.False(t, adopted.PendingReplacement)
	assert.Contains(t, did[0], "adopted")

	got, did, err = Resolve(e, &fakeEngine{objects: map[string]engine.Object{"containers/maricusco-app": {ID: "0ld", Running: true, Labels: ours}}})
	require.NoError(t, err)
	assert.EqualValues(t, "0ld", got.Deployment.Resources[1].ID)
	assert.Contains(t, did[0], "still the one the state holds")
}
