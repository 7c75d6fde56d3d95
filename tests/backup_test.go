package tests

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const backupScript = "/run/maricusco/backup.sh"

func TestTheBackupServiceRunsThePostgresImageIntoItsOwnVolumeWithoutASecretInPlainSight(t *testing.T) {
	forEachStack(t, func(t *testing.T, stack string, res *Result) {
		b := res.Container(t, "maricusco-backup")
		pg := res.Container(t, "maricusco-postgres")
		assert.Equal(t, pg.Inputs["image"].StringValue(), b.Inputs["image"].StringValue(), "the client matches the server")
		var mounts []string
		for _, m := range b.Inputs["volumes"].ArrayValue() {
			mounts = append(mounts, str(m.ObjectValue()["volumeName"])+":"+str(m.ObjectValue()["containerPath"]))
		}
		assert.Equal(t, []string{"maricusco_backups:/backups"}, mounts)
		vars, secret := env(b)
		assert.Equal(t, "86400", vars["BACKUP_INTERVAL_SECONDS"], "every 24h by default")
		assert.Equal(t, "7", vars["BACKUP_KEEP"])
		assert.Equal(t, "postgres", vars["PGHOST"])
		assert.Equal(t, "/run/secrets/postgres_password", vars["POSTGRES_PASSWORD_FILE"], "the password comes from a file")
		for k := range vars {
			assert.False(t, secret[k], "%s: no secret in the environment", k)
			assert.NotContains(t, vars[k], "s3cret", k)
		}
		assert.Equal(t, []string{"/bin/sh", backupScript}, strs(b.Inputs["entrypoints"]))
		assert.Equal(t, []string{"serve"}, strs(b.Inputs["command"]), "no password on the command line")
		files, secretFile := uploads(b)
		assert.True(t, secretFile["/run/secrets/postgres_password"], "the password file is a secret in the state")
		assert.NotEmpty(t, files[backupScript])

		var volume Resource
		for _, v := range res.OfType(volumeType) {
			if v.Inputs["name"].StringValue() == "maricusco_backups" {
				volume = v
			}
		}
		assert.True(t, volume.RetainOnDelete, "the backups outlive a destroy")
		assert.Equal(t, stack == "prod", volume.Protect, "and are protected in prod")
		backup, ok := res.Exports["backup"].Value.(map[string]any)
		require.True(t, ok, "a stack output names the volume and the schedule")
		assert.Equal(t, map[string]any{"volume": "maricusco_backups", "interval": "24h0m0s", "keep": 7}, backup)
	})
}

func TestBackupsCanBeTurnedOffWhichRemovesOnlyTheBackupService(t *testing.T) {
	prod := loadStack(t, "prod")
	plan := planDiff(mustRun(t, prod), mustRun(t, prod.with("backup", map[string]any{"enabled": false})))
	assert.Empty(t, plan.Added)
	assert.Empty(t, plan.Changed)
	assert.ElementsMatch(t, []string{
		"maricusco:components:Backup::backup", containerType + "::backup-container",
		imageType + "::backup-image", volumeType + "::backup-data",
	}, plan.Removed, "the volume is let go, and Docker keeps it (retainOnDelete)")
}

func TestBackupConfigSetsTheSchedule(t *testing.T) {
	res := mustRun(t, loadStack(t, "dev").with("backup", map[string]any{"interval": "15m", "keep": 2}))
	vars, _ := env(res.Container(t, "maricusco-backup"))
	assert.Equal(t, "900", vars["BACKUP_INTERVAL_SECONDS"])
	assert.Equal(t, "2", vars["BACKUP_KEEP"])
}

// backupRun runs the shipped backup.sh against a real PostgreSQL server, as the container does.
type backupRun struct {
	server *postgresServer
	script string
	dir    string
	env    []string
}

func newBackupRun(t *testing.T, keep int) *backupRun {
	t.Helper()
	res := mustRun(t, loadStack(t, "dev").withSecret("postgresPassword", "backup-Password:with\\colon"))
	b := res.Container(t, "maricusco-backup")
	files, _ := uploads(b)
	vars, _ := env(b)
	server := startPostgres(t, vars["PGUSER"], vars["PGDATABASE"], "backup-Password:with\\colon")
	r := &backupRun{server: server, dir: filepath.Join(server.dir, "backups")}
	tmp := filepath.Join(server.dir, "tmp")
	for _, d := range []string{r.dir, tmp} {
		require.NoError(t, os.Mkdir(d, 0o700))
		if server.cred != nil {
			require.NoError(t, os.Chown(d, int(server.cred.Uid), int(server.cred.Gid)))
		}
	}
	r.script = filepath.Join(server.dir, "backup.sh")
	password := filepath.Join(server.dir, "postgres_password")
	require.NoError(t, os.WriteFile(r.script, []byte(files[backupScript]), 0o644))
	require.NoError(t, os.WriteFile(password, []byte(files[vars["POSTGRES_PASSWORD_FILE"]]), 0o644))
	r.env = []string{
		"PGHOST=127.0.0.1", "PGPORT=" + strconv.Itoa(server.port), "PGUSER=" + vars["PGUSER"], "PGDATABASE=" + vars["PGDATABASE"],
		"POSTGRES_PASSWORD_FILE=" + password, "BACKUP_DIR=" + r.dir, "BACKUP_KEEP=" + strconv.Itoa(keep),
		"BACKUP_INTERVAL_SECONDS=900", "TMPDIR=" + tmp, "PATH=" + server.bin + ":" + os.Getenv("PATH"),
	}
	return r
}

func (r *backupRun) do(args ...string) (string, error) {
	out, err := r.server.command(r.env, "sh", append([]string{r.script}, args...)...).CombinedOutput()
	return string(out), err
}

func (r *backupRun) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := r.do(args...)
	require.NoError(t, err, "backup.sh %s:\n%s", strings.Join(args, " "), out)
	return out
}

func (r *backupRun) dumps(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(r.dir, pattern))
	require.NoError(t, err)
	sort.Strings(m)
	return m
}

func (r *backupRun) sql(t *testing.T, query string) string {
	t.Helper()
	return strings.TrimSpace(r.server.run(t, nil, filepath.Join(r.server.bin, "psql"), "-h", r.server.socket, "-p", strconv.Itoa(r.server.port),
		"-U", "maricusco", "-d", "maricusco", "-tAc", query))
}

func TestBackupScriptOnPostgres(t *testing.T) {
	t.Run("a verified dump restores the rows", func(t *testing.T) {
		r := newBackupRun(t, 7)
		r.sql(t, "CREATE TABLE trades (id int); INSERT INTO trades SELECT generate_series(1, 100)")
		out := r.must(t, "once")
		assert.Contains(t, out, "verified")
		dumps := r.dumps(t, "maricusco-*.dump")
		require.Len(t, dumps, 1)
		assert.Regexp(t, `maricusco-\d{8}T\d{6}Z\.dump$`, dumps[0])
		r.server.run(t, nil, filepath.Join(r.server.bin, "pg_restore"), "--list", dumps[0])
		r.sql(t, "DROP TABLE trades")
		r.must(t, "restore", filepath.Base(dumps[0]))
		assert.Equal(t, "100", r.sql(t, "SELECT count(*) FROM trades"))
		assert.Equal(t, dumps[0]+"\n", r.must(t, "newest"))
	})
	t.Run("keep 2: after three backups the two newest remain", func(t *testing.T) {
		r := newBackupRun(t, 2)
		var all []string
		for i := 0; i < 3; i++ {
			r.must(t, "once")
			all = r.dumps(t, "maricusco-*.dump")
		}
		assert.Len(t, all, 2)
		out := r.must(t, "once")
		assert.Contains(t, out, "removed")
		assert.NotContains(t, r.dumps(t, "maricusco-*.dump"), all[0], "the oldest goes first")
	})
	t.Run("a corrupt newest dump fails the next run loudly and the older good dumps stay", func(t *testing.T) {
		r := newBackupRun(t, 7)
		r.must(t, "once")
		r.must(t, "once")
		dumps := r.dumps(t, "maricusco-*.dump")
		require.Len(t, dumps, 2)
		require.NoError(t, os.Truncate(dumps[1], 100))
		out, err := r.do("once")
		require.Error(t, err, "the run fails:\n%s", out)
		assert.Contains(t, out, "FAILED verification: "+dumps[1])
		assert.Equal(t, []string{dumps[1] + ".corrupt"}, r.dumps(t, "*.corrupt"))
		good := r.dumps(t, "maricusco-*.dump")
		assert.Len(t, good, 2, "the older good dump and the new one")
		assert.Contains(t, good, dumps[0])
	})
	t.Run("a restart within an interval takes no dump", func(t *testing.T) {
		r := newBackupRun(t, 7)
		serveFor := func(d time.Duration) {
			cmd := r.server.command(r.env, "sh", r.script, "serve")
			if cmd.SysProcAttr == nil {
				cmd.SysProcAttr = &syscall.SysProcAttr{}
			}
			cmd.SysProcAttr.Setpgid = true // so that its sleep goes with it
			require.NoError(t, cmd.Start())
			time.Sleep(d)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
		serveFor(3 * time.Second)
		require.Len(t, r.dumps(t, "maricusco-*.dump"), 1, "a first start takes a dump")
		serveFor(2 * time.Second)
		assert.Len(t, r.dumps(t, "maricusco-*.dump"), 1, "a restart within the interval does not: an empty new database must not push good dumps out")
	})
	t.Run("healthy while the newest good dump is younger than 1.5 intervals", func(t *testing.T) {
		r := newBackupRun(t, 7)
		_, err := r.do("health")
		assert.Error(t, err, "never started and no dump: unhealthy")
		r.must(t, "once")
		r.must(t, "health")
		old := time.Now().Add(-1400 * time.Second) // 900 s interval: 1.5 intervals is 1350 s
		dump := r.dumps(t, "maricusco-*.dump")[0]
		require.NoError(t, os.Chtimes(dump, old, old))
		out, err := r.do("health")
		assert.Error(t, err)
		assert.Contains(t, out, "more than 1.5 intervals")
		require.NoError(t, os.WriteFile(filepath.Join(r.dir, "..", "tmp", "started"), []byte(strconv.FormatInt(time.Now().Unix(), 10)), 0o644))
		r.must(t, "health") // within the first interval after the service started
	})
}
