package tests

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

var shippedStacks = []string{"dev", "prod"}

func TestShippedStacksDeploy(t *testing.T) {
	for _, name := range shippedStacks {
		t.Run(name, func(t *testing.T) {
			res := mustRun(t, loadStack(t, name))
			assert.Len(t, res.Containers(), 6)
		})
	}
}
