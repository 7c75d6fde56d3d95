package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// restoreCommand runs the shipped scripts/backups.sh as `./deploy.sh <stack> restore` does, with
// a pulumi CLI that answers the stack's outputs and a docker CLI whose `exec` runs the command
// where the test's database and backup service are: the backup container's backup.sh on b's
// files, and the postgres container's commands as its superuser over the server's socket.
func restoreCommand(t *testing.T, b *backupService, args ...string) (string, error) {
	t.Helper()
	db := b.db
	var env strings.Builder
	for _, kv := range b.env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&env, "export %s=%s\n", k, shellQuote(v))
	}
	envFile := db.file(t, "fake/backup.env", env.String())
	outputs := map[string]string{
		"backupContainer": container("backup"), "postgresWorkload": container("postgres"),
		"dockerHost": "unix:///fake/docker.sock", "orchestrator": "docker", "appWorkloads": container("app"),
	}
	var answers strings.Builder
	for k, v := range outputs {
		fmt.Fprintf(&answers, "  %s) echo %s ;;\n", k, shellQuote(v))
	}
	pulumi := db.file(t, "fake/pulumi", "#!/bin/sh\n[ \"$1 $2\" = \"stack output\" ] || exit 64\ncase \"$3\" in\n"+answers.String()+"  *) exit 1 ;;\nesac\n")
	docker := db.file(t, "fake/bin/docker", fmt.Sprintf(`#!/bin/sh
[ "$1" = --host ] && shift 2
[ "$1" = exec ] || { echo "fake docker: only exec, not $*" >&2; exit 64; }
shift
[ "$1" = -i ] && shift
c=$1
shift
case "$c" in
  %[1]s) . %[2]s; shift 2; exec sh %[3]s "$@" ;;
  %[4]s) export POSTGRES_USER=%[5]s POSTGRES_DB=%[6]s PGHOST=%[7]s PGPORT=%[8]d; exec "$@" ;;
  *) echo "fake docker: no container $c" >&2; exit 1 ;;
esac
`, container("backup"), envFile, shellQuote(b.script()), container("postgres"),
		shellQuote(db.container.env["POSTGRES_USER"]), shellQuote(db.name), shellQuote(db.socket), db.port))
	script, err := os.ReadFile(filepath.Join("..", "scripts", "backups.sh"))
	require.NoError(t, err)
	backups := db.file(t, "fake/backups.sh", string(script))
	for _, f := range []string{pulumi, docker} {
		require.NoError(t, os.Chmod(f, 0o755))
	}
	out, errOut, err := db.output([]string{"PULUMI=" + pulumi, "PATH=" + filepath.Dir(docker) + ":" + db.bin + ":" + os.Getenv("PATH")},
		"bash", append([]string{backups, "prod", "restore"}, args...)...)
	return out + errOut, err
}

func TestALogicalRestoreThatFailsHalfwayLeavesTheDatabaseAsItWas(t *testing.T) {
	res := mustRun(t, loadStack(t, "prod"))
	db := startedDatabase(t, res)
	b := newBackupService(t, res, db)
	committed := trades(t, db, 20)
	// A dump whose restore fails after --clean has dropped the tables: one of its tables belongs
	// to a role the database no longer has.
	super := db.password(t, "/run/secrets/postgres_superuser_password")
	_, err := db.sql("postgres", super, db.name, "CREATE ROLE departed; CREATE TABLE ledger (id int); ALTER TABLE ledger OWNER TO departed")
	require.NoError(t, err)
	dump := strings.TrimSpace(b.must(t, "once"))
	_, err = db.sql("postgres", super, db.name, "DROP TABLE ledger; DROP ROLE departed")
	require.NoError(t, err)

	out, err := restoreCommand(t, b, dump, "--yes")
	require.Error(t, err, out)
	assert.Contains(t, out, `role "departed" does not exist`)
	assert.Contains(t, out, "the restore failed and was rolled back")
	assert.Equal(t, committed, db.tradeIDs(t), "every row is still there")
}
