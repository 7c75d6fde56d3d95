package stacks

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/maricusco/infra/components"
)

// TLS sources of the edge's certificate.
const (
	// EdgeSelfSigned is a certificate of the stack's own, which deploy.sh generates once
	// (deploysteps/edgecert.go) and keeps in the stack's config, its key encrypted.
	EdgeSelfSigned = "self-signed"
	// EdgeFiles is a certificate chain and key the operator sets from files.
	EdgeFiles = "files"
)

// EdgePrivateKeyKey is the secret key of the edge's private key (PEM). It is a key of its own, not
// a field of `edge`: Pulumi marks a whole object secret when one field is, and the rest of `edge`
// goes where secrets never go (the certificate into the stack's outputs).
const EdgePrivateKeyKey = "edgePrivateKey"

// EdgeConfig is the edge's part of the config: nginx in front of the app and Grafana, with TLS.
type EdgeConfig struct {
	// Hostname is the name clients use; the certificate must cover it.
	Hostname string `yaml:"hostname"`
	// TLS is where the certificate comes from: EdgeSelfSigned or EdgeFiles.
	TLS string `yaml:"tls"`
	// Certificate is the PEM chain the edge serves, the server's certificate first.
	Certificate string `yaml:"certificate"`
	// HTTPS is the binding ([ip:]port) that serves the app and Grafana; empty: none (the edge is
	// reached through a proxy of the operator's).
	HTTPS string `yaml:"https"`
	// HTTP is the binding ([ip:]port) that answers plain HTTP with a redirect to https; empty: none.
	HTTP string `yaml:"http"`
	// HSTS tells browsers to use https only, for two years (prod).
	HSTS bool `yaml:"hsts"`

	// PrivateKey is the certificate's key (EdgePrivateKeyKey, a secret).
	PrivateKey string `yaml:"-"`
	// Serve and Redirect are HTTPS and HTTP parsed; nil: none.
	Serve, Redirect *components.HostPort `yaml:"-"`
}

// edgeRenewal is how long before its expiry a certificate is reported, so it is renewed in time.
const edgeRenewal = 14 * 24 * time.Hour

func declareEdge(r *reader, c *Config) {
	e := EdgeConfig{Hostname: "localhost", TLS: EdgeSelfSigned, HTTPS: "0.0.0.0:443", HTTP: "0.0.0.0:80"}
	r.object("edge", "The edge, nginx in front of the app and Grafana (/grafana/): edge.hostname clients use (default localhost); "+
		"edge.tls, self-signed (default: deploy.sh generates a certificate once per stack) or files (edge.certificate, the PEM chain, and the secret edgePrivateKey); "+
		"edge.https, the [ip:]port it serves on (default 0.0.0.0:443); edge.http, the [ip:]port answering a redirect to https (default 0.0.0.0:80); "+
		"an empty binding publishes none; edge.hsts, Strict-Transport-Security (default false). docs/edge.md.", &e, false)
	e.PrivateKey, _ = r.secret(EdgePrivateKeyKey, "The private key (PEM) of edge.certificate (secret): set with `pulumi config set --secret edgePrivateKey -- \"$(cat key.pem)\"`; deploy.sh sets it for a self-signed edge.")
	for _, b := range []struct {
		key, spec string
		into      **components.HostPort
	}{{"edge.https", e.HTTPS, &e.Serve}, {"edge.http", e.HTTP, &e.Redirect}} {
		if spec := strings.TrimSpace(b.spec); spec != "" {
			hp, err := parseHostPort(spec)
			if err != nil {
				r.fail(b.key, "%v", err)
			}
			*b.into = hp
		}
	}
	c.Edge = e
}

// validateEdge refuses an edge that would not serve: an unknown TLS source, a hostname that is
// none, and a certificate that is missing, unreadable, not for the hostname, expired, or not the
// key's. No message quotes the key.
func validateEdge(r *reader, e EdgeConfig, stack string) {
	if !hostnamePattern.MatchString(e.Hostname) {
		r.fail("edge.hostname", "%q is not a host name; write the name clients use, e.g. maricusco.example.com", e.Hostname)
	}
	if e.TLS != EdgeSelfSigned && e.TLS != EdgeFiles {
		r.fail("edge.tls", "%q is no TLS source; use self-signed or files", e.TLS)
		return
	}
	if e.Certificate == "" || e.PrivateKey == "" {
		if e.TLS == EdgeSelfSigned {
			r.fail("edge.certificate", "is not set, and edge.tls is self-signed: `./deploy.sh %s up` (or preview) generates it and edgePrivateKey once", stack)
			return
		}
		var missing []string
		if e.Certificate == "" {
			missing = append(missing, fmt.Sprintf("`./deploy.sh %s config set --path edge.certificate -- \"$(cat chain.pem)\"`", stack))
		}
		if e.PrivateKey == "" {
			missing = append(missing, fmt.Sprintf("`./deploy.sh %s config set --secret %s -- \"$(cat key.pem)\"`", stack, EdgePrivateKeyKey))
		}
		r.fail("edge.certificate", "edge.tls is files, so the edge needs its certificate chain and key: %s", strings.Join(missing, " and "))
		return
	}
	leaf, foreign, err := edgeChain(e.Certificate)
	if err != nil {
		r.fail("edge.certificate", "%v", err)
		return
	}
	if foreign != "" {
		// It would be served in the plain output tlsCertificate and a world-readable file.
		r.fail("edge.certificate", "holds a %s block (not shown): it is the public chain alone, CERTIFICATE blocks; set the key in the secret %s, and rotate it if it was a private key", foreign, EdgePrivateKeyKey)
	}
	if _, err := tls.X509KeyPair([]byte(e.Certificate), []byte(e.PrivateKey)); err != nil {
		r.fail(EdgePrivateKeyKey, "is not the key of edge.certificate, or no PEM private key (the value is not shown); set the key the certificate was issued for%s", selfSignedRenewal(e))
	}
	if err := leaf.VerifyHostname(e.Hostname); err != nil {
		r.fail("edge.certificate", "is for %s, not edge.hostname %q; set the name it is for, or a certificate for this name%s", strings.Join(append(leaf.DNSNames, ipStrings(leaf)...), ", "), e.Hostname, selfSignedRenewal(e))
	}
	switch now := time.Now(); {
	case now.After(leaf.NotAfter):
		r.fail("edge.certificate", "expired on %s; set a renewed one%s", leaf.NotAfter.UTC().Format(time.DateOnly), selfSignedRenewal(e))
	case now.Before(leaf.NotBefore):
		r.fail("edge.certificate", "is valid only from %s; check the clock of the machine that issued it", leaf.NotBefore.UTC().Format(time.RFC3339))
	case now.Add(edgeRenewal).After(leaf.NotAfter):
		r.fail("edge.certificate", "expires on %s, in less than %d days; set a renewed one%s", leaf.NotAfter.UTC().Format(time.DateOnly), int(edgeRenewal.Hours()/24), selfSignedRenewal(e))
	}
}

// edgeChain reads a PEM chain: its first certificate, the one the edge presents for its name,
// and the type of the first block that is no certificate ("" when every block is one).
func edgeChain(chain string) (leaf *x509.Certificate, foreign string, err error) {
	first, rest := pem.Decode([]byte(chain))
	if first == nil || first.Type != "CERTIFICATE" {
		return nil, "", fmt.Errorf("holds no PEM certificate; set the chain as the CA gave it (-----BEGIN CERTIFICATE-----, the server's first)")
	}
	leaf, err = x509.ParseCertificate(first.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("cannot be read as a certificate (%v); set the chain as the CA gave it", err)
	}
	for block, rest := pem.Decode(rest); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			return leaf, block.Type, nil
		}
	}
	return leaf, "", nil
}

func ipStrings(c *x509.Certificate) []string {
	var out []string
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// selfSignedRenewal says how a self-signed edge gets a new certificate.
func selfSignedRenewal(e EdgeConfig) string {
	if e.TLS != EdgeSelfSigned {
		return ""
	}
	return " (self-signed: `config rm --path edge.certificate` and deploy.sh generates a new one)"
}
