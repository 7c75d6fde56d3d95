package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTheAppsImagesAndThePublicOnesSplitTheList(t *testing.T) {
	files := []string{"../../Pulumi.dev.yaml", "../../Pulumi.prod.yaml"}
	list := func(only, except string) []string {
		var out bytes.Buffer
		require.NoError(t, run(&out, only, except, files))
		var refs []string
		require.NoError(t, json.Unmarshal(out.Bytes(), &refs))
		return refs
	}
	all, app, public := list("", ""), list("app", ""), list("", "app")
	assert.Equal(t, []string{"maricusco:1.0.0", "maricusco:dev"}, app, "the shipped stacks' app images")
	assert.NotContains(t, public, "maricusco:dev", "the app's image is no public one")
	assert.ElementsMatch(t, all, append(app, public...), "together they are every image")
}
