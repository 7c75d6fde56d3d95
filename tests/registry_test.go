package tests

import (
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"

	"github.com/maricusco/infra/components"
	"github.com/maricusco/infra/stacks"
)

// worker is a service the program does not ship, added through the registry alone: one row, and
// a component built from its declaration.
var worker = stacks.Service{
	Name: "worker", Image: "worker:1.0", ImageDescription: "A worker, for the registry's test.",
	Resources: stacks.ResourceSpec{Limits: stacks.Amounts{CPUs: "0.5", Memory: "256M"}, Reservations: stacks.Amounts{CPUs: "0.1", Memory: "64M"}},
	Stateful:  true,
	Networks:  []string{components.DataNetwork},
	After:     []string{"postgres"},
	Deploy: func(ctx *pulumi.Context, d *stacks.Deployment) (components.Deployed, error) {
		args := d.Args("worker")
		return components.NewService(ctx, "worker", &args, components.ServiceDecl{
			Type: "maricusco:components:Worker", Service: "worker",
			Spec: components.ContainerSpec{Aliases: []string{"worker"}, HealthCheck: []string{"CMD", "/usr/bin/worker", "--check"}},
			Data: args.DataAt("worker", "/var/lib/worker"),
		}, d.Options...)
	},
}

func TestAServiceAddedThroughTheRegistryGetsEveryRule(t *testing.T) {
	t.Run("on one engine", func(t *testing.T) {
		res := mustRun(t, loadStack(t, "prod").with("workerImage", "worker:1.1"), stacks.WithServices(worker))
		c := res.Container(t, container("worker"))
		assert.Equal(t, imageID("worker:1.1"), c.Inputs["image"].StringValue(), "its image key")
		assert.Equal(t, "0.5", c.Inputs["cpus"].StringValue(), "its limits")
		assert.Equal(t, 256.0, c.Inputs["memory"].NumberValue())
		assert.Equal(t, 64.0, c.Inputs["memoryReservation"].NumberValue())
		hc := c.Inputs["healthcheck"].ObjectValue()
		assert.Equal(t, []string{"CMD", "/usr/bin/worker", "--check"}, strs(hc["tests"]))
		assert.Equal(t, "30s", hc["interval"].StringValue(), "the stack's healthcheck timing")
		assert.False(t, c.Inputs["wait"].BoolValue(), "the program's health gate waits for it, as for every container")
		assert.Equal(t, []string{"ALL"}, strs(c.Inputs["capabilities"].ObjectValue()["drops"]), "hardening")
		assert.Equal(t, []string{"no-new-privileges:true"}, strs(c.Inputs["securityOpts"]))
		assert.True(t, c.Inputs["readOnly"].BoolValue())
		assert.Equal(t, "unless-stopped", c.Inputs["restart"].StringValue())
		assert.Equal(t, map[string][]string{dataNetwork: {"worker"}}, joined(t, c), "the networks its row names, under its name")
		assert.Equal(t, "maricusco_worker_data:/var/lib/worker", str(c.Inputs["volumes"].ArrayValue()[0].ObjectValue()["volumeName"])+":"+
			str(c.Inputs["volumes"].ArrayValue()[0].ObjectValue()["containerPath"]), "its volume")
		assert.True(t, slices.ContainsFunc(c.DependsOn, func(urn string) bool { return strings.HasSuffix(urn, containerType+"::postgres-container") }),
			"it waits for what its row says: %v", c.DependsOn)
		assert.Equal(t, container("worker"), res.Exports["containerNames"].Value.(map[string]any)["worker"], "its outputs")
		assert.Equal(t, "maricusco_worker_data", res.Exports["volumeNames"].Value.(map[string]string)["worker"])
		for _, v := range res.OfType(volumeType) {
			if v.Inputs["name"].StringValue() == "maricusco_worker_data" {
				assert.True(t, v.Protect, "protected in prod like every data volume")
			}
		}
	})
	t.Run("on a swarm", func(t *testing.T) {
		res := mustRun(t, onSwarm(t, "prod").with("resources", map[string]any{"worker": map[string]any{"limits": map[string]any{"memory": "512M"}}}), stacks.WithServices(worker))
		s := res.Service(t, container("worker"))
		task := s.Inputs["taskSpec"]
		assert.Equal(t, float64(512<<20), obj(task, "resources", "limits", "memoryBytes").NumberValue(), "resources.worker overrides its row")
		assert.Equal(t, float64(5e8), obj(task, "resources", "limits", "nanoCpus").NumberValue())
		assert.Equal(t, []string{"ALL"}, strs(obj(task, "containerSpec", "capDrops")))
		assert.Equal(t, []string{"CMD", "/usr/bin/worker", "--check"}, strs(obj(task, "containerSpec", "healthcheck", "tests")))
		assert.Equal(t, []string{"node.labels.maricusco.data==true"}, strs(obj(task, "placement", "constraints")), "stateful: on the data node")
		assert.Equal(t, container("worker"), res.Exports["serviceNames"].Value.(map[string]any)["worker"])
	})
}
