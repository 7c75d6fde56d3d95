package components

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

var configNameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// swarmFiles are the configs and secrets a service mounts.
type swarmFiles struct {
	configs docker.ServiceTaskSpecContainerSpecConfigArray
	secrets docker.ServiceTaskSpecContainerSpecSecretArray
}

// add declares f as a Docker config, or a Docker secret when f is secret, and mounts it at
// f.Path(). Both are immutable, so the Docker name carries a hash of the file's whole path and
// content: a new content is a new object, the service rolls onto it, and the old one goes. The
// hash is keyed with the stack's naming key: an unkeyed one would let whoever reads
// `docker secret ls` or the state confirm a guessed password offline.
func (m *swarmFiles) add(ctx *pulumi.Context, name, service string, f File, owner string, key pulumi.StringInput, opts []pulumi.ResourceOption) (pulumi.Resource, error) {
	if key == nil {
		return nil, fmt.Errorf("%s: no naming key for its configs and secrets", service)
	}
	base := configNameUnsafe.ReplaceAllString(path.Base(f.Name), "-")
	if len(base) > 24 {
		base = base[:24]
	}
	child := name + "-" + configNameUnsafe.ReplaceAllString(f.Name, "-")
	// The hash of a secret is not the secret, so the name is shown as the plain string it is.
	dockerName := pulumi.Unsecret(pulumi.All(f.Content, key).ApplyT(func(in []any) string {
		return service + "-" + base + "-" + contentTag(in[1].(string), f.Path(), in[0].(string))
	}).(pulumi.StringOutput)).(pulumi.StringOutput)
	data := f.Content.ToStringOutput().ApplyT(func(content string) string {
		return base64.StdEncoding.EncodeToString([]byte(content))
	}).(pulumi.StringOutput)
	// A config is for anyone in the container to read; a secret is its reader's alone.
	const readOnly, ownerOnly = 0o444, 0o400
	// The bridge asks to delete an explicitly named object before creating its replacement
	// (pulumi-terraform-bridge v3.116.0, tfbridge/schema.go, nameRequiresDeleteBeforeReplace),
	// and Docker refuses to delete a secret a service mounts: the new object comes first, the
	// services move to it, and the old one goes at the end.
	opts = append(slices.Clip(opts), pulumi.DeleteBeforeReplace(false))
	if f.Secret {
		s, err := docker.NewSecret(ctx, child, &docker.SecretArgs{Name: dockerName, Data: pulumi.ToSecret(data).(pulumi.StringOutput)}, opts...)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", f.Name, err)
		}
		m.secrets = append(m.secrets, docker.ServiceTaskSpecContainerSpecSecretArgs{
			SecretId: s.ID(), SecretName: s.Name, FileName: pulumi.String(f.Path()),
			FileMode: pulumi.Int(ownerOnly), FileUid: pulumi.String(owner), FileGid: pulumi.String("0"),
		})
		return s, nil
	}
	c, err := docker.NewServiceConfig(ctx, child, &docker.ServiceConfigArgs{Name: dockerName, Data: data}, opts...)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", f.Name, err)
	}
	m.configs = append(m.configs, docker.ServiceTaskSpecContainerSpecConfigArgs{
		ConfigId: c.ID(), ConfigName: c.Name, FileName: pulumi.String(f.Path()),
		FileMode: pulumi.Int(readOnly), FileUid: pulumi.String("0"), FileGid: pulumi.String("0"),
	})
	return c, nil
}

// contentTag is 12 hex digits of the HMAC-SHA256, under key, of a file's path and content.
func contentTag(key, path, content string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(path + "\x00" + content))
	return hex.EncodeToString(mac.Sum(nil))[:12]
}

// shortDuration writes d as the provider reads a service's durations back (kreuzwerker v3.8.0,
// resource_docker_service_structures.go, shortDur): time.Duration.String without a trailing
// "0s" or "0m" ("1m", not "1m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
