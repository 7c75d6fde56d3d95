package components

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseNanoCPUs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want NanoCPUs
		err  string
	}{
		{"2.0", 2e9, ""},
		{"0.5", 5e8, ""},
		{" 0.25 ", 25e7, ""},
		{"0.000000001", 1, ""},
		{"0.0000000001", 0, "finer than a billionth"},
		{"0", 0, "not a CPU count"},
		{"-1", 0, "not a CPU count"},
		{"two", 0, "not a CPU count"},
		{"1e30", 0, "too large"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseNanoCPUs(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseUnitBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want UnitBytes
		ok   bool
	}{
		{"4G", 4 << 30, true},
		{"512M", 512 << 20, true},
		{"1.5G", 3 << 29, true},
		{"64k", 64 << 10, true},
		{"4GB", 0, false},
		{"0M", 0, false},
		{"10", 0, false},
		{"-1G", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseUnitBytes(tc.in)
			assert.Equal(t, tc.ok, err == nil, "%v", err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestUnitBytesPrintsInTheLargestUnitThatDividesIt(t *testing.T) {
	for in, want := range map[UnitBytes]string{4 << 30: "4G", 512 << 20: "512M", 3 << 29: "1536M", 1000: "1000b", 2 << 10: "2K"} {
		assert.Equal(t, want, in.String())
	}
}

func TestCPUsAreWrittenAsTheProviderReadsThemBack(t *testing.T) {
	// kreuzwerker v3.8.0, internal/provider/helpers.go:149, nanoInt64ToDecimalString: a value
	// whose nine-decimal form has exactly nine zeros gets one decimal, which loses some values
	// (a thousandth of a CPU reads back as "0.0"); others lose their trailing zeros, so ten CPUs
	// read back as "10.".
	for cpus, want := range map[NanoCPUs]string{2e9: "2.0", 5e8: "0.5", 125e7: "1.25", 1e6: "0.0", 1: "0.0", 10e9: "10.", 0: "0"} {
		assert.Equal(t, want, Resources{CPULimit: cpus}.CPUsAsReadBack(), "%d", cpus)
	}
}

func TestACPUReservationIsAWeightOf1024PerCPU(t *testing.T) {
	assert.Equal(t, 512, Resources{CPUReservation: 5e8}.CPUShares())
	assert.Equal(t, 2048, Resources{CPUReservation: 2e9}.CPUShares())
	assert.Equal(t, 2*4096, Resources{MemoryLimit: 4 << 30}.MemorySwapMB(), "memory and swap: twice the limit, as Docker fills it in")
}

func TestSomeCPULimitsDoNotSurviveTheProvidersReadBack(t *testing.T) {
	for cpus, kept := range map[NanoCPUs]bool{1e7: false, 5e7: false, 1e8: true, 15e7: true, 5e8: true, 2e9: true, 10e9: true, 125e7: true} {
		assert.Equal(t, kept, keptOnReadBack(cpus), "%s", cpus)
	}
	problems := DockerEngine{}.Check(Plan{Services: []PlannedService{{Name: "redis", Resources: Resources{CPULimit: 5e7}}}})
	require.Len(t, problems, 1)
	assert.Equal(t, "resources.redis.limits.cpus", problems[0].Key)
	assert.Contains(t, problems[0].Message, "such as 0.10", "the next amount it keeps")
}
