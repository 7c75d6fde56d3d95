package recovery

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Pulumi runs the Pulumi CLI (PULUMI, else pulumi on the PATH) and returns what it printed, or
// an error with what it said on stderr.
func Pulumi(args ...string) ([]byte, error) {
	cli := os.Getenv("PULUMI")
	if cli == "" {
		cli = "pulumi"
	}
	var stderr bytes.Buffer
	cmd := exec.Command(cli, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("pulumi %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// StackExport is the stack's state, as `pulumi stack export` prints it.
func StackExport(stack string) (Export, error) {
	data, err := Pulumi("stack", "export", "--stack", stack)
	if err != nil {
		return Export{}, err
	}
	return ReadExport(data)
}
