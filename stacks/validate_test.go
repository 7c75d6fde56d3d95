package stacks

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTwoBindingsShareAnAddressWhenEitherIsEveryAddress(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"0.0.0.0", "127.0.0.1", true},
		{"::", "127.0.0.1", true},
		{"127.0.0.1", "::", true},
		{"::ffff:127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "192.0.2.1", false},
		{"::1", "127.0.0.1", false},
	} {
		assert.Equal(t, tc.same, sameAddresses(tc.a, tc.b), "%s %s", tc.a, tc.b)
	}
}

func TestAHostPortIsComposesNotation(t *testing.T) {
	for _, tc := range []struct {
		spec, ip string
		port     int
		err      string
	}{
		{"8000", "127.0.0.1", 8000, ""},
		{"0.0.0.0:8000", "0.0.0.0", 8000, ""},
		{"[::]:8000", "::", 8000, ""},
		{"localhost:8000", "", 0, "is not an IP address"},
		{"127.0.0.1:0", "", 0, "out of range"},
		{"127.0.0.1:65536", "", 0, "out of range"},
		{"1.2.3.4:5:6", "", 0, "is not [ip:]port"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			hp, err := parseHostPort(tc.spec)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.ip, hp.IP)
			assert.Equal(t, tc.port, hp.Port)
		})
	}
}
