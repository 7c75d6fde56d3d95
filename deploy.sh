#!/usr/bin/env bash
# Runs a Pulumi operation on one stack with the local file backend: no account, no network
# besides the Docker host and the registries the images and provider plugins come from.
#
#   PULUMI_CONFIG_PASSPHRASE=... ./deploy.sh <dev|prod> [preview|up|refresh|destroy] [--take-lock ID] [pulumi flags...]
#   PULUMI_CONFIG_PASSPHRASE=... ./deploy.sh <dev|prod> config|stack <pulumi arguments...>
#
#   PULUMI_CONFIG_PASSPHRASE=... ./deploy.sh <dev|prod> backup [--new-archive]
#   PULUMI_CONFIG_PASSPHRASE=... ./deploy.sh <dev|prod> restore --list | --to TIME | --latest | NAME [--yes]
#
# config and stack run `pulumi config ...` and `pulumi stack ...` on the same backend and stack
# (e.g. `./deploy.sh dev config set appReplicas 3`, `./deploy.sh prod stack output --json`).
# backup takes a verified dump and base backup now; restore brings the database back to an
# instant, to the last archived WAL, or to a named restore point, after a confirmation that names
# the stack and what it restores (--yes skips it, for CI); scripts/backups.sh says more. Both
# need the docker CLI.
#
# A second deploy of a stack while one runs on this machine is refused (exit status 3). Before it
# acts, a deploy recovers from a killed one: it removes a lock whose process is gone, stops the
# plugins that process left, and settles its pending operations from what the engine has. A lock
# held by a live process or by another host stays (exit status 3, naming it); --take-lock ID takes
# it over deliberately.
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
if [ "${CI:-}" = true ]; then
  # On a CI runner an empty secret must not turn into state kept on the runner or a deploy to the
  # runner's own Docker: a green job that deployed nothing.
  missing=()
  [ -n "${PULUMI_BACKEND_URL:-}" ] || missing+=("PULUMI_BACKEND_URL is empty: a CI job keeps no state on its runner; give the job the backend's URL (docs/ci.md)")
  if [ -z "${DOCKER_HOST:-}" ] && ! grep -q '^ *maricusco:dockerHost: *[^ ]' "Pulumi.$stack.yaml"; then
    missing+=("DOCKER_HOST is empty and Pulumi.$stack.yaml sets no dockerHost: the job would deploy to the runner's own Docker; give the job the stack's Docker host (docs/ci.md)")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'CI=true: %s\n' "${missing[@]}" >&2
    exit 2
  fi
fi
# Every Go build here takes pulumi-language-go's own flags (its compileProgram), so the program,
# its helpers and the language host's build share one compile cache: on a cold cache (a CI deploy
# job) the Pulumi SDK compiles once, not once per set of flags.
go_build=(go build -buildvcs=false -trimpath -ldflags "-w -s")

# build_program links the program into bin/infra (Pulumi.yaml's buildTarget, which the language
# host then finds up to date), which also holds the steps deploy.sh runs around Pulumi (package
# deploysteps). go build relinks only when the binary already there was not built from these
# sources (it compares build IDs), so a fresh checkout (a CI deploy job, a copy of the project)
# starts from the last binary linked on this machine, kept in the user's cache: a link costs
# about 2 s, a check 0.2 s. The cache only saves time; it is never trusted in place of go build.
program_cache=${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/maricusco/infra
build_program() {
  if [ ! -e bin/infra ] && [ -f "$program_cache" ]; then
    mkdir -p bin && cp -p "$program_cache" bin/infra 2>/dev/null || rm -f bin/infra
  fi
  "${go_build[@]}" -o bin/ . || return
  if ! cmp -s bin/infra "$program_cache"; then
    # Best effort, and atomic: a deploy beside this one reads the old binary or the new one.
    { mkdir -p "${program_cache%/*}" && cp -p bin/infra "$program_cache.$$" &&
      mv -f "$program_cache.$$" "$program_cache"; } 2>/dev/null || rm -f "$program_cache.$$"
  fi
}

# What deploy.sh passes on to pulumi acts on the stack and directory it chose: a --stack or --cwd
# of the user's would make its guards read one stack while Pulumi acts on another.
if [[ "$action" =~ ^(preview|up|refresh|destroy|config|stack)$ ]]; then
  for arg in "$@"; do
    [ "$arg" != -- ] || break
    if [[ "$arg" =~ ^--(stack|cwd)(=|$) ]] || [[ "$arg" =~ ^-[a-zA-Z]*[sC][a-zA-Z]*$ ]]; then
      echo "deploy.sh acts on the $stack stack in $PWD: drop $arg (the stack is the first argument, ./deploy.sh <dev|prod> ...)" >&2
      exit 2
    fi
  done
fi

# skips_preview ARGS: whether the flags skip the preview: --skip-preview (=true), or -f alone or
# among other one-letter flags (-yf).
skips_preview() {
  local arg
  for arg in "$@"; do
    [ "$arg" != -- ] || break
    case "$arg" in
      --skip-preview | --skip-preview=1 | --skip-preview=[tT] | --skip-preview=[tT]rue | --skip-preview=TRUE) return 0 ;;
      --*) ;;
      -*f*) [[ "$arg" =~ ^-[a-zA-Z]+$ ]] && return 0 ;;
    esac
  done
  return 1
}

# A secret set without --secret would be written into the tracked stack file before the program
# could refuse it: refuse it here, before the CLI writes anything. Keys come from the program
# (bin/infra secret-keys); with --path, the key is what comes before the first . or [.
if [ "$action" = config ] && [[ "${1:-}" =~ ^set(-all)?$ ]]; then
  secret=false path=false keys=()
  for arg in "${@:2}"; do
    case "$arg" in
      --secret) secret=true ;;
      --plaintext) secret=false ;;
      --path) path=true ;;
      -*) ;;
      *) [ "$1" = set-all ] || [ ${#keys[@]} -gt 0 ] || keys+=("$arg") ;;
    esac
  done
  if [ "$1" = set-all ]; then
    # set-all takes KEY=VALUE after each --plaintext or --secret.
    prev=
    for arg in "${@:2}"; do
      [ "$prev" != --plaintext ] || keys+=("${arg%%=*}")
      prev=$arg
    done
    secret=false
  fi
  if ! $secret && [ ${#keys[@]} -gt 0 ]; then
    build_program
    secret_keys=$(bin/infra secret-keys)
    for key in "${keys[@]}"; do
      key=${key#maricusco:}
      ! $path || key=${key%%[.[]*}
      if grep -qxF -- "$key" <<<"$secret_keys"; then
        echo "$key is a secret: set it with --secret (./deploy.sh $stack config set --secret ${key}...); nothing was written" >&2
        exit 2
      fi
    done
  fi
fi

PULUMI=${PULUMI:-$(command -v pulumi || true)}
[ -n "$PULUMI" ] || PULUMI=$PWD/bin/pulumi
if [ ! -x "$PULUMI" ]; then
  echo "no pulumi CLI found: install it (README: What a deploy needs), or build it into bin/ with scripts/install-pulumi-cli.sh" >&2
  exit 2
fi
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
  mkdir -p .pulumi-state
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
fi
export PULUMI_SKIP_UPDATE_CHECK=true

# One deploy of a stack at a time on this machine: a second is refused at once, not after minutes
# at Pulumi's lock. The pulumi child does not inherit the lock (9>&-): plugins a killed CLI leaves
# running must not keep the stack locked.
take_lock=
case "$action" in
  preview|up|refresh|destroy)
    args=()
    while [ $# -gt 0 ]; do
      case "$1" in
        --take-lock) [ $# -ge 2 ] || { echo "--take-lock needs the lock's ID (the message that refused the deploy names it)" >&2; exit 2; }
          take_lock=$2; shift 2 ;;
        --take-lock=*) take_lock=${1#--take-lock=}; shift ;;
        *) args+=("$1"); shift ;;
      esac
    done
    set -- ${args[@]+"${args[@]}"}
    ;;
esac
case "$action" in
  preview|up|refresh|destroy|backup|restore)
    lockfile=$PWD/.deploy-$stack.lock
    exec 9>>"$lockfile"
    if ! flock --nonblock 9; then
      echo "another deploy of the $stack stack runs on this machine (pid $(cat "$lockfile" 2>/dev/null || echo unknown)); wait for it to finish" >&2
      exit 3
    fi
    echo $$ >"$lockfile"
    ;;
esac

# The program is built while the CLI selects the stack.
building=
if [[ "$action" =~ ^(preview|up|refresh|destroy)$ ]]; then
  build_program 9>&- &
  building=$!
fi
"$PULUMI" stack select --create "$stack" --non-interactive >/dev/null
[ -z "$building" ] || wait "$building"
if [ "$action" = destroy ] && skips_preview "$@" &&
  [ "$("$PULUMI" config get protect --stack "$stack" 2>/dev/null)" = true ]; then
  # Without its preview, a destroy deletes every unprotected resource before it fails at the
  # protected volumes; the preview refuses before anything goes.
  echo "the $stack stack is protected: destroy it with its preview (no --skip-preview or -f), after lifting protect (docs/configuration.md, Volumes)" >&2
  exit 2
fi
case "$action" in
  preview|up|refresh|destroy)
    # A deploy killed before it could clean up leaves a lock, plugins and pending operations:
    # settle them from what this machine and the engine have (deploysteps/recover.go; README, When
    # a deploy was interrupted).
    PULUMI=$PULUMI bin/infra recover -stack "$stack" ${take_lock:+-take-lock "$take_lock"} 9>&- || exit $?
    ;;
esac
# A self-signed edge (the default) gets its certificate once, kept in the stack's config with its
# key encrypted, and a new one when it no longer covers edge.hostname or is about to expire.
if [[ "$action" =~ ^(preview|up)$ ]]; then
  PULUMI=$PULUMI bin/infra edge-cert -stack "$stack" 9>&-
fi
# preview and up read the engine first, so that a plain up recreates a container lost or removed
# out of band. Not on the swarm target yet: its services read back with a task spec that differs
# from the declared one, and every service would be replaced (docs/cluster.md).
on_swarm=false
grep -qs '^ *maricusco:orchestrator: *swarm' "Pulumi.$stack.yaml" && on_swarm=true
refresh=()
if [[ "$action" =~ ^(preview|up)$ ]] && [ "$on_swarm" = false ]; then
  refresh=(--refresh)
fi
case "$action" in
  backup|restore) PULUMI=$PULUMI bash scripts/backups.sh "$stack" "$action" "$@" 9>&- ;;
  preview) "$PULUMI" preview --stack "$stack" "${refresh[@]}" "$@" 9>&- ;;
  up)
    "$PULUMI" up --stack "$stack" "${refresh[@]}" "$@" 9>&- || exit $?
    # The provider's wait for a service ends before a start-first roll has stopped its last old
    # task: on a swarm, up returns once every service runs as declared (deploysteps/converge.go).
    if [ "$on_swarm" = true ]; then
      PULUMI=$PULUMI bin/infra converge -stack "$stack" 9>&-
    fi
    ;;
  refresh|destroy) "$PULUMI" "$action" --stack "$stack" "$@" 9>&- ;;
  *) exec "$PULUMI" "$action" --stack "$stack" "$@" ;;
esac
