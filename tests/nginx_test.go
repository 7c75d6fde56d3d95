package tests

import (
	"crypto/tls"
	"crypto/x509"
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
	port, _ := serveA(t, ips...)
	return port
}

// answers are the addresses a DNS server of serveA gives, which a test changes as Docker's DNS
// changes when an instance leaves.
type answers struct{ ips atomic.Pointer[[]string] }

func (a *answers) set(ips ...string) { a.ips.Store(&ips) }

// serveA is answerA with answers the test can change.
func serveA(t *testing.T, ips ...string) (int, *answers) {
	t.Helper()
	current := &answers{}
	current.set(ips...)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &dns.Server{PacketConn: conn, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype != dns.TypeA {
				continue
			}
			for _, ip := range *current.ips.Load() {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.ParseIP(ip)})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return conn.LocalAddr().(*net.UDPAddr).Port, current
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
	grafanaLine  = regexp.MustCompile(`(set \$grafana_upstream http://[^:]+:)[0-9]+;`)
	healthListen = regexp.MustCompile(`listen 8000;`)
	plainListen  = regexp.MustCompile(`listen 8080;`)
	tlsListen    = regexp.MustCompile(`listen 8443 ssl`)
	resolverLine = regexp.MustCompile(`resolver 127\.0\.0\.11 `)
)

// writeLocally writes config, the lb container's nginx.conf, into dir with the files it reads
// there, at their paths moved into dir, and returns the config's path.
func writeLocally(t *testing.T, lb Resource, config, dir string) string {
	t.Helper()
	files, _ := uploads(lb)
	// nginx's temp paths first: dir itself may lie below /tmp.
	config = strings.ReplaceAll(config, " /tmp/", " "+dir+"/")
	for _, f := range []string{"/run/maricusco/edge/certificate.pem", "/run/secrets/edge_private_key"} {
		require.Contains(t, config, " "+f+";", "nginx reads %s", f)
		local := filepath.Join(dir, filepath.Base(f))
		require.NoError(t, os.WriteFile(local, []byte(files[f]), 0o600))
		config = strings.ReplaceAll(config, " "+f+";", " "+local+";")
	}
	path := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o644))
	return path
}

// edge is nginx running the edge's config as shipped, its Docker addresses moved to loopback.
type edge struct {
	https, http string       // its URLs
	client      *http.Client // trusts the chain the edge serves, as a client given tlsCertificate
	chain       string
}

// runNginx runs the load balancer's config and files as the lb container receives them, its
// Docker addresses moved to loopback: the listen ports, Docker's DNS at 127.0.0.11:53, the app's
// and Grafana's ports, and the certificate's and key's paths.
func runNginx(t *testing.T, lb Resource, dnsPort, appPort, grafanaPort int) edge {
	t.Helper()
	files, _ := uploads(lb)
	config := files[nginxConfig]
	require.NotEmpty(t, config)
	dir := t.TempDir()
	health, plain, secure := freePort(t), freePort(t), freePort(t)
	for _, r := range []struct {
		re   *regexp.Regexp
		with string
	}{
		{healthListen, fmt.Sprintf("listen 127.0.0.1:%d;", health)},
		{plainListen, fmt.Sprintf("listen 127.0.0.1:%d;", plain)},
		{tlsListen, fmt.Sprintf("listen 127.0.0.1:%d ssl", secure)},
		{resolverLine, fmt.Sprintf("resolver 127.0.0.1:%d ", dnsPort)},
		{upstreamLine, fmt.Sprintf("${1}%d;", appPort)},
		{grafanaLine, fmt.Sprintf("${1}%d;", grafanaPort)},
	} {
		require.Regexp(t, r.re, config, "the shipped config has the line the test moves")
		config = r.re.ReplaceAllString(config, r.with)
	}
	path := writeLocally(t, lb, config, dir)
	cmd := exec.Command(tool(t, "nginx", "nginx"), "-p", dir, "-c", path, "-g", "daemon off;")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
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
	require.Eventually(t, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/lb-health", health))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "nginx answers its own health; it said:\n%s", &log)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM([]byte(files["/run/maricusco/edge/certificate.pem"])))
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true},
		// A redirect is what a test looks at, not where it leads.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return edge{
		https:  fmt.Sprintf("https://127.0.0.1:%d", secure),
		http:   fmt.Sprintf("http://127.0.0.1:%d", plain),
		client: client,
		chain:  files["/run/maricusco/edge/certificate.pem"],
	}
}

func TestTheLoadBalancerSkipsAnInstanceThatCannotServe(t *testing.T) {
	res := mustRun(t, loadStack(t, "prod"))
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
			e := runNginx(t, res.Container(t, container("lb")), answerA(t, bad, good), appPort, freePort(t))
			for i := 0; i < 20; i++ {
				resp, err := e.client.Get(e.https + "/orders")
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

// swarmGossipConvergeDelay is how long a swarm task serves after it leaves the service's DNS,
// before the engine signals it to stop (moby, daemon/cluster/executor/container/controller.go).
const swarmGossipConvergeDelay = 2 * time.Second

func TestTheLoadBalancerForgetsAStoppingTaskBeforeItStops(t *testing.T) {
	res := mustRun(t, loadStack(t, "prod"))
	appPort := freePort(t)
	stopping, staying := "127.0.0.2", "127.0.0.3"
	stoppingHits := instance(t, stopping, appPort, http.StatusOK)
	instance(t, staying, appPort, http.StatusOK)
	dnsPort, dnsAnswers := serveA(t, stopping, staying)
	e := runNginx(t, res.Container(t, container("lb")), dnsPort, appPort, freePort(t))
	get := func() {
		resp, err := e.client.Get(e.https + "/orders")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	for range 4 {
		get()
	}
	require.Positive(t, stoppingHits.Load(), "nginx sends requests to both instances")

	dnsAnswers.set(staying)
	for start := time.Now(); time.Since(start) < swarmGossipConvergeDelay; time.Sleep(50 * time.Millisecond) {
		get()
	}
	before := stoppingHits.Load()
	for range 20 {
		get()
		time.Sleep(50 * time.Millisecond)
	}
	assert.Equal(t, before, stoppingHits.Load(), "once the engine signals the task to stop, nginx sends it nothing")
}

// echoPath answers every request on ip:port with the URI it received, as Grafana behind the edge,
// and the Host and upgrade headers it received in X-Got- headers.
func echoPath(t *testing.T, ip string, port int) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Got-Host", r.Host)
		w.Header().Set("X-Got-Upgrade", r.Header.Get("Upgrade"))
		w.Header().Set("X-Got-Connection", r.Header.Get("Connection"))
		_, _ = fmt.Fprintf(w, "grafana got %s from %s", r.URL.RequestURI(), r.Header.Get("X-Forwarded-Proto"))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func TestTheEdgeServesTheAppAndGrafanaOverModernTLSOnly(t *testing.T) {
	for _, tc := range []struct {
		stack, httpsSuffix string
		hsts               bool
	}{
		{"dev", ":8443", false},
		{"prod", "", true},
	} {
		t.Run(tc.stack, func(t *testing.T) {
			res := mustRun(t, loadStack(t, tc.stack))
			appPort, grafanaPort, ip := freePort(t), freePort(t), "127.0.0.3"
			instance(t, ip, appPort, http.StatusOK)
			echoPath(t, ip, grafanaPort)
			e := runNginx(t, res.Container(t, container("lb")), answerA(t, ip), appPort, grafanaPort)

			resp, err := e.client.Get(e.https + "/orders")
			require.NoError(t, err, "a client that trusts tlsCertificate connects")
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, ip+" answers 200\n", string(body), "the app answers through the edge")
			assert.Equal(t, 2, resp.ProtoMajor, "HTTP/2")
			assert.Equal(t, "nginx", resp.Header.Get("Server"), "no version is shown to clients")
			if tc.hsts {
				assert.Equal(t, "max-age=63072000", resp.Header.Get("Strict-Transport-Security"))
			} else {
				assert.Empty(t, resp.Header.Get("Strict-Transport-Security"), "no HSTS on a laptop's localhost")
			}

			resp, err = e.client.Get(e.https + "/grafana/api/health?x=1")
			require.NoError(t, err)
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, "grafana got /grafana/api/health?x=1 from https", string(body), "Grafana receives its sub-path as it came, and knows it was https")
			assert.Equal(t, strings.TrimPrefix(e.https, "https://"), resp.Header.Get("X-Got-Host"), "the Host the client sent, port included")
			assert.Equal(t, "close", resp.Header.Get("X-Got-Connection"), "a plain request asks no upgrade")

			resp, err = e.client.Get(e.https + "/grafana")
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
			assert.Equal(t, "/grafana/", resp.Header.Get("Location"), "nginx's own redirect keeps the port the client used, not the one nginx listens on")

			// Grafana Live is a websocket: the upgrade must reach Grafana over HTTP/1.1.
			http1 := &http.Client{Transport: &http.Transport{
				TLSClientConfig: e.client.Transport.(*http.Transport).TLSClientConfig.Clone(),
				TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
			}}
			req, err := http.NewRequest(http.MethodGet, e.https+"/grafana/api/live/ws", nil)
			require.NoError(t, err)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			resp, err = http1.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, "websocket", resp.Header.Get("X-Got-Upgrade"), "a websocket upgrade reaches Grafana")
			assert.Equal(t, "upgrade", resp.Header.Get("X-Got-Connection"))

			resp, err = e.client.Get(e.http + "/orders?x=1")
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode, "plain HTTP only redirects")
			assert.Equal(t, "https://127.0.0.1"+tc.httpsSuffix+"/orders?x=1", resp.Header.Get("Location"), "to the published https port")

			addr := strings.TrimPrefix(e.https, "https://")
			roots := e.client.Transport.(*http.Transport).TLSClientConfig.RootCAs
			handshake := func(cfg *tls.Config) error {
				cfg.RootCAs, cfg.ServerName = roots, "localhost"
				conn, err := tls.Dial("tcp", addr, cfg)
				if err == nil {
					conn.Close()
				}
				return err
			}
			// Refused for its version, not only for want of a shared cipher (no TLS 1.1 cipher is on the list).
			assert.ErrorContains(t, handshake(&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}), "protocol version not supported", "TLS 1.1 is refused")
			assert.NoError(t, handshake(&tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}), "TLS 1.2 is served")
			assert.NoError(t, handshake(&tls.Config{MinVersion: tls.VersionTLS13}), "TLS 1.3 is served")
			cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}
			assert.Error(t, handshake(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: cbc}), "a CBC cipher is refused")
		})
	}
}
