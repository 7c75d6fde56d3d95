package components

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// What every workload gets whatever its target, decided once here from its ContainerSpec and the
// runtime; each target then sets these values in its own provider types, one function per concern.

// hardening is the CIS runtime rules a spec allows: every capability dropped but the ones its
// image needs, and a read-only root unless it receives files.
type hardening struct {
	drop, add []string
	readOnly  bool
}

func hardeningOf(spec ContainerSpec) hardening {
	h := hardening{drop: []string{"ALL"}, readOnly: spec.readOnlyRoot()}
	for _, c := range spec.Capabilities {
		// As Docker stores them (CAP_CHOWN), which is how the provider reads them back.
		h.add = append(h.add, "CAP_"+strings.TrimPrefix(strings.ToUpper(c), "CAP_"))
	}
	return h
}

// readOnlyRoot tells whether the container's root filesystem is read-only. The docker provider
// copies files in at "/", which Docker refuses on a read-only root filesystem, so only a
// container that receives no files is read-only (docs/hardening.md); a swarm follows the same
// rule, so an image is proven read-only once for both targets.
func (s ContainerSpec) readOnlyRoot() bool { return len(s.Files) == 0 }

// logOptions bound the json-file logs so they cannot fill the disk.
func logOptions(l Logging) pulumi.StringMap {
	return pulumi.StringMap{"max-size": pulumi.String(l.MaxSize), "max-file": pulumi.String(strconv.Itoa(l.MaxFile))}
}

// tmpfsOptions are the mount options of a writable path: no programs, no setuid, 64 MiB.
const tmpfsOptions = "rw,noexec,nosuid,size=64m"

// plainEnv is an environment of plain (not secret) values.
func plainEnv(vars map[string]string) map[string]pulumi.StringInput {
	out := make(map[string]pulumi.StringInput, len(vars))
	for k, v := range vars {
		out[k] = pulumi.String(v)
	}
	return out
}

// envList is the environment as the container API takes it: KEY=VALUE entries, sorted by name,
// a secret value's entry secret.
func envList(env map[string]pulumi.StringInput) pulumi.StringArray {
	out := make(pulumi.StringArray, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, pulumi.Sprintf("%s=%s", k, env[k]))
	}
	return out
}

// sortedLabels turns labels into the provider's label entries, made by entry, in key order so that
// the same labels always give the same inputs.
func sortedLabels[T any](labels map[string]string, entry func(label, value pulumi.String) T) []T {
	out := make([]T, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		out = append(out, entry(pulumi.String(k), pulumi.String(labels[k])))
	}
	return out
}
