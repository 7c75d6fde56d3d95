#!/usr/bin/env bash
# The mock suite as a newcomer runs it: `go test ./...`, after installing, on Debian or Ubuntu, the
# packages whose real tools the tests run (promtool from prometheus, nginx, a PostgreSQL server,
# busybox, redis-server, shellcheck, jq) when one is missing. Its arguments go to `go test`.
# Elsewhere (macOS) it says which to install, or run it in a Debian container (README.md, Tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/sbin
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v nginx >/dev/null || missing+=(nginx)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v busybox >/dev/null || missing+=(busybox)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v jq >/dev/null || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "scripts/test.sh: the tests run these Debian packages' tools, which this machine lacks: ${missing[*]}; install them, or run the tests in a Debian container (README.md, Tests)" >&2
    exit 1
  fi
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  echo "scripts/test.sh: installing ${missing[*]}" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
exec go test ./... "$@"
