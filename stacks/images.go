package stacks

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// ImageRefs are the images a stack deploys, by service: each image key's value in the stack file
// (Pulumi.<stack>.yaml), or the program's default for the key.
func ImageRefs(stackFile []byte) (map[string]string, error) {
	var doc struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(stackFile, &doc); err != nil {
		return nil, fmt.Errorf("stack file: %w", err)
	}
	refs := map[string]string{}
	for _, k := range Keys() {
		service, isImage := strings.CutSuffix(k.Name, "Image")
		if !isImage {
			continue
		}
		ref, _ := k.Default.(string)
		if v, ok := doc.Config[Namespace+":"+k.Name].(string); ok {
			ref = v
		}
		refs[service] = ref
	}
	return refs, nil
}
