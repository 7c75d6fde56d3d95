package tests

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// postgresServer is a throwaway PostgreSQL cluster of Debian's server package, run as an
// unprivileged user, for the scripts the program hands the database and its backups.
type postgresServer struct {
	bin, dir, data, socket string
	port                   int
	// serverArgs are the postgres command line's settings (-c name=value ...).
	serverArgs []string
	cred       *syscall.Credential
}

// pgBinDir finds Debian's PostgreSQL server binaries.
func pgBinDir(t *testing.T) string {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		// Elsewhere than on Debian, the server's tools are on the PATH.
		path, err := exec.LookPath("initdb")
		if err != nil {
			t.Fatalf("a PostgreSQL server is needed to test the database's scripts: apt-get install postgresql (.ci/run installs it)")
		}
		return filepath.Dir(path)
	}
	return filepath.Dir(matches[len(matches)-1])
}

// freePort is a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The kernel may offer a closed port again before the test that got it binds it: two
		// parallel tests' servers on one port (seen: the edge's plain port answered by another
		// nginx's health server).
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
}

// handedOut are the ports freePort has given in this run.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// command runs name as the server's user, in a directory that user can read (a tool that cannot
// enter its working directory warns on stderr), with the server's binaries first on the PATH.
func (s *postgresServer) command(env []string, name string, args ...string) *exec.Cmd {
	if _, err := os.Stat(filepath.Join(s.bin, name)); err == nil && !strings.Contains(name, "/") {
		name = filepath.Join(s.bin, name)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), append([]string{"PATH=" + s.bin + ":" + os.Getenv("PATH")}, env...)...)
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

// output runs name and returns its stdout and stderr apart.
func (s *postgresServer) output(env []string, name string, args ...string) (stdout, stderr string, err error) {
	cmd := s.command(env, name, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func (s *postgresServer) run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, errOut, err := s.output(env, name, args...)
	require.NoError(t, err, "%s %s:\n%s%s", name, strings.Join(args, " "), out, errOut)
	return out
}

// chown gives path to the server's user.
func (s *postgresServer) chown(t *testing.T, path string) {
	t.Helper()
	if s.cred != nil {
		require.NoError(t, os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)))
	}
}

// owner is the server's user as chown takes it.
func (s *postgresServer) owner() string {
	if s.cred == nil {
		return fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	}
	return fmt.Sprintf("%d:%d", s.cred.Uid, s.cred.Gid)
}

// startPostgres initialises a cluster whose bootstrap superuser is role with password, trusting
// the local socket and asking for a password over TCP, as the postgres image does, starts it
// with serverArgs and creates database.
func startPostgres(t *testing.T, role, database, password string, serverArgs ...string) *postgresServer {
	t.Helper()
	s := newPostgresServer(t)
	s.serverArgs = serverArgs
	s.initdb(t, role, database, password)
	return s
}

// newPostgresServer readies a directory and a port for a cluster; initdb makes and starts it.
func newPostgresServer(t *testing.T) *postgresServer {
	t.Helper()
	s := &postgresServer{bin: pgBinDir(t), dir: t.TempDir(), port: freePort(t)}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root; use the account Debian's package creates.
		u, err := user.Lookup("postgres")
		require.NoError(t, err, "the postgres user (apt-get install postgresql)")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// t.TempDir's parents are private to root; the server's user must be able to pass through.
		for dir := filepath.Dir(s.dir); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
			require.NoError(t, os.Chmod(dir, 0o711))
		}
	}
	s.chown(t, s.dir)
	// A Unix socket's path is limited to about 100 bytes, which a subtest's TempDir can exceed.
	var err error
	s.socket, err = os.MkdirTemp("", "pg")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(s.socket) })
	s.chown(t, s.socket)
	s.data = filepath.Join(s.dir, "data")
	return s
}

// initdb makes a new cluster in the server's data directory, starts it and creates database.
func (s *postgresServer) initdb(t *testing.T, role, database, password string) {
	t.Helper()
	pwfile := s.file(t, "initial-password", password)
	s.run(t, nil, "initdb", "-D", s.data, "-U", role, "--pwfile="+pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
	s.start(t)
	t.Cleanup(func() { _ = s.command(nil, "pg_ctl", "-D", s.data, "-m", "immediate", "stop").Run() })
	s.run(t, nil, "createdb", "-h", s.socket, "-p", strconv.Itoa(s.port), "-U", role, database)
}

// file writes content into the server's directory, readable by its user, and returns its path.
func (s *postgresServer) file(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(s.dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	s.chown(t, path)
	return path
}

func (s *postgresServer) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-k %s -p %d -c listen_addresses=127.0.0.1 -c fsync=off %s", s.socket, s.port, strings.Join(s.serverArgs, " "))
	s.run(t, nil, "pg_ctl", "-D", s.data, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "120", "start", "-o", opts)
}

// stop shuts the server down as `docker stop` does (fast: no new sessions, the others end).
func (s *postgresServer) stop(t *testing.T) {
	t.Helper()
	s.run(t, nil, "pg_ctl", "-D", s.data, "-m", "fast", "-w", "stop")
}

// crash kills the server as a lost machine would, without a shutdown checkpoint.
func (s *postgresServer) crash(t *testing.T) {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(s.data, "postmaster.pid"))
	require.NoError(t, err)
	n, err := strconv.Atoi(strings.Fields(string(pid))[0])
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(n, syscall.SIGKILL))
	require.Eventually(t, func() bool { return syscall.Kill(n, 0) != nil }, 10*time.Second, 50*time.Millisecond)
}

// sql runs query as role over TCP with password, as a client on the network does, and returns
// what psql prints on stdout, or its error with stderr.
func (s *postgresServer) sql(role, password, database, query string) (string, error) {
	out, errOut, err := s.output([]string{"PGPASSWORD=" + password, "PGCONNECT_TIMEOUT=5"}, "psql",
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", role, "-d", database, "-w", "-X", "-tAq", "-v", "ON_ERROR_STOP=1", "-c", query)
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, errOut)
	}
	return strings.TrimSpace(out), nil
}

// local runs query as role over the local socket, which the image trusts.
func (s *postgresServer) local(t *testing.T, role, database, query string) string {
	t.Helper()
	return strings.TrimSpace(s.run(t, nil, "psql", "-h", s.socket, "-p", strconv.Itoa(s.port), "-U", role, "-d", database,
		"-X", "-tAq", "-v", "ON_ERROR_STOP=1", "-c", query))
}
