package stacks

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// stackKeys are the names of every key the CLI hands the program, with each object key's value
// (for the dotted paths it holds). The CLI passes the whole config as JSON in PULUMI_CONFIG; the
// SDK reads values from it but lists no keys, so this reads it too.
func stackKeys() (map[string]string, error) {
	raw := os.Getenv(pulumi.EnvConfig)
	if raw == "" {
		return nil, nil
	}
	var all map[string]string
	if err := json.Unmarshal([]byte(raw), &all); err != nil {
		return nil, fmt.Errorf("%s: %w", pulumi.EnvConfig, err)
	}
	return all, nil
}

// checkUnknownKeys refuses every key of this project's namespace that the program does not read
// (a typo, or `--path app.replicas` for appReplicas), naming the nearest key it does read.
func checkUnknownKeys(r *reader, configured map[string]string) {
	known := map[string]bool{}
	for _, k := range r.keys {
		known[k.Name] = true
	}
	for _, full := range slices.Sorted(maps.Keys(configured)) {
		name, ours := strings.CutPrefix(full, Namespace+":")
		if !ours || known[name] {
			continue
		}
		spelled := spellings(name, configured[full])
		r.fail(name, "is not a key of this program, so it would be ignored; did you mean %s? Remove it with `pulumi config rm %s` (docs/configuration.md)",
			nearestKey(spelled, r.keys), name)
	}
}

// spellings are the ways a user may have meant a key: its name and, for an object, each dotted
// path to a leaf (app.replicas). Values are not looked at beyond their shape: they may be secret.
func spellings(name, value string) []string {
	out := []string{name}
	var obj map[string]any
	if json.Unmarshal([]byte(value), &obj) != nil {
		return out
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			out = append(out, prefix)
			return
		}
		for k, child := range m {
			walk(prefix+"."+k, child)
		}
	}
	walk(name, obj)
	return out
}

// nearestKey is the known key closest to any of the spellings, compared without case and
// separators, so app.replicas finds appReplicas.
func nearestKey(spelled []string, keys []Key) string {
	fold := func(s string) string {
		return strings.ToLower(strings.NewReplacer(".", "", "_", "", "-", "").Replace(s))
	}
	best, bestDistance := "", -1
	for _, s := range spelled {
		for _, k := range keys {
			d := levenshtein.Distance(fold(s), fold(k.Name), nil)
			if bestDistance < 0 || d < bestDistance || (d == bestDistance && k.Name < best) {
				best, bestDistance = k.Name, d
			}
		}
	}
	return best
}
