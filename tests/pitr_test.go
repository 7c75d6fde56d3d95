package tests

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/components"
)

// patience bounds every wait for the backup service: generous, since a busy machine slows base
// backups down; it only matters when something is wrong.
const patience = 3 * time.Minute

// backupService runs the shipped backup.sh as the program's backup container runs it, against a
// database set up as the program's postgres container sets it up.
type backupService struct {
	db        *database
	container containerCopy
	dir       string // the backups volume
	env       []string
	metrics   int
}

// newBackupService readies the backup container's files and environment for db; extra
// environment entries (BACKUP_WAL_MAX_AGE_SECONDS=2) override the program's.
func newBackupService(t *testing.T, res *Result, db *database, extra ...string) *backupService {
	t.Helper()
	b := &backupService{db: db, container: db.copyContainer(t, res.Container(t, container("backup")), "backup"), metrics: freePort(t)}
	b.dir = filepath.Join(db.dir, "backups")
	tmp := filepath.Join(db.dir, "backup-tmp")
	for _, d := range []string{b.dir, tmp} {
		require.NoError(t, os.Mkdir(d, 0o700))
		db.chown(t, d)
	}
	b.env = b.container.environ(append([]string{
		"PGHOST=127.0.0.1", "PGPORT=" + strconv.Itoa(db.port), "BACKUP_DIR=" + b.dir, "TMPDIR=" + tmp,
		"BACKUP_METRICS_PORT=" + strconv.Itoa(b.metrics), "BACKUP_CHECK_SECONDS=1",
	}, extra...)...)
	return b
}

func (b *backupService) script() string { return b.container.files["/run/maricusco/backup.sh"] }

// run runs backup.sh with args as the backup container does, returning stdout and stderr apart.
func (b *backupService) run(args ...string) (stdout, stderr string, err error) {
	return b.db.output(b.env, "sh", append([]string{b.script()}, args...)...)
}

func (b *backupService) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := b.run(args...)
	require.NoError(t, err, "backup.sh %s:\n%s%s", strings.Join(args, " "), out, errOut)
	return out
}

// serve starts the service, as the container's command does, until the test ends or stop.
func (b *backupService) serve(t *testing.T) (stop func()) {
	t.Helper()
	cmd := b.db.command(b.env, "sh", b.script(), "serve")
	log, err := os.CreateTemp(b.db.dir, "serve-*.log")
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = log, log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true // its receiver and loops go with it
	require.NoError(t, cmd.Start())
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = log.Close()
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("backup.sh serve:\n%s", out)
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls the service's restore points until one line starts with prefix.
func (b *backupService) waitFor(t *testing.T, prefix string) []string {
	t.Helper()
	var points []string
	require.Eventually(t, func() bool {
		points = b.points(t)
		for _, p := range points {
			if strings.HasPrefix(p, prefix) {
				return true
			}
		}
		return false
	}, patience, 200*time.Millisecond, "no restore point %q", prefix)
	return points
}

// points are the restore points `restore --list` shows, as "<kind> <name>".
func (b *backupService) points(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(b.must(t, "list")), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			out = append(out, f[0]+" "+f[1])
		}
	}
	return out
}

// restore does what deploy.sh's physical restore does around the one-off container: the
// receiver paused and the server stopped, backup.sh restore-data on its data directory (as root
// with the capabilities the container gets, or as the server's user here), then the server
// started again, streaming resumed in a new archive, and that archive's first base backup awaited.
// It returns the replaced directory's name.
func (b *backupService) restore(t *testing.T, args ...string) string {
	t.Helper()
	b.must(t, "pause")
	b.db.stop(t)
	cmd := exec.Command("sh", append([]string{b.script(), "restore-data"}, args...)...)
	cmd.Dir = b.db.dir
	cmd.Env = append(os.Environ(), append(b.env, "PGDATA="+b.db.data, "PGDATA_OWNER="+b.db.owner(),
		"PATH="+b.db.bin+":"+os.Getenv("PATH"))...)
	aside, err := cmd.Output()
	require.NoError(t, err, "restore-data: %v", err)
	b.db.start(t)
	before := strings.TrimSpace(b.must(t, "resume", "--new-archive"))
	_, errOut, err := b.run("await-base", before, "120")
	require.NoError(t, err, "the restored database has a base backup in an archive after %s: %s", before, errOut)
	assert.Contains(t, errOut, "archived again")
	return strings.TrimSpace(string(aside))
}

// refused runs a plan and returns what it said, failing unless it was refused.
func (b *backupService) refused(t *testing.T, what ...string) string {
	t.Helper()
	out, errOut, err := b.run(append([]string{"plan"}, what...)...)
	require.Error(t, err, "plan %v must be refused:\n%s", what, out)
	assert.Contains(t, errOut, "the database is untouched")
	return errOut
}

// trades writes n rows, one transaction each, as the app does, and returns their ids.
func trades(t *testing.T, db *database, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		id, err := db.sql("maricusco", db.password(t, "/run/secrets/postgres_password"), db.name, "INSERT INTO trades DEFAULT VALUES RETURNING id")
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

func (d *database) tradeIDs(t *testing.T) []string {
	t.Helper()
	got, err := d.sql("maricusco", d.password(t, "/run/secrets/postgres_password"), d.name, "SELECT coalesce(string_agg(id::text, ' ' ORDER BY id), '') FROM trades")
	require.NoError(t, err)
	return strings.Fields(got)
}

// startedDatabase is a database as the program starts it, with its roles and a trades table.
func startedDatabase(t *testing.T, res *Result) *database {
	t.Helper()
	db := newDatabase(t, res, "postgres")
	db.roles(t)
	_, err := db.sql("maricusco", db.password(t, "/run/secrets/postgres_password"), db.name,
		"CREATE TABLE trades (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
	require.NoError(t, err)
	return db
}

func TestPointInTimeRecovery(t *testing.T) {
	res := mustRun(t, loadStack(t, "prod"))
	t.Run("restore --to brings back exactly what was committed up to the instant", func(t *testing.T) {
		t.Parallel()
		db := startedDatabase(t, res)
		b := newBackupService(t, res, db)
		b.serve(t)
		b.waitFor(t, "base ")
		before := trades(t, db, 20)
		at, err := db.sql("postgres", db.password(t, "/run/secrets/postgres_superuser_password"), db.name, "SELECT extract(epoch FROM clock_timestamp())")
		require.NoError(t, err)
		trades(t, db, 20)
		_, err = db.sql("maricusco", db.password(t, "/run/secrets/postgres_password"), db.name, "DROP TABLE trades")
		require.NoError(t, err, "a mistake")
		plan := strings.Fields(b.must(t, "plan", "--to", at))
		require.Len(t, plan, 5, "physical ARCHIVE BASE time EPOCH")
		assert.Equal(t, []string{"physical", "time", at}, []string{plan[0], plan[3], plan[4]})
		aside := b.restore(t, plan...)
		assert.Equal(t, before, db.tradeIDs(t), "the rows committed up to the instant, none after")
		assert.Regexp(t, `^before-restore-\d{8}T\d{6}Z$`, aside)

		b.waitFor(t, "copy "+aside)
		require.Eventually(t, func() bool { return len(basesOf(t, b)) >= 2 }, patience, 200*time.Millisecond,
			"the restored cluster gets a base backup of its own, in a new archive")
		b.restore(t, "copy", aside)
		_, err = db.sql("maricusco", db.password(t, "/run/secrets/postgres_password"), db.name, "SELECT 1 FROM trades")
		assert.ErrorContains(t, err, `relation "trades" does not exist`, "what the restore replaced comes back as it was")
	})
	t.Run("restore --latest after the data directory is lost loses no committed row", func(t *testing.T) {
		t.Parallel()
		db := startedDatabase(t, res)
		b := newBackupService(t, res, db, "BACKUP_WAL_MAX_AGE_SECONDS=2")
		b.serve(t)
		b.waitFor(t, "base ")
		committed := trades(t, db, 30)
		db.crash(t)
		require.NoError(t, os.RemoveAll(db.data))
		db.initdb(t, "postgres", db.name, "bootstrap-Password-1")
		db.roles(t)
		require.Eventually(t, func() bool {
			_, errOut, err := b.run("health")
			return err != nil && strings.Contains(errOut+healthOut(b), "FOREIGN DATABASE")
		}, patience, 200*time.Millisecond, "a new, empty cluster is never archived in place of the old one, and says so")
		bases := basesOf(t, b)
		_, errOut, err := b.run("base")
		require.Error(t, err, "a base backup of the new, empty cluster")
		assert.Contains(t, errOut, "FOREIGN DATABASE", "is refused, saying why")
		assert.Equal(t, bases, basesOf(t, b), "and is never put into the old cluster's archive, where --latest would take it")
		plan := strings.Fields(b.must(t, "plan", "--latest"))
		require.Equal(t, "latest", plan[3])
		b.restore(t, plan...)
		assert.Equal(t, committed, db.tradeIDs(t), "every committed row")
		require.Eventually(t, func() bool { _, _, err := b.run("health"); return err == nil }, patience, 500*time.Millisecond,
			"the restored database is archived again")
	})
	t.Run("what is damaged or not in the list is refused", func(t *testing.T) {
		t.Parallel()
		db := startedDatabase(t, res)
		b := newBackupService(t, res, db)
		b.serve(t)
		b.waitFor(t, "base ")
		trades(t, db, 5)
		for _, name := range []string{"../../../etc/passwd", "maricusco-20261202T000000Z.dump.corrupt", "/backups/maricusco-x.dump", "base-2026"} {
			assert.Contains(t, b.refused(t, name), "is not a restore point", name)
		}
		dump := strings.TrimSpace(b.must(t, "once"))
		full, err := os.ReadFile(filepath.Join(b.dir, dump))
		require.NoError(t, err)
		cut := "maricusco-20200101T000000Z.dump"
		require.NoError(t, os.WriteFile(filepath.Join(b.dir, cut), full[:len(full)*2/3], 0o600))
		assert.Contains(t, b.refused(t, cut), "does not read back in full", "a cut dump still lists, but does not read in full")
		assert.Equal(t, "logical "+dump, strings.TrimSpace(b.must(t, "plan", dump)))

		bases := basesOf(t, b)
		newest := bases[len(bases)-1]
		files, err := filepath.Glob(filepath.Join(newest, "base", "*", "*"))
		require.NoError(t, err)
		sort.Strings(files)
		require.NoError(t, os.Truncate(files[0], 100))
		assert.Contains(t, b.refused(t, "--latest"), "does not pass pg_verifybackup")
		assert.Contains(t, b.refused(t, filepath.Base(newest)), "does not pass pg_verifybackup")
		assert.Contains(t, b.refused(t, "--to", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)), "in the future")
	})
	t.Run("the slot holds WAL from the moment it exists", func(t *testing.T) {
		// A slot that reserves nothing until the receiver's first reply is invalidated by a
		// checkpoint in between (the first base backup's), and the archive starts over.
		t.Parallel()
		db := startedDatabase(t, res)
		super := db.password(t, "/run/secrets/postgres_superuser_password")
		watched := make(chan error, 1)
		go func() {
			_, err := db.sql("postgres", super, db.name, `DO $$
				BEGIN
					FOR i IN 1..200000 LOOP
						IF EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '`+components.WALSlot+`' AND restart_lsn IS NULL) THEN
							RAISE EXCEPTION 'the slot exists and holds no WAL';
						END IF;
						IF EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '`+components.WALSlot+`' AND active) THEN
							RETURN;
						END IF;
						PERFORM pg_sleep(0.0005);
					END LOOP;
					RAISE EXCEPTION 'the receiver never streamed';
				END $$`)
			watched <- err
		}()
		time.Sleep(500 * time.Millisecond) // the watch is under way before the service starts
		b := newBackupService(t, res, db)
		b.serve(t)
		select {
		case err := <-watched:
			require.NoError(t, err)
		case <-time.After(patience):
			t.Fatal("the watch never ended")
		}
		b.waitFor(t, "base ")
		assert.NotContains(t, healthOut(b), "slot lost")
	})
	t.Run("a gap in the archive is refused", func(t *testing.T) {
		t.Parallel()
		db := startedDatabase(t, res)
		b := newBackupService(t, res, db)
		b.serve(t)
		b.waitFor(t, "base ")
		super := db.password(t, "/run/secrets/postgres_superuser_password")
		for i := 0; i < 3; i++ {
			trades(t, db, 1)
			_, err := db.sql("postgres", super, db.name, "SELECT pg_switch_wal()")
			require.NoError(t, err)
		}
		var segments []string
		require.Eventually(t, func() bool {
			segments, _ = filepath.Glob(filepath.Join(filepath.Dir(basesOf(t, b)[0]), "wal", "????????????????????????"))
			return len(segments) >= 3
		}, patience, 200*time.Millisecond)
		sort.Strings(segments)
		require.NoError(t, os.Remove(segments[1]))
		assert.Contains(t, b.refused(t, "--latest"), "misses WAL before")
	})
}

// basesOf are the base backups' directories, oldest first.
func basesOf(t *testing.T, b *backupService) []string {
	t.Helper()
	done, err := filepath.Glob(filepath.Join(b.dir, "pitr", "*", "base-*.done"))
	require.NoError(t, err)
	sort.Slice(done, func(i, j int) bool { return filepath.Base(done[i]) < filepath.Base(done[j]) })
	for i := range done {
		done[i] = strings.TrimSuffix(done[i], ".done")
	}
	return done
}

// healthOut is what the healthcheck prints.
func healthOut(b *backupService) string {
	out, _, _ := b.run("health")
	return out
}

// scrape reads the backup service's metrics as Prometheus does.
func scrape(t *testing.T, b *backupService) map[string]float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", b.metrics))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			v, err := strconv.ParseFloat(f[1], 64)
			require.NoError(t, err, line)
			out[f[0]] = v
		}
	}
	return out
}

func TestTheWALArchiveIsWatched(t *testing.T) {
	res := mustRun(t, loadStack(t, "prod"))
	db := startedDatabase(t, res)
	b := newBackupService(t, res, db, "BACKUP_WAL_MAX_AGE_SECONDS=3", "BACKUP_WAL_RETAINED_LIMIT_BYTES=40000000")
	b.serve(t)
	b.waitFor(t, "base ")
	trades(t, db, 10)
	require.Eventually(t, func() bool {
		m := scrape(t, b)
		return m["maricusco_backup_wal_receiver_up"] == 1 && m["maricusco_backup_wal_archive_age_seconds"] == 0 && m["maricusco_backup_base_backup_size_bytes"] > 0
	}, patience, 200*time.Millisecond, "streaming: everything written is in the archive")
	b.must(t, "health")

	b.must(t, "pause")
	super := db.password(t, "/run/secrets/postgres_superuser_password")
	_, err := db.sql("postgres", super, db.name, "INSERT INTO trades SELECT FROM generate_series(1, 1000000)")
	require.NoError(t, err)
	var out string
	require.Eventually(t, func() bool { out = healthOut(b); return strings.Contains(out, "no WAL has been streamed") }, patience, 200*time.Millisecond)
	m := scrape(t, b)
	assert.Zero(t, m["maricusco_backup_wal_receiver_up"])
	assert.Greater(t, m["maricusco_backup_wal_slot_retained_bytes"], 40e6, "the slot holds back what the archive does not have")
	assert.Greater(t, m["maricusco_backup_wal_archive_age_seconds"], 0.0)
	assert.Contains(t, out, "holds back")
	assert.Contains(t, out, "is not in the archive yet")

	b.must(t, "resume")
	require.Eventually(t, func() bool { _, _, err := b.run("health"); return err == nil }, patience, 200*time.Millisecond,
		"the receiver catches up from the slot: nothing was lost while it was away")
}

func TestLogicalDumps(t *testing.T) {
	res := mustRun(t, loadStack(t, "prod").with("backup", map[string]any{"interval": "15m", "keep": 2}))
	dumps := func(t *testing.T, b *backupService, pattern string) []string {
		m, err := filepath.Glob(filepath.Join(b.dir, pattern))
		require.NoError(t, err)
		sort.Strings(m)
		return m
	}
	t.Run("a dump is verified and named by when it was taken", func(t *testing.T) {
		t.Parallel()
		b := newBackupService(t, res, startedDatabase(t, res))
		name := strings.TrimSpace(b.must(t, "once"))
		assert.Regexp(t, `^maricusco-\d{8}T\d{6}Z\.dump$`, name)
		assert.Equal(t, []string{filepath.Join(b.dir, name)}, dumps(t, b, "maricusco-*.dump"))
	})
	t.Run("keep 2: after three dumps the two newest remain", func(t *testing.T) {
		t.Parallel()
		b := newBackupService(t, res, startedDatabase(t, res))
		var taken []string
		for i := 0; i < 3; i++ {
			taken = append(taken, filepath.Join(b.dir, strings.TrimSpace(b.must(t, "once"))))
		}
		assert.Equal(t, taken[1:], dumps(t, b, "maricusco-*.dump"))
	})
	t.Run("a corrupt dump fails the next run loudly and the good ones stay", func(t *testing.T) {
		t.Parallel()
		b := newBackupService(t, res, startedDatabase(t, res))
		b.must(t, "once")
		b.must(t, "once")
		all := dumps(t, b, "maricusco-*.dump")
		require.NoError(t, os.Truncate(all[1], 100))
		_, errOut, err := b.run("once")
		require.Error(t, err)
		assert.Contains(t, errOut, "FAILED verification: "+all[1])
		assert.Equal(t, []string{all[1] + ".corrupt"}, dumps(t, b, "*.corrupt"))
		assert.Contains(t, dumps(t, b, "maricusco-*.dump"), all[0])
	})
	t.Run("a restart within an interval takes no dump", func(t *testing.T) {
		t.Parallel()
		b := newBackupService(t, res, startedDatabase(t, res))
		stop := b.serve(t)
		b.waitFor(t, "dump ")
		b.waitFor(t, "base ")
		stop()
		b.serve(t)
		time.Sleep(3 * time.Second)
		assert.Len(t, dumps(t, b, "maricusco-*.dump"), 1, "an empty new database must not push good dumps out")
		assert.Len(t, basesOf(t, b), 1)
	})
}

func TestTheDatabaseGivesTheSlotUpOnlyFarPastTheAlertsLimit(t *testing.T) {
	// The alert fires when the slot holds back more than walRetainedLimit; the database gives the
	// slot up (and the archive its continuity) only at four times that, leaving time to act.
	res := mustRun(t, loadStack(t, "prod").with("backup", map[string]any{"walRetainedLimit": "64M"}))
	db := startedDatabase(t, res)
	super := db.password(t, "/run/secrets/postgres_superuser_password")
	sql := func(query string) string {
		t.Helper()
		out, err := db.sql("postgres", super, db.name, query)
		require.NoError(t, err, query)
		return out
	}
	sql("SELECT pg_create_physical_replication_slot('" + components.WALSlot + "', true)")
	// Each switch after a write moves the server to a new 16M segment the slot holds back.
	holdBack := func(segments int) (retained int64, status string) {
		for i := 0; i < segments; i++ {
			sql("INSERT INTO trades DEFAULT VALUES")
			sql("SELECT pg_switch_wal()")
		}
		sql("CHECKPOINT")
		row := strings.Split(sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(restart_lsn, '0/0'))::bigint, wal_status FROM pg_replication_slots WHERE slot_name = '"+components.WALSlot+"'"), "|")
		require.Len(t, row, 2)
		retained, err := strconv.ParseInt(row[0], 10, 64)
		require.NoError(t, err)
		return retained, row[1]
	}
	retained, status := holdBack(8)
	require.Greater(t, retained, int64(64<<20), "past the alert's limit")
	assert.Contains(t, []string{"reserved", "extended"}, status, "twice the alert's limit: the slot still holds its WAL")
	_, status = holdBack(12)
	assert.Contains(t, []string{"unreserved", "lost"}, status, "past four times the limit, the database gives the slot up")
}
