package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProdLifecycle deploys prod as shipped on the host engine: two instances behind nginx.
func TestProdLifecycle(t *testing.T) {
	requireRealEngine(t)
	const stack = "prod"
	e := hostEngine(t)
	p := forStack(t, e, stack)
	prodContainers := []string{"maricusco-app-1", "maricusco-app-2", "maricusco-backup", "maricusco-chromadb", "maricusco-grafana", "maricusco-lb", "maricusco-postgres", "maricusco-prometheus", "maricusco-redis"}

	t.Run("up reaches all healthy", func(t *testing.T) {
		took := p.up(t, stack)
		require.Equal(t, prodContainers, p.containers(t, stack))
		p.waitHealthy(t, prodContainers, 10*time.Second)
		figure(t, e.name, "prod `up` from nothing to all healthy (s)", took.Seconds())
	})

	t.Run("a second up succeeds and changes nothing", func(t *testing.T) {
		changes := p.changes(t, stack)
		assert.Empty(t, changes)
		figure(t, e.name, "prod changes in the preview after `up`", len(changes))
		p.up(t, stack, "--expect-no-changes")
	})

	t.Run("a preview that would replace a protected volume fails", func(t *testing.T) {
		// What the pull-request check relies on (.github/workflows/pull-request.yml).
		p.config(t, stack, "set", "namePrefix", "renamed")
		out, err := p.run(stack, "preview", "--diff")
		require.Error(t, err, "renaming the volumes of a protected stack must fail the preview:\n%s", tail(out, 30))
		assert.Contains(t, out, "protect")
		p.config(t, stack, "rm", "namePrefix")
		assert.Empty(t, p.changes(t, stack))
	})

	t.Run("an app image rolls under load with no failed request", func(t *testing.T) {
		r := p.upUnderLoad(t, stack, "appImage", rolledAppImage)
		figure(t, e.name, "prod image roll, 2 instances (s)", r.took.Seconds())
		figure(t, e.name, "prod image roll, 2 instances: failed requests", r.failures())
		assert.Zero(t, r.failed, "first failure: %v", r.firstErr)
		assert.Positive(t, r.sent)
		p.waitHealthy(t, prodContainers, 10*time.Second)
	})

	t.Run("protect refuses the destroy until it is lifted", func(t *testing.T) {
		// With its preview, as deploy.sh runs it unless told otherwise: the preview meets the
		// protected volumes and stops before anything is deleted. (--skip-preview would delete the
		// unprotected resources first and fail only at the volumes.)
		out, err := p.run(stack, "destroy", "--yes")
		require.Error(t, err, "a protected prod must not be destroyed")
		assert.Contains(t, out, "protect")
		out, err = p.run(stack, "destroy", "--yes", "--skip-preview")
		require.Error(t, err, "deploy.sh refuses to skip the preview that protects prod")
		assert.Contains(t, out, "the prod stack is protected")
		p.assertVolumesKept(t, "after the refused destroy")
		assert.NotEmpty(t, p.containers(t, stack), "nothing was deleted")
		p.config(t, stack, "set", "protect", "false")
		lift := p.changes(t, stack)
		assert.Empty(t, lift, "lifting the protection changes nothing else")
		p.up(t, stack)
		p.must(t, stack, "destroy", "--yes", "--skip-preview")
		assert.Empty(t, p.containers(t, stack))
		p.assertVolumesKept(t, "by Docker after the destroy")
	})
}
