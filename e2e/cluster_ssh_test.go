package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sshd is OpenSSH's server from Debian's package: the machine's own, or extracted (not installed:
// an installed openssh-server would start serving the machine's port 22) into the user's cache.
func sshd(t *testing.T) (path string, env []string) {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		return "/usr/sbin/sshd", nil
	}
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	dir := filepath.Join(cache, "maricusco-e2e", "openssh-server")
	path = filepath.Join(dir, "usr", "sbin", "sshd")
	// libwrap0 is the one library sshd links that a machine without the server may lack.
	env = []string{"LD_LIBRARY_PATH=" + filepath.Join(dir, "lib", "x86_64-linux-gnu") + ":" + filepath.Join(dir, "usr", "lib", "x86_64-linux-gnu")}
	if _, err := os.Stat(path); err == nil {
		return path, env
	}
	debs := t.TempDir()
	download := exec.Command("apt-get", "download", "openssh-server", "libwrap0")
	download.Dir = debs
	if out, err := download.CombinedOutput(); err != nil {
		out2, err2 := exec.Command("apt-get", "update", "-qq").CombinedOutput()
		require.NoError(t, err2, "apt-get update: %s", out2)
		download = exec.Command("apt-get", "download", "openssh-server", "libwrap0")
		download.Dir = debs
		out, err = download.CombinedOutput()
		require.NoError(t, err, "apt-get download openssh-server libwrap0: %s", out)
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	for _, deb := range files {
		sh(t, "dpkg-deb", "-x", deb, dir)
	}
	return path, env
}

// serveSSH runs sshd in each node's namespace, where a login runs the docker CLI against that
// node's engine, as on a manager a deploy job reaches over ssh. It returns the environment that
// gives a deploy an ssh client trusting those servers with a key they accept.
func (c *cluster) serveSSH(t *testing.T, nodes ...*clusterNode) []string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(c.manager().dir), "ssh")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	sh(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host_key"))
	sh(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "deploy_key"))
	pub, err := os.ReadFile(filepath.Join(dir, "deploy_key.pub"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600))
	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	require.NoError(t, err)
	var known, client strings.Builder
	for _, n := range nodes {
		known.WriteString(n.addr + " " + string(hostPub))
		client.WriteString(strings.Join([]string{
			"Host " + n.addr,
			"  IdentityFile " + filepath.Join(dir, "deploy_key"),
			"  IdentitiesOnly yes",
			"  UserKnownHostsFile " + filepath.Join(dir, "known_hosts"),
			"  StrictHostKeyChecking yes",
			"  BatchMode yes",
		}, "\n") + "\n")
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(known.String()), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ssh_config"), []byte(client.String()), 0o600))
	// The docker provider and CLI run `ssh` from the PATH: this one reads the suite's config.
	bin := filepath.Join(dir, "bin")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	wrapper := fmt.Sprintf("#!/bin/sh\nexec /usr/bin/ssh -F %s \"$@\"\n", filepath.Join(dir, "ssh_config"))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "ssh"), []byte(wrapper), 0o755))
	env := []string{"PATH=" + bin + ":" + os.Getenv("PATH")}

	path, sshdEnv := sshd(t)
	// sshd insists on its privilege separation user and directory, which the package would make.
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	if exec.Command("id", "sshd").Run() != nil {
		sh(t, "useradd", "--system", "--home-dir", "/run/sshd", "--shell", "/usr/sbin/nologin", "sshd")
	}
	for _, n := range nodes {
		serveSSHOn(t, n, dir, path, sshdEnv, env)
	}
	return env
}

// serveSSHOn starts sshd in the node's namespace, with the host key and authorized key in dir,
// and waits until the docker CLI reaches the node's engine through it.
func serveSSHOn(t *testing.T, n *clusterNode, dir, sshdPath string, sshdEnv, clientEnv []string) {
	t.Helper()
	home := filepath.Join(dir, "home")
	require.NoError(t, os.MkdirAll(home, 0o700))
	server := strings.Join([]string{
		"ListenAddress " + n.addr + ":22",
		"HostKey " + filepath.Join(dir, "host_key"),
		"PidFile " + filepath.Join(dir, n.hostname+".pid"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		// A home of the suite's own: bash reads ~/.bashrc for each command over ssh, and a
		// machine's root dotfiles may do slow work there (this one's runs `pyenv init`, whose
		// rehash lock held converge's parallel logins past the engine package's 20 s bound).
		"SetEnv DOCKER_HOST=" + n.engine.host + " HOME=" + home,
	}, "\n") + "\n"
	config := filepath.Join(dir, n.hostname+".sshd_config")
	require.NoError(t, os.WriteFile(config, []byte(server), 0o600))
	cmd := exec.Command("nsenter", "--net=/var/run/netns/"+n.netns, sshdPath, "-D", "-e", "-f", config)
	cmd.Env = append(os.Environ(), sshdEnv...)
	logPath := filepath.Join(dir, n.hostname+".sshd.log")
	log, err := os.Create(logPath)
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited); log.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	eventually(t, 30*time.Second, "sshd answers on "+n.addr, func() bool {
		cli := exec.Command("docker", "--host", "ssh://root@"+n.addr, "version", "--format", "{{.Server.Version}}")
		cli.Env = append(os.Environ(), clientEnv...)
		out, err := cli.CombinedOutput()
		if err != nil {
			select {
			case <-exited:
				t.Fatalf("sshd on %s stopped: %s\n%s", n.hostname, readFile(logPath), out)
			default:
			}
		}
		return err == nil
	})
}
