package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// answerA serves DNS on a loopback UDP port, answering every A question with ips, as Docker's
// embedded DNS answers the app's shared alias with every running instance; it returns the port.
func answerA(t *testing.T, ips ...string) int {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &dns.Server{PacketConn: conn, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype != dns.TypeA {
				continue
			}
			for _, ip := range ips {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.ParseIP(ip)})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return conn.LocalAddr().(*net.UDPAddr).Port
}

// instance is an app instance on ip:port answering every request with status; it counts the
// requests for /orders.
func instance(t *testing.T, ip string, port, status int) *atomic.Int64 {
	t.Helper()
	var hits atomic.Int64
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/orders" {
			hits.Add(1)
		}
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, "%s answers %d\n", ip, status)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &hits
}

var (
	upstreamLine = regexp.MustCompile(`(set \$app_upstream http://[^:]+:)[0-9]+;`)
	listenLine   = regexp.MustCompile(`listen [0-9]+;`)
	resolverLine = regexp.MustCompile(`resolver 127\.0\.0\.11 `)
)

// runNginx runs the load balancer's config as shipped, its Docker addresses moved to loopback:
// the listen port, Docker's DNS at 127.0.0.11:53, and the app's port. It returns nginx's URL.
func runNginx(t *testing.T, config string, dnsPort, appPort int) string {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	for _, r := range []struct {
		re   *regexp.Regexp
		with string
	}{
		{listenLine, fmt.Sprintf("listen 127.0.0.1:%d;", port)},
		{resolverLine, fmt.Sprintf("resolver 127.0.0.1:%d ", dnsPort)},
		{upstreamLine, fmt.Sprintf("${1}%d;", appPort)},
	} {
		require.Regexp(t, r.re, config, "the shipped config has the line the test moves")
		config = r.re.ReplaceAllString(config, r.with)
	}
	config = strings.ReplaceAll(config, " /tmp/", " "+dir+"/")
	path := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o644))
	cmd := exec.Command(tool(t, "nginx", "nginx"), "-p", dir, "-c", path, "-g", "daemon off;")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		// SIGTERM is nginx's fast shutdown: the master stops its workers, which a killed master
		// would leave running.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "nginx answers its own health")
	return url
}

func TestTheLoadBalancerSkipsAnInstanceThatCannotServe(t *testing.T) {
	res := mustRun(t, loadStack(t, "prod"))
	files, _ := uploads(res.Container(t, container("lb")))
	config := files[nginxConfig]
	require.NotEmpty(t, config)
	for _, tc := range []struct {
		name   string
		status int // what the bad instance answers; 0: it refuses connections
	}{
		{"one that refuses connections (stopped, or not yet listening)", 0},
		{"one that answers 502 (its app is not up)", http.StatusBadGateway},
		{"one that answers 503 (it drains before it stops)", http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			appPort := freePort(t)
			bad, good := "127.0.0.2", "127.0.0.3"
			var badHits *atomic.Int64
			if tc.status != 0 {
				badHits = instance(t, bad, appPort, tc.status)
			}
			goodHits := instance(t, good, appPort, http.StatusOK)
			url := runNginx(t, config, answerA(t, bad, good), appPort)
			for i := 0; i < 20; i++ {
				resp, err := http.Get(url + "/orders")
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode, "request %d: %s", i, body)
				assert.Equal(t, good+" answers 200\n", string(body))
				assert.Equal(t, "nginx", resp.Header.Get("Server"), "no version is shown to clients")
			}
			assert.EqualValues(t, 20, goodHits.Load())
			if badHits != nil {
				assert.Positive(t, badHits.Load(), "nginx tried the bad instance, then the next")
			}
		})
	}
}
