// Command infra is the Pulumi program that deploys the Maricusco trading system on Docker. Given a
// step's name, it is that step of deploy.sh instead (package deploysteps): the language host runs
// the program without arguments.
package main

import (
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/maricusco/infra/deploysteps"
	"github.com/maricusco/infra/stacks"
)

func main() {
	if len(os.Args) > 1 {
		os.Exit(deploysteps.Run(os.Args[1], os.Args[2:], os.Stderr))
	}
	pulumi.Run(stacks.Run)
}
