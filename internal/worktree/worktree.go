// Package worktree copies the project as its user has it, for tests that run its commands in a
// fresh directory: the mock suite's deploy.sh tests and the real-engine suite.
package worktree

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Copy writes the files of the git work tree at root that git tracks or would track (what a
// deploy builds, bin/ and the state, is ignored) into dir, each with its mode. A tracked file
// deleted in the work tree is left out.
func Copy(root, dir string) error {
	files, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("listing the files of %s: %w", root, err)
	}
	for _, f := range strings.Fields(string(files)) {
		src, dst := filepath.Join(root, f), filepath.Join(dir, f)
		info, err := os.Stat(src)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, info.Mode()); err != nil {
			return err
		}
	}
	return nil
}
