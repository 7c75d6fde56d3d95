package stacks

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// selfSignedLifetime is how long a self-signed edge certificate lasts: the longest a browser
// takes (825 days), renewed by deploy.sh in its last edgeRenewal.
const selfSignedLifetime = 825 * 24 * time.Hour

// NewSelfSignedEdge issues a certificate for the edge of a stack that has none: a CA of the
// stack's own, whose key is dropped once it has signed, and a server certificate for hostname,
// localhost, 127.0.0.1 and ::1. chain is the server's certificate then the CA's (what clients
// trust); key is the server's key (PKCS #8).
func NewSelfSignedEdge(stack, hostname string, now time.Time) (chain, key string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("edge CA key: %w", err)
	}
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("edge key: %w", err)
	}
	notBefore, notAfter := now.Add(-time.Hour), now.Add(selfSignedLifetime)
	ca := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"Maricusco"}, CommonName: "Maricusco " + stack + " edge CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	server := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"Maricusco"}, CommonName: hostname},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(hostname); ip != nil {
		server.IPAddresses = append(server.IPAddresses, ip)
	} else if hostname != "localhost" {
		server.DNSNames = append([]string{hostname}, server.DNSNames...)
	}
	for _, c := range []*x509.Certificate{ca, server} {
		if c.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128)); err != nil {
			return "", "", fmt.Errorf("edge certificate serial: %w", err)
		}
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", fmt.Errorf("edge CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", fmt.Errorf("edge CA certificate: %w", err)
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, server, caCert, &serverKey.PublicKey, caKey)
	if err != nil {
		return "", "", fmt.Errorf("edge certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		return "", "", fmt.Errorf("edge key: %w", err)
	}
	chain = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serverDER})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	return chain, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})), nil
}

// NeedsSelfSigned tells whether deploy.sh must issue the edge a certificate of its own, and why:
// a self-signed edge with none, with no key, or with one that does not cover edge.hostname or
// expires within edgeRenewal. An edge of files is the operator's: never.
func NeedsSelfSigned(e EdgeConfig, hasKey bool, now time.Time) (bool, string) {
	if e.TLS != "" && e.TLS != EdgeSelfSigned {
		return false, ""
	}
	hostname := e.Hostname
	if hostname == "" {
		hostname = "localhost"
	}
	if e.Certificate == "" || !hasKey {
		return true, "the stack has none"
	}
	leaf, _, err := edgeChain(e.Certificate)
	switch {
	case err != nil:
		return true, "the one it has cannot be read"
	case leaf.VerifyHostname(hostname) != nil:
		return true, "the one it has is not for " + hostname
	case now.Add(edgeRenewal).After(leaf.NotAfter):
		return true, "the one it has expires on " + leaf.NotAfter.UTC().Format(time.DateOnly)
	}
	return false, ""
}
