package deploysteps

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/maricusco/infra/stacks"
)

// edgeCert gives a self-signed edge its certificate: when the stack's edge is
// self-signed (the default) and has no certificate, or one that no longer covers edge.hostname or
// is about to expire, it issues one and sets edge.certificate and the secret edgePrivateKey with
// the Pulumi CLI, so the stack keeps it, encrypted, across ups. deploy.sh runs it before preview
// and up; it does nothing for an edge of files, which are the operator's.
//
//	bin/infra edge-cert -stack dev
func edgeCert(fs *flag.FlagSet, args []string) error {
	stack, err := parseStack(fs, args, "the stack (dev, prod): its Pulumi.<stack>.yaml is read, and its config set")
	if err != nil {
		return err
	}
	file := "Pulumi." + stack + ".yaml"
	raw, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	var doc struct {
		Config map[string]yaml.Node `yaml:"config"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	var edge stacks.EdgeConfig
	if node, ok := doc.Config[stacks.Namespace+":edge"]; ok {
		if err := node.Decode(&edge); err != nil {
			return fmt.Errorf("%s: maricusco:edge cannot be read: %w", file, err)
		}
	}
	_, hasKey := doc.Config[stacks.Namespace+":"+stacks.EdgePrivateKeyKey]
	needed, why := stacks.NeedsSelfSigned(edge, hasKey, time.Now())
	if !needed {
		return nil
	}
	hostname := edge.Hostname
	if hostname == "" {
		hostname = "localhost"
	}
	chain, key, err := stacks.NewSelfSignedEdge(stack, hostname, time.Now())
	if err != nil {
		return err
	}
	// Values go through stdin: a key on the command line would show in the process list.
	if err := pulumiWithInput(stack, chain, "config", "set", "--path", "edge.certificate"); err != nil {
		return err
	}
	if err := pulumiWithInput(stack, key, "config", "set", "--secret", stacks.EdgePrivateKeyKey); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "edge: issued a self-signed certificate for %s, localhost and 127.0.0.1 (%s); clients trust the stack output tlsCertificate\n", hostname, why)
	return nil
}

// pulumiWithInput runs the Pulumi CLI (PULUMI, or pulumi on the PATH) on the stack with stdin as
// input.
func pulumiWithInput(stack, stdin string, args ...string) error {
	bin := os.Getenv("PULUMI")
	if bin == "" {
		bin = "pulumi"
	}
	cmd := exec.Command(bin, append(args, "--stack", stack)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pulumi %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
