#!/usr/bin/env bash
# Builds the Pulumi CLI from the Go module proxy into BIN_DIR (default: the project's bin/, which
# deploy.sh uses when no pulumi is on the PATH). About 10 minutes on two cores with cold caches.
#
#   scripts/install-pulumi-cli.sh [BIN_DIR]
#
# The CLI alone manages stacks, config and the local file backend. A preview or up also needs
# Pulumi's Go language host (pulumi-language-go) and the docker and random provider plugins:
# Pulumi's installer ships the language host, and the CLI downloads the plugins on first use.
set -euo pipefail
version=${PULUMI_VERSION:-3.274.1}
bin=${1:-$(cd "$(dirname "$0")/.." && pwd)/bin}
if [ -x "$bin/pulumi" ] && "$bin/pulumi" version 2>/dev/null | grep -qx "v$version"; then
  echo "pulumi v$version already in $bin"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
printf 'module pulumicli\n\ngo 1.26\n' > go.mod
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' > tools.go
go get "github.com/pulumi/pulumi/pkg/v3@v$version" "github.com/pulumi/pulumi/sdk/v3@v$version"
go mod tidy
mkdir -p "$bin"
go build -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version" \
  -o "$bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
"$bin/pulumi" version
