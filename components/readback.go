package components

import (
	"math/big"
	"strings"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The docker provider (kreuzwerker/terraform-provider-docker, the upstream of pulumi-docker
// v4.10.0, commit 7e649b03) reads a container back from the engine right after creating it and
// on every refresh, and most container fields force a replacement when they differ. So every
// field is sent in exactly the form the provider reads back: anything else replaces the
// container on the next `up` (internal/provider/resource_docker_container_funcs.go, the Read
// function, lines 700-860).

// CPUsAsReadBack is the CPU limit as the provider reads NanoCPUs back (helpers.go:149,
// nanoInt64ToDecimalString): nine decimals with trailing zeros cut, except that a value whose
// nine-decimal form holds exactly nine zeros is written with one decimal ("2.0", "0.5").
func (r Resources) CPUsAsReadBack() string {
	rat := new(big.Rat).SetFrac64(int64(r.CPULimit), 1e9)
	if rat.Sign() == 0 {
		return "0"
	}
	s := rat.FloatString(9)
	if strings.Count(s, "0") == 9 {
		return rat.FloatString(1)
	}
	return strings.TrimRight(s, "0")
}

// MemorySwapMB is memory plus swap, stated as Docker fills it in when only a memory limit is
// given (twice the limit, as compose deploys it): the provider reads MemorySwap back, and an
// unset memorySwap then differs from the state.
func (r Resources) MemorySwapMB() int { return 2 * r.MemoryLimit.MiB() }

// healthcheck is Docker's healthcheck with the platform's timing. Durations are written by Go's
// time.Duration.String, as the provider reads them back ("1m0s"). A zero start interval is left
// out: the engine then gets none, which an engine before API 1.44 requires.
func healthcheck(h HealthTiming, test []string) docker.ContainerHealthcheckArgs {
	hc := docker.ContainerHealthcheckArgs{
		Tests:       pulumi.ToStringArray(test),
		Interval:    pulumi.String(h.Interval.String()),
		Timeout:     pulumi.String(h.Timeout.String()),
		Retries:     pulumi.Int(h.Retries),
		StartPeriod: pulumi.String(h.StartPeriod.String()),
	}
	if h.StartInterval > 0 {
		hc.StartInterval = pulumi.String(h.StartInterval.String())
	}
	return hc
}
