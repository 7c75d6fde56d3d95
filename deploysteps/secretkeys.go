package deploysteps

import (
	"flag"
	"fmt"

	"github.com/maricusco/infra/stacks"
)

// secretKeys prints the program's config keys whose values must be set with --secret, one per
// line: deploy.sh reads it to refuse `config set` of a secret in plaintext before the CLI writes
// the value into the tracked stack file.
func secretKeys(fs *flag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	for _, k := range stacks.Keys() {
		if k.Secret {
			fmt.Println(k.Name)
		}
	}
	return nil
}
