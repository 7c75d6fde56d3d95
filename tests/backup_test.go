package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const backupScript = "/run/maricusco/backup.sh"

func TestBackupsRunTheDatabasesImageIntoTheirOwnVolume(t *testing.T) {
	forEachStack(t, func(t *testing.T, stack string, res *Result) {
		b := res.Container(t, container("backup"))
		pg := res.Container(t, container("postgres"))
		assert.Equal(t, pg.Inputs["image"].StringValue(), b.Inputs["image"].StringValue(), "the client matches the server")
		var mounts []string
		for _, m := range b.Inputs["volumes"].ArrayValue() {
			mounts = append(mounts, str(m.ObjectValue()["volumeName"])+":"+str(m.ObjectValue()["containerPath"]))
		}
		assert.Equal(t, []string{"maricusco_backups:/backups"}, mounts)
		vars, secret := env(b)
		assert.Equal(t, "86400", vars["BACKUP_INTERVAL_SECONDS"], "every 24h by default")
		assert.Equal(t, "7", vars["BACKUP_KEEP"])
		assert.Equal(t, "120", vars["BACKUP_WAL_MAX_AGE_SECONDS"], "written WAL may wait 2m for the archive by default")
		assert.Equal(t, "1073741824", vars["BACKUP_WAL_RETAINED_LIMIT_BYTES"])
		assert.Equal(t, "postgres", vars["PGHOST"])
		assert.Equal(t, "backup", vars["PGUSER"], "it logs in as the backup role, not as the app or the superuser")
		assert.Equal(t, "/run/secrets/postgres_backup_password", vars["BACKUP_PASSWORD_FILE"], "the password comes from a file")
		for k := range vars {
			assert.False(t, secret[k], "%s: no secret in the environment", k)
			assert.NotContains(t, vars[k], "s3cret", k)
		}
		assert.Equal(t, []string{"/bin/sh", backupScript}, strs(b.Inputs["entrypoints"]))
		assert.Equal(t, []string{"serve"}, strs(b.Inputs["command"]), "no password on the command line")
		files, secretFile := uploads(b)
		assert.True(t, secretFile["/run/secrets/postgres_backup_password"], "the password file is a secret in the state")
		assert.NotContains(t, files, "/run/secrets/postgres_password", "it never sees the app's password")
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

func TestBackupsOffRemovesOnlyTheBackupService(t *testing.T) {
	prod := loadStack(t, "prod")
	plan := planDiff(mustRun(t, prod), mustRun(t, prod.with("backup", map[string]any{"enabled": false})))
	assert.Empty(t, plan.Added)
	assert.ElementsMatch(t, []string{containerType + "::postgres-container", containerType + "::prometheus-container"}, plan.Changed,
		"the database lets the backup role go and drops its slot; Prometheus stops scraping it")
	assert.ElementsMatch(t, []string{
		"maricusco:components:Backup::backup", containerType + "::backup-container",
		imageType + "::backup-image", volumeType + "::backup-data",
	}, plan.Removed, "the volume is let go, and Docker keeps it (retainOnDelete)")
}

func TestBackupConfigSetsTheSchedule(t *testing.T) {
	res := mustRun(t, loadStack(t, "dev").with("backup", map[string]any{"interval": "15m", "keep": 2}))
	vars, _ := env(res.Container(t, container("backup")))
	assert.Equal(t, "900", vars["BACKUP_INTERVAL_SECONDS"])
	assert.Equal(t, "2", vars["BACKUP_KEEP"])
}

// A receiver lifted from its pause may start the restored database's new archive at once; here an
// rm that does so as it removes the pause stands in for the quickest one. resume must still name
// the archive in use before: await-base waits for an archive newer than the one named, and given
// the new one it waited its whole 600 s.
func TestResumeNamesTheArchiveInUseBeforeTheReceiverCanStartANewOne(t *testing.T) {
	files, _ := uploads(mustRun(t, loadStack(t, "prod")).Container(t, container("backup")))
	dir := t.TempDir()
	backups, tmp, bin := filepath.Join(dir, "backups"), filepath.Join(dir, "tmp"), filepath.Join(dir, "bin")
	const inUse, started = "20261207T100000Z", "20261207T100001Z"
	for _, d := range []string{filepath.Join(backups, "pitr", inUse, "wal"), tmp, bin} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "paused"), nil, 0o644))
	quickReceiver := "#!/bin/sh\n/bin/rm \"$@\" || exit\n" +
		"for a; do [ \"$a\" != \"$TMPDIR/paused\" ] || mkdir -p \"$BACKUP_DIR/pitr/" + started + "/wal\"; done\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "rm"), []byte(quickReceiver), 0o755))
	script := filepath.Join(dir, "backup.sh")
	require.NoError(t, os.WriteFile(script, []byte(files[backupScript]), 0o644))

	resume := exec.Command("sh", script, "resume", "--new-archive")
	resume.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "BACKUP_DIR="+backups, "TMPDIR="+tmp)
	out, err := resume.Output()
	require.NoError(t, err)
	assert.Equal(t, inUse, strings.TrimSpace(string(out)))
	assert.NoFileExists(t, filepath.Join(tmp, "paused"), "streaming is resumed")
	assert.DirExists(t, filepath.Join(backups, "pitr", started), "the receiver started the new archive as the pause was lifted")
	assert.FileExists(t, filepath.Join(tmp, "new-archive"), "the receiver is told to start a new archive")
}
