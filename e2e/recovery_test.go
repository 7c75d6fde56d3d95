package e2e

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writer inserts one row every 100 ms, as the app writes trades, over the dev stack's published
// port, and remembers every row whose commit returned.
type writer struct {
	mu        sync.Mutex // held to pause the writer between two commits
	conn      *pgx.Conn
	committed []int64
	lastAt    time.Time // when the newest committed row was committed, by the server's clock
	stop      chan struct{}
	stopping  sync.Once
	done      chan struct{}
}

// pgURL is the database's URL for role over the dev stack's published port.
func (p *project) pgURL(role, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password), Host: fmt.Sprintf("127.0.0.1:%d", 5432+p.portOffset), Path: "/maricusco"}
	return u.String()
}

// connect logs in as role over the dev stack's published port.
func (p *project) connect(t *testing.T, role, password string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.pgURL(role, password))
	require.NoError(t, err, "%s logs in", role)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func startWriter(t *testing.T, conn *pgx.Conn) *writer {
	t.Helper()
	w := &writer{conn: conn, stop: make(chan struct{}), done: make(chan struct{})}
	// A step that fails before it finishes its writer must not leave it on the connection the
	// next steps use.
	t.Cleanup(func() { w.finish() })
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			w.mu.Lock()
			var id int64
			var at time.Time
			err := conn.QueryRow(context.Background(), "INSERT INTO trades DEFAULT VALUES RETURNING id, clock_timestamp()").Scan(&id, &at)
			if err == nil {
				w.committed = append(w.committed, id)
				w.lastAt = at
			}
			w.mu.Unlock()
			if err != nil {
				return // the database went away
			}
		}
	}()
	return w
}

// instant pauses the writer and takes the server's time between two commits, so every row is
// committed either before it or after it, a few milliseconds apart; it returns the time and the
// rows committed before it.
func (w *writer) instant(t *testing.T) (string, []int64) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	var at time.Time
	require.NoError(t, w.conn.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&at))
	time.Sleep(5 * time.Millisecond)
	return at.UTC().Format("2006-01-02T15:04:05.000Z07:00"), slices.Clone(w.committed)
}

func (w *writer) finish() ([]int64, time.Time) {
	w.stopping.Do(func() { close(w.stop) })
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.committed), w.lastAt
}

// rows are the ids in trades, as the app reads them.
func (p *project) rows(t *testing.T) []int64 {
	t.Helper()
	out := p.psql(t, "maricusco-postgres", "SELECT coalesce(string_agg(id::text, ' ' ORDER BY id), '') FROM trades")
	var ids []int64
	for _, f := range strings.Fields(out) {
		id, err := strconv.ParseInt(f, 10, 64)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

// timedRestore runs a restore and returns how long it took.
func (p *project) timedRestore(t *testing.T, stack string, what ...string) time.Duration {
	t.Helper()
	start := time.Now()
	p.must(t, append([]string{stack, "restore", "--yes"}, what...)...)
	return time.Since(start).Round(100 * time.Millisecond)
}

// restorePoints are the names `restore --list` shows of one kind (dump, base, copy), oldest first.
func (p *project) restorePoints(t *testing.T, stack, kind string) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(p.must(t, stack, "restore", "--list"), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == kind {
			names = append(names, f[1])
		}
	}
	return names
}

// backupMetricNow reads one of the backup service's metrics where Prometheus scrapes it. A
// backup container just replaced has not written its metrics yet: that is an error too.
func (p *project) backupMetricNow(name string) (float64, error) {
	out, err := p.engine.docker("exec", "maricusco-backup", "cat", "/tmp/metrics")
	if err != nil {
		return 0, fmt.Errorf("the backup service's metrics: %w: %s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("no metric %s in:\n%s", name, out)
}

// awaitBackupMetric waits until one of the backup service's metrics holds. Within minutes, not
// seconds: on a machine at load 25-30 the WAL receiver took over a minute to start.
func (p *project) awaitBackupMetric(t *testing.T, name string, holds func(float64) bool, why string) {
	t.Helper()
	require.Eventually(t, func() bool {
		v, err := p.backupMetricNow(name)
		return err == nil && holds(v)
	}, 3*time.Minute, time.Second, why)
}

// awaitWALReceiver waits until the backup service streams WAL into the archive.
func (p *project) awaitWALReceiver(t *testing.T, why string) {
	t.Helper()
	p.awaitBackupMetric(t, "maricusco_backup_wal_receiver_up", func(up float64) bool { return up == 1 }, why)
}

// backupMetric is the metric now, or the test's end.
func (p *project) backupMetric(t *testing.T, name string) float64 {
	t.Helper()
	v, err := p.backupMetricNow(name)
	require.NoError(t, err)
	return v
}

// TestRecovery proves the backups on the dev stack: restores to an instant and to the last
// archived WAL, refusals that leave the data untouched, and the roles. It runs on Docker 26, on
// ports of its own, beside the other lanes. Nothing it proves depends on the engine, but on Docker
// 20.10, where a new container's health waits a whole interval, one CI run took 1155 s over it
// where another took 476 s on Docker 26.
func TestRecovery(t *testing.T) {
	requireRealEngine(t)
	const stack = "dev"
	e := modernEngine(t)
	p := forStack(t, e, stack)
	p.shiftPorts(t, stack, 10000)
	// A restore waits for the restarted database's health with the running interval, not the
	// start phase's: the stack's shorter one keeps this test fast and changes nothing it proves.
	p.testStackHealth(t, stack)
	for _, s := range []string{"postgresPassword", "postgresSuperuserPassword", "postgresBackupPassword"} {
		p.config(t, stack, "set", "--secret", s, "first-"+s+"-1")
	}
	p.up(t, stack)
	p.waitHealthy(t, devContainers, time.Minute)
	app := p.connect(t, "maricusco", "first-postgresPassword-1")
	_, err := app.Exec(context.Background(), "CREATE TABLE trades (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
	require.NoError(t, err)

	t.Run("the app's login is no superuser and cannot run programs on the server", func(t *testing.T) {
		var super bool
		require.NoError(t, app.QueryRow(context.Background(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super))
		assert.False(t, super)
		_, err := app.Exec(context.Background(), "COPY (SELECT 1) TO PROGRAM 'true'")
		assert.ErrorContains(t, err, "pg_execute_server_program")
	})

	t.Run("the archive holds each commit before its WAL segment is full", func(t *testing.T) {
		w := startWriter(t, app)
		p.awaitWALReceiver(t, "WAL is streamed into the archive")
		// The first base backup ends its WAL segment, which would put any commit before it into the
		// archive even if only whole segments were archived.
		p.awaitBackupMetric(t, "maricusco_backup_base_backup_size_bytes", func(size float64) bool { return size > 0 },
			"the first base backup is taken")
		var lag, age float64
		for i := 0; i < 5; i++ {
			lag = max(lag, p.backupMetric(t, "maricusco_backup_wal_slot_retained_bytes"))
			age = max(age, p.backupMetric(t, "maricusco_backup_wal_archive_age_seconds"))
			time.Sleep(time.Second)
		}
		w.finish()
		figure(t, e.name, "dev WAL not yet archived while writing 10 rows/s, worst of 5 checks (bytes)", lag)
		figure(t, e.name, "dev WAL archive age while writing 10 rows/s, worst of 5 checks (s)", age)

		var lastCommit string
		require.NoError(t, app.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&lastCommit))
		committedAt := time.Now()
		// The writer has stopped, so the WAL written after the commit is a few records (a checkpoint's,
		// at the most), far from the 16 MB that would move the server to the next segment on its own.
		// The slot moves only when the receiver reports the WAL flushed to the archive's disk. A
		// receiver that flushed whole segments only would leave it behind for the minutes 10 rows/s
		// take to fill one, so the bound is generous for a busy machine and still fails that.
		var archived, sameSegment bool
		require.Eventually(t, func() bool {
			err := app.QueryRow(context.Background(), `SELECT s.restart_lsn >= $1::pg_lsn,
				pg_walfile_name(pg_current_wal_lsn()) = pg_walfile_name($1::pg_lsn)
				FROM pg_replication_slots s WHERE s.slot_type = 'physical'`, lastCommit).Scan(&archived, &sameSegment)
			return err == nil && archived
		}, 2*time.Minute, 100*time.Millisecond, "the archive holds the WAL up to %s", lastCommit)
		figure(t, e.name, "dev seconds from a commit to its WAL in the archive", time.Since(committedAt).Round(100*time.Millisecond).Seconds())
		assert.True(t, sameSegment, "the commit was archived while its segment was still being written")

		start := time.Now()
		out := p.must(t, stack, "backup")
		figure(t, e.name, "dev on-demand dump and base backup (s)", time.Since(start).Round(100*time.Millisecond).Seconds())
		figure(t, e.name, "dev base backup size (bytes)", fmt.Sprintf("%.0f", p.backupMetric(t, "maricusco_backup_base_backup_size_bytes")))
		assert.Contains(t, out, "verified with pg_verifybackup")
	})

	var replaced string
	t.Run("restore --to brings back exactly the rows committed up to the instant", func(t *testing.T) {
		earlier := p.rows(t)
		w := startWriter(t, app)
		time.Sleep(2 * time.Second)
		at, before := w.instant(t)
		before = append(earlier, before...)
		time.Sleep(2 * time.Second)
		w.finish()
		require.NotEmpty(t, before)
		_, err := app.Exec(context.Background(), "DROP TABLE trades")
		require.NoError(t, err, "a mistake")
		took := p.timedRestore(t, stack, "--to", at)
		figure(t, e.name, "dev restore --to an instant (s)", took.Seconds())
		assert.Equal(t, before, p.rows(t), "the rows committed up to %s, none after", at)
		p.waitHealthy(t, devContainers, time.Minute)
		copies := p.restorePoints(t, stack, "copy")
		require.Len(t, copies, 1, "what it replaced is listed")
		replaced = copies[0]
	})

	t.Run("what a restore replaced can be restored back", func(t *testing.T) {
		restored := p.rows(t)
		p.timedRestore(t, stack, replaced)
		assert.Equal(t, "0", p.psql(t, "maricusco-postgres", "SELECT count(*) FROM pg_tables WHERE tablename = 'trades'"), "the table dropped by mistake is gone again")
		copies := p.restorePoints(t, stack, "copy")
		require.Len(t, copies, 2, "the second restore kept what it replaced too")
		p.timedRestore(t, stack, copies[1])
		assert.Equal(t, restored, p.rows(t), "and the restored rows come back")
	})

	t.Run("restore --latest after the database and its volume are lost", func(t *testing.T) {
		conn := p.connect(t, "maricusco", "first-postgresPassword-1")
		w := startWriter(t, conn)
		time.Sleep(3 * time.Second)
		e.mustDocker(t, "kill", "-s", "KILL", "maricusco-postgres")
		committed, lastAt := w.finish()
		e.mustDocker(t, "rm", "-f", "maricusco-postgres")
		e.mustDocker(t, "volume", "rm", "maricusco_postgres_data")
		took := p.up(t, stack)
		figure(t, e.name, "dev plain `up` onto a lost database and volume (s)", took.Seconds())
		restoreTook := p.timedRestore(t, stack, "--latest")
		figure(t, e.name, "dev restore --latest after the volume is lost (s)", restoreTook.Seconds())
		rows := p.rows(t)
		var lost []int64
		for _, id := range committed {
			if !slices.Contains(rows, id) {
				lost = append(lost, id)
			}
		}
		figure(t, e.name, "dev restore --latest: committed rows lost", fmt.Sprintf("%d of %d", len(lost), len(committed)))
		newest := p.psql(t, "maricusco-postgres", "SELECT extract(epoch FROM max(at)) FROM trades")
		restoredAt, err := strconv.ParseFloat(newest, 64)
		require.NoError(t, err)
		gap := float64(lastAt.UnixMicro())/1e6 - restoredAt
		figure(t, e.name, "dev restore --latest: seconds between the last committed and the last restored row", fmt.Sprintf("%.3f", gap))
		assert.Empty(t, lost, "no committed row is lost")
		assert.LessOrEqual(t, gap, 5.0)
		p.waitHealthy(t, devContainers, time.Minute)
	})

	t.Run("a cut dump, a cut base backup and a path are refused, with the data untouched", func(t *testing.T) {
		rows := p.rows(t)
		p.must(t, stack, "backup")
		dumps := p.restorePoints(t, stack, "dump")
		require.NotEmpty(t, dumps)
		dump := dumps[len(dumps)-1]
		cut := "maricusco-20200101T000000Z.dump"
		e.mustDocker(t, "exec", "maricusco-backup", "sh", "-c", "head -c $(( $(wc -c < /backups/"+dump+") * 2 / 3 )) /backups/"+dump+" > /backups/"+cut)
		e.mustDocker(t, "exec", "maricusco-backup", "sh", "-c",
			"f=$(ls -d /backups/pitr/*/base-*/base/*/* | sort | tail -n 1) && head -c 100 \"$f\" > /tmp/cut && cat /tmp/cut > \"$f\"")
		for _, what := range [][]string{{cut}, {"--latest"}, {"../../../etc/passwd"}, {"/backups/" + dump}} {
			out, err := p.run(append([]string{stack, "restore", "--yes"}, what...)...)
			require.Error(t, err, "restore %v must be refused:\n%s", what, out)
			assert.Regexp(t, `untouched|is not a restore point`, out, "restore %v", what)
		}
		assert.Equal(t, rows, p.rows(t), "the data is untouched")
		assert.Equal(t, "true", e.mustDocker(t, "inspect", "--format", "{{.State.Running}}", "maricusco-app-1"), "and the app was never stopped")
	})

	t.Run("each rotated password still works", func(t *testing.T) {
		for _, s := range []string{"postgresPassword", "postgresSuperuserPassword", "postgresBackupPassword"} {
			p.config(t, stack, "set", "--secret", s, "second-"+s+"-2")
		}
		p.up(t, stack)
		p.waitHealthy(t, devContainers, time.Minute)
		p.connect(t, "maricusco", "second-postgresPassword-2")
		p.connect(t, "postgres", "second-postgresSuperuserPassword-2")
		p.awaitWALReceiver(t, "the backup role streams with its new password")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := pgx.Connect(ctx, p.pgURL("maricusco", "first-postgresPassword-1"))
		assert.Error(t, err, "the old password is refused")
	})
}
