package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tradesCommitted inserts n trades in the data node's database and returns how many it holds.
func tradesCommitted(t *testing.T, p *project, n int) int {
	t.Helper()
	// No NOTICE for a table that exists: it goes to stderr, which can come after the count.
	out := p.psql(t, p.task(t, "maricusco-postgres"), fmt.Sprintf(
		"SET client_min_messages TO warning;"+
			"CREATE TABLE IF NOT EXISTS trades (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());"+
			"INSERT INTO trades (at) SELECT clock_timestamp() FROM generate_series(1, %d);"+
			"SELECT count(*) FROM trades", n))
	lines := strings.Split(out, "\n") // each statement's tag, then the count
	count, err := strconv.Atoi(lines[len(lines)-1])
	require.NoError(t, err, "count of trades: %q", out)
	return count
}

// asOperator runs a command line as an operator does, in the project's directory, with the
// suite's ssh client: `docker -H ssh://root@<node>` reaches a node as a deploy does.
func (p *project) asOperator(t *testing.T, line string) {
	t.Helper()
	out, err := p.script("bash", "-c", "set -euo pipefail; "+line)
	require.NoError(t, err, "%s: %s", line, out)
}

// loseDataNode loses the manager that is the data node, as docs/cluster.md's "Losing the data
// node" tells, and follows the operator's steps written there: three managers beforehand, a copy
// of the backups volume off the host, then another node labelled the data node, the copy put into
// its backups volume, dockerHost pointed at it, `up`, and `restore --latest`.
func loseDataNode(t *testing.T, c *cluster, p *project, stack, label string) {
	m, next := c.manager(), c.nodes[1]
	backups, ok := p.outputs(t, stack)["backupVolume"].(string)
	require.True(t, ok, "the stack exports its backups volume")
	postgresImage := p.serviceImage(t, "maricusco-postgres")
	offHost := filepath.Join(t.TempDir(), "maricusco-backups.tgz")

	// Rows in a base backup, rows only in the WAL archive, then the copy leaves the host, then rows
	// the copy cannot hold.
	tradesCommitted(t, p, 1000)
	p.must(t, stack, "backup")
	inCopy := tradesCommitted(t, p, 500)
	p.asOperator(t, fmt.Sprintf("docker -H ssh://root@%s run --rm --entrypoint tar -v %s:/b:ro %s -C /b -czf - . > %s",
		m.addr, backups, postgresImage, offHost))
	committed := tradesCommitted(t, p, 100)

	m.engine.mustDocker(t, "node", "promote", "worker1", "worker2")
	eventually(t, time.Minute, "three reachable managers", func() bool {
		out := m.engine.mustDocker(t, "node", "ls", "--filter", "role=manager", "--format", "{{.ManagerStatus}}")
		return strings.Count(out, "Leader")+strings.Count(out, "Reachable") == 3
	})

	lostAt := time.Now()
	c.lose(t, m)
	p.engine = next.engine
	elected := eventually(t, 2*time.Minute, "a leader among the managers left, and manager1 down", func() bool {
		state, err := next.engine.docker("node", "inspect", "--format", "{{.Status.State}}", m.hostname)
		return err == nil && state == "down"
	})
	figure(t, label, "prod data node lost: seconds until the managers left see it down", elected.Seconds())
	for _, s := range statefulServices {
		require.Empty(t, tasksByNode(t, next.engine, s), "%s is pinned to the data node: it runs nowhere else by itself", s)
	}

	// The copy goes into the new data node's volume before any task starts there: a backup
	// service that starts on an empty volume begins an archive of the new, empty database.
	p.asOperator(t, fmt.Sprintf("docker -H ssh://root@%[1]s volume create %[2]s && docker -H ssh://root@%[1]s run --rm -i --entrypoint tar -v %[2]s:/b %[3]s -C /b -xzf - < %[4]s",
		next.addr, backups, postgresImage, offHost))
	next.engine.mustDocker(t, "node", "update", "--label-rm", "maricusco.data", m.hostname)
	next.engine.mustDocker(t, "node", "update", "--label-add", "maricusco.data=true", next.hostname)
	p.config(t, stack, "set", "dockerHost", "ssh://root@"+next.addr)
	require.Equal(t, []string{"update docker [host]"}, p.changes(t, stack), "another manager: the provider's host changes, no service or volume is replaced")
	took := p.up(t, stack)
	figure(t, label, "prod data node lost: `up` through the new data node (s)", took.Seconds())
	requireStackConverged(t, next.engine, next.hostname)

	restoreTook := p.timedRestore(t, stack, "--latest")
	figure(t, label, "prod data node lost: `restore --latest` from the off-host copy (s)", restoreTook.Seconds())
	figure(t, label, "prod data node lost: seconds from the loss to the data restored", time.Since(lostAt).Round(time.Second).Seconds())
	restored := tradesCommitted(t, p, 0)
	figure(t, label, "prod data node lost: committed rows lost", fmt.Sprintf("%d of %d, all committed after the off-host copy", committed-restored, committed))
	require.Equal(t, inCopy, restored, "every row the copy's archive holds comes back: those of the base backup and those after it")
	// The restored database is archived anew on the new node: a base backup goes into its archive.
	p.must(t, stack, "backup")
	requireStackConverged(t, next.engine, next.hostname)

	// The lost manager demoted and removed, as docs/cluster.md says, the two left keep the swarm.
	next.engine.mustDocker(t, "node", "demote", m.hostname)
	next.engine.mustDocker(t, "node", "rm", "--force", m.hostname)
	hostnames := next.engine.mustDocker(t, "node", "ls", "--filter", "role=manager", "--format", "{{.Hostname}}")
	require.ElementsMatch(t, []string{"worker1", "worker2"}, strings.Fields(hostnames), "the two nodes left manage the swarm")
	statuses := next.engine.mustDocker(t, "node", "ls", "--filter", "role=manager", "--format", "{{.ManagerStatus}}")
	require.ElementsMatch(t, []string{"Leader", "Reachable"}, strings.Fields(statuses), "one leads, and the other is reachable")
	require.Empty(t, p.changes(t, stack), "after the restore the stack is as declared")
}
