package tests

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/components"
)

// redisServer runs redis-server as the program's redis container runs it: the container's
// entrypoint, command line and files, the image's entrypoint standing by (as root it would then
// drop to the redis user), and the container's data volume (/data) and tmpfs (/tmp) in
// directories of the test's.
type redisServer struct {
	command  []string
	env      []string
	tmp      string
	port     int
	password string
	cmd      *exec.Cmd
}

func newRedisServer(t *testing.T, res *Result) *redisServer {
	t.Helper()
	c := res.Container(t, container("redis"))
	files, _ := uploads(c)
	dir, data, bin := t.TempDir(), t.TempDir(), t.TempDir()
	s := &redisServer{port: freePort(t), password: files[components.RedisPasswordFile.Path()], tmp: t.TempDir()}
	for _, arg := range append(strs(c.Inputs["entrypoints"]), strs(c.Inputs["command"])...) {
		if content, ok := files[arg]; ok {
			local := filepath.Join(dir, filepath.Base(arg))
			require.NoError(t, os.WriteFile(local, []byte(strings.ReplaceAll(content, "dir /data\n", "dir "+data+"\n")), 0o600))
			arg = local
		}
		s.command = append(s.command, arg)
	}
	// The image's entrypoint: started as root, it drops to the redis user, as upstream's does.
	require.NoError(t, os.WriteFile(filepath.Join(bin, "docker-entrypoint.sh"), []byte(
		"#!/bin/sh\n[ \"$(id -u)\" = 0 ] && exec setpriv --reuid=redis --regid=redis --init-groups \"$@\"\nexec \"$@\"\n"), 0o755))
	require.NoError(t, os.Symlink(tool(t, "redis-server", "redis-server"), filepath.Join(bin, "redis-server")))
	s.env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "TMPDIR="+s.tmp)
	s.command = append(s.command, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--daemonize", "no")
	if os.Geteuid() == 0 {
		// Root in the container holds only the capabilities the program gives it, and the redis
		// user must reach its data and the tmpfs as in the container.
		caps := strs(c.Inputs["capabilities"].ObjectValue()["adds"])
		bounding := "-all"
		for _, c := range caps {
			bounding += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
		}
		s.command = append([]string{"setpriv", "--bounding-set", bounding, "--inh-caps", "-all", "--"}, s.command...)
		redis, err := user.Lookup("redis")
		require.NoError(t, err, "Debian's redis-server package makes the redis user")
		uid, _ := strconv.Atoi(redis.Uid)
		gid, _ := strconv.Atoi(redis.Gid)
		require.NoError(t, os.Chown(data, uid, gid))
		for _, d := range []string{data, s.tmp} {
			require.NoError(t, os.Chmod(filepath.Dir(d), 0o755))
		}
		require.NoError(t, os.Chmod(s.tmp, 0o1777))
	}
	return s
}

// start starts the server and waits until it answers.
func (s *redisServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(s.command[0], s.command[1:]...)
	s.cmd.Env = s.env
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

// aofBufferEmpty finds, in INFO persistence, an append-only buffer with nothing left to write;
// with the append-only file off the line is not there.
var aofBufferEmpty = regexp.MustCompile(`(?m)^aof_buffer_length:0\r?$`)

func TestRedisKeepsEveryFlushedWriteThroughACrash(t *testing.T) {
	s := newRedisServer(t, mustRun(t, loadStack(t, "prod")))
	s.start(t)
	for i := 0; i < 50; i++ {
		out, err := s.cli("SET", "order:"+strconv.Itoa(i), "filled")
		require.NoError(t, err)
		require.Equal(t, "OK", out)
	}
	// With Redis's default appendfsync everysec, a reply may go out before its write() while a
	// background fsync is slow: Redis postpones the write for up to two seconds
	// (flushAppendOnlyFile). Once its buffer is empty every acknowledged write is in the file,
	// which the kernel keeps through a process crash; a power cut could still lose a second.
	require.Eventually(t, func() bool {
		info, err := s.cli("INFO", "persistence")
		return err == nil && aofBufferEmpty.MatchString(info)
	}, 10*time.Second, 100*time.Millisecond, "redis-server writes its append-only buffer out")
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

func TestRedisReadsAConfigOfItsOwn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the entrypoint hands the config to the redis user only when it starts as root, as in the container")
	}
	s := newRedisServer(t, mustRun(t, loadStack(t, "prod")))
	s.start(t)
	copies, err := filepath.Glob(filepath.Join(s.tmp, "maricusco-secrets.*", "redis.conf"))
	require.NoError(t, err)
	require.Len(t, copies, 1, "the entrypoint copies the config into the tmpfs")
	copied, err := os.Stat(copies[0])
	require.NoError(t, err)
	redis, err := user.Lookup("redis")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o400), copied.Mode().Perm(), "readable by its owner alone")
	assert.Equal(t, redis.Uid, strconv.Itoa(int(copied.Sys().(*syscall.Stat_t).Uid)), "owned by the user redis-server drops to")
	out, err := s.cli("CONFIG", "GET", "appendonly")
	require.NoError(t, err)
	assert.Contains(t, out, "yes", "the server runs on that copy")
}
