package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/components"
)

// redisServer runs redis-server as the program's redis container runs it: its command line and
// config file, with the container's data volume (/data) in a directory of the test's.
type redisServer struct {
	command  []string
	port     int
	password string
	cmd      *exec.Cmd
}

func newRedisServer(t *testing.T, res *Result) *redisServer {
	t.Helper()
	c := res.Container(t, container("redis"))
	files, _ := uploads(c)
	dir, data := t.TempDir(), t.TempDir()
	command := strs(c.Inputs["command"])
	require.Equal(t, "redis-server", command[0])
	s := &redisServer{port: freePort(t), password: files[components.RedisPasswordFile.Path()]}
	for _, arg := range command {
		if content, ok := files[arg]; ok {
			local := filepath.Join(dir, filepath.Base(arg))
			require.NoError(t, os.WriteFile(local, []byte(strings.ReplaceAll(content, "dir /data\n", "dir "+data+"\n")), 0o600))
			arg = local
		}
		s.command = append(s.command, arg)
	}
	s.command[0] = tool(t, "redis-server", "redis-server")
	s.command = append(s.command, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--daemonize", "no")
	return s
}

// start starts the server and waits until it answers.
func (s *redisServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(s.command[0], s.command[1:]...)
	require.NoError(t, s.cmd.Start())
	cmd := s.cmd
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Eventually(t, func() bool { out, _ := s.cli("PING"); return out == "PONG" }, 30*time.Second, 50*time.Millisecond, "redis-server answers, its data loaded")
}

// crash kills the server as a power cut or an OOM kill would: no shutdown, no final save.
func (s *redisServer) crash(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGKILL))
	_ = s.cmd.Wait()
}

// cli runs one command as a client with the password, as the app and the healthcheck do.
func (s *redisServer) cli(args ...string) (string, error) {
	return s.cliAs(s.password, args...)
}

func (s *redisServer) cliAs(password string, args ...string) (string, error) {
	cmd := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port)}, args...)...)
	cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+password)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

func TestRedisKeepsEveryWriteThroughACrash(t *testing.T) {
	s := newRedisServer(t, mustRun(t, loadStack(t, "prod")))
	s.start(t)
	for i := 0; i < 50; i++ {
		out, err := s.cli("SET", "order:"+strconv.Itoa(i), "filled")
		require.NoError(t, err)
		require.Equal(t, "OK", out)
	}
	// Every write reaches the append-only file at once (the kernel keeps it through a process
	// crash); appendfsync everysec bounds what a power cut could lose to a second.
	s.crash(t)
	s.start(t)
	out, err := s.cli("DBSIZE")
	require.NoError(t, err)
	assert.Equal(t, "50", out, "the writes before the crash are back after a restart")
}

func TestRedisRefusesAClientWithoutThePassword(t *testing.T) {
	s := newRedisServer(t, mustRun(t, loadStack(t, "dev")))
	s.start(t)
	for _, password := range []string{"", "wrong-" + s.password} {
		out, _ := s.cliAs(password, "SET", "k", "v")
		assert.Contains(t, out, "NOAUTH", "password %q", password)
	}
	out, err := s.cli("SET", "k", "v")
	require.NoError(t, err)
	assert.Equal(t, "OK", out)
}
