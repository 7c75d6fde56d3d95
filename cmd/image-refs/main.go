// Command image-refs prints, as a JSON array, every image the given stack files deploy, taken
// from the program's image keys: the image scan in CI reads its list from here, not from a
// second list of its own.
//
//	go run ./cmd/image-refs Pulumi.dev.yaml Pulumi.prod.yaml
package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/maricusco/infra/stacks"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image-refs:", err)
		os.Exit(1)
	}
}

func run(stackFiles []string) error {
	if len(stackFiles) == 0 {
		return fmt.Errorf("name the stack files, e.g. Pulumi.dev.yaml Pulumi.prod.yaml")
	}
	unique := map[string]bool{}
	for _, path := range stackFiles {
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		refs, err := stacks.ImageRefs(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, ref := range refs {
			unique[ref] = true
		}
	}
	return json.NewEncoder(os.Stdout).Encode(slices.Sorted(maps.Keys(unique)))
}
