package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/stacks"
)

// TestProdLifecycle deploys prod as shipped, two instances behind nginx, on Docker 26 and ports of
// its own, beside the host engine's lane (prod's first up on Docker 20.10 is in
// TestAsFastAsCompose): first by the code of unchangedSince, then taken over by this tree.
func TestProdLifecycle(t *testing.T) {
	requireRealEngine(t)
	const stack = "prod"
	e := modernEngine(t)
	p := forStack(t, e, stack)
	explainEdgeOnFailure(t, p)
	p.backend = "file://" + t.TempDir()
	p.shiftPorts(t, stack, 10000)
	prodContainers := []string{"maricusco-app-1", "maricusco-app-2", "maricusco-backup", "maricusco-chromadb", "maricusco-grafana", "maricusco-lb", "maricusco-postgres", "maricusco-prometheus", "maricusco-redis"}

	if !t.Run("deployed by the code of unchangedSince, taken over by this tree with no change, all healthy", func(t *testing.T) {
		p.takeOverFromUnchangedSince(t, stack)
		require.Equal(t, prodContainers, p.containers(t, stack))
		p.waitHealthy(t, prodContainers, 10*time.Second)
	}) {
		return // every later step needs the deployment
	}

	t.Run("only the edge is published, and it serves https with HSTS for its hostname", func(t *testing.T) {
		published := e.mustDocker(t, "ps", "--filter", "label=maricusco.stack="+stack, "--format", "{{.Names}} {{.Ports}}")
		for _, line := range strings.Split(published, "\n") {
			name, ports, _ := strings.Cut(line, " ")
			var bound []string // what the image only exposes (80/tcp) is not published
			for _, port := range strings.Split(ports, ", ") {
				if strings.Contains(port, "->") {
					bound = append(bound, port)
				}
			}
			if name == "maricusco-lb" {
				assert.Equal(t, []string{"0.0.0.0:10080->8080/tcp", "0.0.0.0:10443->8443/tcp"}, bound, "https and the redirect (shifted by 10000 here)")
			} else {
				assert.Empty(t, bound, "%s publishes nothing", name)
			}
		}
		p.assertEdge(t, "https://maricusco.test:10443", "http://127.0.0.1:10080", true)
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

	t.Run("a new certificate is served after one up, and the request loop counts what the swap costs", func(t *testing.T) {
		chain, key, err := stacks.NewSelfSignedEdge("e2e-ca-2", "maricusco.test", time.Now())
		require.NoError(t, err)
		client, appURL := p.edgeClient(t, chain) // the old certificate's CA and the new one's
		l := startLoad(client, appURL+"/", 10*time.Minute)
		p.config(t, stack, "set", "--path", "edge.certificate", "--", chain)
		p.config(t, stack, "set", "--secret", stacks.EdgePrivateKeyKey, "--", key)
		took := p.up(t, stack)
		sent, failed := l.finish()
		figure(t, e.name, "prod certificate rotation (s)", took.Seconds())
		figure(t, e.name, "prod certificate rotation: failed requests", fmt.Sprintf("%d of %d (first: %v)", failed, sent, l.first()))
		newOnly, _ := p.edgeClient(t) // tlsCertificate is the new chain now
		resp, err := newOnly.Get(appURL + "/health")
		require.NoError(t, err, "a client that trusts only the new certificate's CA connects: the new one is served")
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Positive(t, sent)
	})

	t.Run("a roll killed between an instance's deletion and its replacement's health recovers with the next up", func(t *testing.T) {
		rolled := e.mustDocker(t, "image", "inspect", "--format", "{{.Id}}", rolledAppImage)
		l := p.requestLoop(t)
		p.config(t, stack, "rm", "appImage") // back to the shipped image
		s := p.start(t, stack, "up", "--yes", "--skip-preview")
		// The old instance is deleted and its replacement created at once; the replacement then
		// waits for its health (a start-phase check or two): the window where the app is one short.
		s.killWhen(t, "an instance is replaced and not yet healthy", func() bool {
			for _, c := range []string{"maricusco-app-1", "maricusco-app-2"} {
				state, err := e.docker("inspect", "--format", "{{.Image}} {{.State.Health.Status}}", c)
				image, health, _ := strings.Cut(state, " ")
				if err != nil || (image != rolled && health != "healthy") {
					return true
				}
			}
			return false
		})
		took, out := p.recovered(t, stack, prodContainers)
		sent, failed := l.finish()
		assert.Contains(t, out, "recover:", "the next up names what it recovered")
		for _, c := range []string{"maricusco-app-1", "maricusco-app-2"} {
			assert.NotEqual(t, rolled, e.mustDocker(t, "inspect", "--format", "{{.Image}}", c), "%s runs the shipped image", c)
		}
		figure(t, e.name, "prod recovery after a roll killed between an instance's deletion and its replacement (s)", took.Seconds())
		figure(t, e.name, "prod roll killed and recovered: failed requests", fmt.Sprintf("%d of %d (first: %v)", failed, sent, l.first()))
	})

	t.Run("a postgresPassword rotation killed halfway completes with the next up, the rows kept", func(t *testing.T) {
		p.psql(t, "maricusco-postgres", "CREATE TABLE e2e_rotation AS SELECT g AS id FROM generate_series(1, 1000) g")
		oldURL, err := url.Parse(p.outputs(t, stack)["postgresConnectionString"].(string))
		require.NoError(t, err)
		oldPassword, _ := oldURL.User.Password()
		before := e.mustDocker(t, "inspect", "--format", "{{.Id}}", "maricusco-postgres")
		const rotated = "rotated-across-a-killed-deploy-1"
		p.config(t, stack, "set", "--secret", "postgresPassword", rotated)
		s := p.start(t, stack, "up", "--yes", "--skip-preview")
		s.killWhen(t, "the database's container is replaced", func() bool {
			id, _ := e.docker("inspect", "--format", "{{.Id}}", "maricusco-postgres")
			return id != before
		})
		took, _ := p.recovered(t, stack, prodContainers)
		login := func(password string) error {
			_, err := e.docker("exec", "-e", "PGPASSWORD="+password, "-e", "PGCONNECT_TIMEOUT=5", "maricusco-postgres",
				"psql", "-h", "127.0.0.1", "-U", "maricusco", "-d", "maricusco", "-tAc", "SELECT 1")
			return err
		}
		assert.NoError(t, login(rotated), "the new password logs in over TCP")
		assert.Error(t, login(oldPassword), "the old password is refused")
		assert.Equal(t, "1000", p.psql(t, "maricusco-postgres", "SELECT count(*) FROM e2e_rotation"))
		figure(t, e.name, "prod recovery after a postgresPassword rotation killed halfway (s)", took.Seconds())
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
