package stacks

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTheNearestKeyIgnoresCaseAndSeparators(t *testing.T) {
	keys := []Key{{Name: "appReplicas"}, {Name: "appPort"}, {Name: "redisImage"}, {Name: "backup"}}
	for _, tc := range []struct {
		spelled []string
		want    string
	}{
		{[]string{"app.replicas"}, "appReplicas"},
		{[]string{"APP_PORT"}, "appPort"},
		{[]string{"redis-image"}, "redisImage"},
		{[]string{"backups", "backups.interval"}, "backup"},
	} {
		assert.Equal(t, tc.want, nearestKey(tc.spelled, keys), "%v", tc.spelled)
	}
}

func TestAnObjectKeyIsSpelledByEachPathToALeaf(t *testing.T) {
	assert.ElementsMatch(t, []string{"app", "app.replicas", "app.image.tag"}, spellings("app", `{"replicas": 3, "image": {"tag": "x"}}`))
	assert.Equal(t, []string{"appReplicas"}, spellings("appReplicas", "3"), "a scalar is its name alone")
}
