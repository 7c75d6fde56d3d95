package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// postgresServer is a throwaway PostgreSQL cluster, run as an unprivileged user.
type postgresServer struct {
	bin, dir, socket string
	port             int
	cred             *syscall.Credential
}

// pgBinDir finds Debian's PostgreSQL server binaries.
func pgBinDir(t *testing.T) string {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		t.Fatalf("a PostgreSQL server is needed to test password rotation: apt-get install postgresql (.ci/run installs it)")
	}
	return filepath.Dir(matches[len(matches)-1])
}

func (s *postgresServer) command(env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

func (s *postgresServer) run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := s.command(env, name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

// startPostgres initialises a cluster whose superuser is user with password, trusting the local
// socket and asking for the password over TCP, as the postgres image does.
func startPostgres(t *testing.T, role, database, password string) *postgresServer {
	t.Helper()
	s := &postgresServer{bin: pgBinDir(t), dir: t.TempDir()}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root; use the account Debian's package creates.
		u, err := user.Lookup("postgres")
		require.NoError(t, err, "the postgres user (apt-get install postgresql)")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		require.NoError(t, os.Chown(s.dir, uid, gid))
		// t.TempDir's parent is private to root; the server's user must be able to pass through it.
		require.NoError(t, os.Chmod(filepath.Dir(s.dir), 0o711))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.port = l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	// A Unix socket's path is limited to about 100 bytes, which a subtest's TempDir can exceed.
	s.socket, err = os.MkdirTemp("", "pg")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(s.socket) })
	if s.cred != nil {
		require.NoError(t, os.Chown(s.socket, int(s.cred.Uid), int(s.cred.Gid)))
	}
	pwfile := filepath.Join(s.dir, "initial-password")
	require.NoError(t, os.WriteFile(pwfile, []byte(password), 0o644))
	if s.cred != nil {
		require.NoError(t, os.Chown(pwfile, int(s.cred.Uid), int(s.cred.Gid)))
	}
	data := filepath.Join(s.dir, "data")
	s.run(t, nil, filepath.Join(s.bin, "initdb"), "-D", data, "-U", role, "--pwfile="+pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
	s.run(t, nil, filepath.Join(s.bin, "pg_ctl"), "-D", data, "-l", filepath.Join(s.dir, "log"), "-w", "start",
		"-o", fmt.Sprintf("-k %s -p %d -c listen_addresses=127.0.0.1 -c fsync=off", s.socket, s.port))
	t.Cleanup(func() {
		_ = s.command(nil, filepath.Join(s.bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop").Run()
	})
	s.run(t, nil, filepath.Join(s.bin, "createdb"), "-h", s.socket, "-p", strconv.Itoa(s.port), "-U", role, database)
	return s
}

// loginOverTCP reports whether role can log in with password, as the app does.
func (s *postgresServer) loginOverTCP(role, database, password string) error {
	cmd := s.command([]string{"PGPASSWORD=" + password, "PGCONNECT_TIMEOUT=5"}, filepath.Join(s.bin, "psql"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", role, "-d", database, "-w", "-tAc", "select 1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

func TestARotatedPostgresPasswordReachesAnExistingDatabase(t *testing.T) {
	const oldPassword, newPassword = "old-Password-1234", "it's a new \"Password\" 5678"
	res := mustRun(t, loadStack(t, "prod").withSecret("postgresPassword", newPassword))
	pg := res.Container(t, "maricusco-postgres")
	files, _ := uploads(pg)
	vars, _ := env(pg)
	script := files["/run/maricusco/postgres-set-password.sh"]
	require.NotEmpty(t, script, "the container receives the script its entrypoint runs at every start")

	server := startPostgres(t, vars["POSTGRES_USER"], vars["POSTGRES_DB"], oldPassword)
	require.NoError(t, server.loginOverTCP(vars["POSTGRES_USER"], vars["POSTGRES_DB"], oldPassword), "the database was created with the old password")

	secretFile, scriptFile := filepath.Join(server.dir, "postgres_password"), filepath.Join(server.dir, "set-password.sh")
	require.NoError(t, os.WriteFile(secretFile, []byte(files[vars["POSTGRES_PASSWORD_FILE"]]), 0o644))
	require.NoError(t, os.WriteFile(scriptFile, []byte(script), 0o644))
	server.run(t, []string{
		"POSTGRES_USER=" + vars["POSTGRES_USER"], "POSTGRES_DB=" + vars["POSTGRES_DB"], "POSTGRES_PASSWORD_FILE=" + secretFile,
		"PGHOST=" + server.socket, "PGPORT=" + strconv.Itoa(server.port),
	}, "sh", scriptFile)

	assert.NoError(t, server.loginOverTCP(vars["POSTGRES_USER"], vars["POSTGRES_DB"], newPassword), "the new password works")
	assert.Error(t, server.loginOverTCP(vars["POSTGRES_USER"], vars["POSTGRES_DB"], oldPassword), "the old password no longer does")
}

func TestPasswordRotationIsWiredIntoEveryStack(t *testing.T) {
	forEachStack(t, func(t *testing.T, stack string, res *Result) {
		pg := res.Container(t, "maricusco-postgres")
		files, _ := uploads(pg)
		entrypoint := strs(pg.Inputs["entrypoints"])
		require.Len(t, entrypoint, 2)
		wrapper := files[entrypoint[1]]
		assert.Contains(t, wrapper, "sh /run/maricusco/postgres-set-password.sh", "the entrypoint sets the password at every start")
		assert.Contains(t, wrapper, `exec docker-entrypoint.sh "$@"`, "then hands over to the image's entrypoint")
		assert.Equal(t, []string{"postgres"}, strs(pg.Inputs["command"]))
		assert.True(t, pg.Inputs["init"].BoolValue(), "docker-init reaps the detached password setter")

		g := res.Container(t, "maricusco-grafana")
		gfiles, _ := uploads(g)
		gentry := strs(g.Inputs["entrypoints"])
		require.Len(t, gentry, 2)
		assert.Contains(t, gfiles[gentry[1]], "admin reset-admin-password --password-from-stdin")
		assert.Contains(t, gfiles[gentry[1]], `exec /run.sh "$@"`)

		// A new password replaces the database and every client that holds it (the app, the
		// backup service), and nothing else.
		before := mustRun(t, loadStack(t, stack))
		after := mustRun(t, loadStack(t, stack).withSecret("postgresPassword", "rotated-Password-42"))
		plan := planDiff(before, after)
		want := []string{containerType + "::postgres-container", containerType + "::backup-container"}
		for _, app := range before.AppInstances() {
			want = append(want, containerType+"::"+app.Name)
		}
		assert.ElementsMatch(t, want, plan.Changed)
		assert.Equal(t, []string{passwordType + "::postgres-password"}, plan.Removed, "the generator gives way to the configured secret")
		for _, app := range after.AppInstances() {
			appFiles, _ := uploads(app)
			assert.Equal(t, "rotated-Password-42", appFiles["/run/secrets/postgres_password"], "the app's connection settings follow")
		}
	})
}
