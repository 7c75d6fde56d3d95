package stacks

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestASelfSignedEdgeVerifiesForItsNamesAgainstItsOwnCA(t *testing.T) {
	chain, key, err := NewSelfSignedEdge("dev", "maricusco.test", time.Now())
	require.NoError(t, err)
	assert.Contains(t, key, "-----BEGIN PRIVATE KEY-----")
	var certs []*x509.Certificate
	for rest := []byte(chain); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		certs = append(certs, c)
	}
	require.Len(t, certs, 2, "the server's certificate, then the CA that clients trust")
	roots := x509.NewCertPool()
	roots.AddCert(certs[1])
	for _, name := range []string{"maricusco.test", "localhost", "127.0.0.1", "::1"} {
		_, err := certs[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots})
		assert.NoError(t, err, name)
	}
	_, err = certs[0].Verify(x509.VerifyOptions{DNSName: "other.test", Roots: roots})
	assert.Error(t, err, "no other name")
}

func TestDeploySHIssuesASelfSignedCertificateOnlyWhenTheEdgeNeedsOne(t *testing.T) {
	now := time.Now()
	fresh, _, err := NewSelfSignedEdge("dev", "localhost", now)
	require.NoError(t, err)
	old, _, err := NewSelfSignedEdge("dev", "localhost", now.Add(-820*24*time.Hour))
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		edge   EdgeConfig
		hasKey bool
		want   bool
	}{
		{"none yet", EdgeConfig{}, false, true},
		{"a certificate without its key", EdgeConfig{Certificate: fresh}, false, true},
		{"a valid one is kept", EdgeConfig{Certificate: fresh}, true, false},
		{"one for another hostname is renewed", EdgeConfig{Hostname: "maricusco.test", Certificate: fresh}, true, true},
		{"one about to expire is renewed", EdgeConfig{Certificate: old}, true, true},
		{"an unreadable one is renewed", EdgeConfig{Certificate: "not a certificate"}, true, true},
		{"an edge of files is the operator's", EdgeConfig{TLS: EdgeFiles}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := NeedsSelfSigned(tc.edge, tc.hasKey, now)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.want, why != "", "a reason is given when one is issued")
		})
	}
}
