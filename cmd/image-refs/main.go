// Command image-refs prints, as a JSON array, every image the given stack files deploy, taken
// from the program's image keys: the image scan in CI reads its list from here, not from a
// second list of its own.
//
//	go run ./cmd/image-refs Pulumi.dev.yaml Pulumi.prod.yaml                 # every image
//	go run ./cmd/image-refs -only app Pulumi.dev.yaml Pulumi.prod.yaml       # the app's, from its own registry
//	go run ./cmd/image-refs -except app Pulumi.dev.yaml Pulumi.prod.yaml     # the public ones
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/maricusco/infra/stacks"
)

func main() {
	only := flag.String("only", "", "print only this service's images")
	except := flag.String("except", "", "print every image but this service's")
	flag.Parse()
	if err := run(os.Stdout, *only, *except, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "image-refs:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, only, except string, stackFiles []string) error {
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
		for service, ref := range refs {
			if (only == "" || service == only) && service != except {
				unique[ref] = true
			}
		}
	}
	return json.NewEncoder(out).Encode(slices.Sorted(maps.Keys(unique)))
}
