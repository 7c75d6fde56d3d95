#!/usr/bin/env bash
# Runs a Pulumi operation on one stack with the local file backend: no account, no network
# besides the Docker host and the registries the images and provider plugins come from.
#
#   PULUMI_CONFIG_PASSPHRASE=... ./deploy.sh <dev|prod> [preview|up|refresh|destroy] [pulumi flags...]
#   PULUMI_CONFIG_PASSPHRASE=... ./deploy.sh <dev|prod> config|stack <pulumi arguments...>
#
#   PULUMI_CONFIG_PASSPHRASE=... ./deploy.sh <dev|prod> backup
#   PULUMI_CONFIG_PASSPHRASE=... ./deploy.sh <dev|prod> restore [DUMP] [--yes]
#
# config and stack run `pulumi config ...` and `pulumi stack ...` on the same backend and stack
# (e.g. `./deploy.sh dev config set appReplicas 3`, `./deploy.sh prod stack output --json`).
# backup takes a verified dump of the stack's database now; restore puts the newest good dump (or
# DUMP, a file name in the backups volume) back into the running database, after a confirmation
# that names the stack and the dump (--yes skips it, for CI). Both need the docker CLI.
#
# State goes to ./.pulumi-state unless PULUMI_BACKEND_URL names another backend. The passphrase
# encrypts the stack's secrets; keep it, or the state's secrets cannot be read again.
set -euo pipefail

usage() { echo "usage: PULUMI_CONFIG_PASSPHRASE=... $0 <dev|prod> [preview|up|refresh|destroy|config|stack|backup|restore] [flags...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
stack=$1; action=${2:-preview}
shift; [ $# -ge 1 ] && shift
case "$stack" in dev|prod) ;; *) echo "unknown stack '$stack': this project ships Pulumi.dev.yaml and Pulumi.prod.yaml" >&2; usage ;; esac
case "$action" in preview|up|refresh|destroy|config|stack|backup|restore) ;; *) echo "unknown action '$action'" >&2; usage ;; esac

cd "$(dirname "$0")"
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  echo "set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE): it encrypts this stack's secrets" >&2
  exit 2
fi
PULUMI=${PULUMI:-$(command -v pulumi || true)}
[ -n "$PULUMI" ] || PULUMI=$PWD/bin/pulumi
if [ ! -x "$PULUMI" ]; then
  echo "no pulumi CLI found: install it (README: 'What a deploy needs'), or build it into bin/ with scripts/install-pulumi-cli.sh" >&2
  exit 2
fi
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
  mkdir -p .pulumi-state
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
fi
export PULUMI_SKIP_UPDATE_CHECK=true

"$PULUMI" stack select --create "$stack" --non-interactive >/dev/null
if [ "$action" = destroy ] && [[ " $* " == *" --skip-preview "* ]] &&
  [ "$("$PULUMI" config get protect --stack "$stack" 2>/dev/null)" = true ]; then
  # Without its preview, a destroy deletes every unprotected resource before it fails at the
  # protected volumes; the preview refuses before anything goes.
  echo "the $stack stack is protected: destroy it with its preview (no --skip-preview), after lifting protect (README: Volumes)" >&2
  exit 2
fi
case "$action" in backup|restore) ;; *) exec "$PULUMI" "$action" --stack "$stack" "$@" ;; esac

# backup and restore run the backup service's script in its container.
if ! container=$("$PULUMI" stack output backupContainer --stack "$stack" 2>/dev/null); then
  echo "the $stack stack runs no backup service: run '$0 $stack up' first, with backup.enabled true (the default)" >&2
  exit 2
fi
host=$("$PULUMI" stack output dockerHost --stack "$stack")
if [ "$("$PULUMI" stack output orchestrator --stack "$stack" 2>/dev/null)" = swarm ]; then
  # On a swarm the backups run as the service's task, on the data node: dockerHost must be it.
  service=$container
  container=$(docker --host "$host" ps -q --filter "label=com.docker.swarm.service.name=$service" | head -n 1)
  if [ -z "$container" ]; then
    echo "no task of $service runs on $host: point dockerHost at the node labelled maricusco.data=true (README: Running on a cluster)" >&2
    exit 2
  fi
fi
in_backup() { docker --host "$host" exec "$container" /bin/sh /run/maricusco/backup.sh "$@"; }
if [ "$action" = backup ]; then
  in_backup once
  exit
fi
yes=false dump=
for arg in "$@"; do
  case "$arg" in
    --yes|-y) yes=true ;;
    -*) echo "restore takes [DUMP] [--yes], not $arg" >&2; exit 2 ;;
    *) dump=$arg ;;
  esac
done
[ -n "$dump" ] || dump=$(in_backup newest)
if [ -z "$dump" ]; then
  echo "no good dump in the $stack stack's backups: take one with '$0 $stack backup'" >&2
  exit 1
fi
if ! $yes; then
  if [ ! -t 0 ]; then
    echo "restore replaces the $stack database's data: confirm with --yes when no one is at a terminal" >&2
    exit 2
  fi
  printf 'Restore %s into the database of the %s stack (through %s)? Its data is replaced. Type the stack name to go on: ' "$dump" "$stack" "$container" >&2
  read -r answer
  if [ "$answer" != "$stack" ]; then
    echo "not restored" >&2
    exit 1
  fi
fi
in_backup restore "$dump"
