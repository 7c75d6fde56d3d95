package deploysteps

import (
	"fmt"

	"github.com/maricusco/infra/stacks"
)

// secretKeys prints the program's config keys whose values must be set with --secret, one per
// line: deploy.sh reads it to refuse `config set` of a secret in plaintext before the CLI writes
// the value into the tracked stack file.
func secretKeys(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: takes no arguments, got %q", errUsage, args)
	}
	for _, k := range stacks.Keys() {
		if k.Secret {
			fmt.Println(k.Name)
		}
	}
	return nil
}
