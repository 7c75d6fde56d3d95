package stacks

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/components"
)

func TestEveryRowIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Registry {
		t.Run(s.Name, func(t *testing.T) {
			assert.False(t, seen[s.Name], "one row per service")
			seen[s.Name] = true
			assert.True(t, (s.Image == "") != (s.ImageOf == ""), "an image of its own, or another's")
			if s.ImageOf != "" {
				_, ok := lookup(Registry, s.ImageOf)
				assert.True(t, ok, "ImageOf names a row")
			}
			for _, after := range s.After {
				_, ok := lookup(Registry, after)
				assert.True(t, ok, "After names a row: %s", after)
			}
			assert.True(t, s.Publish == "" || s.Publishable, "a default binding for a publishable service only")
			assert.NotEmpty(t, s.Networks, "it joins a network of the platform's, never the default bridge")
			assert.Subset(t, components.NetworkRoles, s.Networks, "the platform's networks")
			for _, amount := range []string{s.Resources.Limits.CPUs, s.Resources.Limits.Memory, s.Resources.Reservations.CPUs, s.Resources.Reservations.Memory} {
				assert.NotEmpty(t, amount, "a full row of limits and reservations")
			}
		})
	}
}

func TestServicesAreDeclaredAfterWhatTheyWaitFor(t *testing.T) {
	c := &Config{registry: Registry, App: AppConfig{Replicas: 2}, Backup: BackupConfig{Enabled: true}, Target: components.DockerEngine{}}
	position := map[string]int{}
	for i, s := range c.running() {
		position[s.Name] = i
	}
	require.Len(t, position, len(Registry), "every row runs with two app instances and backups")
	for _, s := range Registry {
		for _, after := range s.After {
			assert.Less(t, position[after], position[s.Name], "%s after %s", s.Name, after)
		}
	}
}
