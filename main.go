// Command maricusco is the Pulumi program that deploys the Maricusco trading system on Docker.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/maricusco/infra/stacks"
)

func main() {
	pulumi.Run(stacks.Run)
}
