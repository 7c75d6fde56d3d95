// Command secret-keys prints the program's config keys whose values must be set with --secret,
// one per line: deploy.sh reads it to refuse `config set` of a secret in plaintext before the CLI
// writes the value into the tracked stack file.
package main

import (
	"fmt"

	"github.com/maricusco/infra/stacks"
)

func main() {
	for _, k := range stacks.Keys() {
		if k.Secret {
			fmt.Println(k.Name)
		}
	}
}
