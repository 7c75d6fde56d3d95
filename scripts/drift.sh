#!/usr/bin/env bash
# Does what runs still match the stack? The nightly drift job's one command.
#
#   scripts/drift.sh <dev|prod> [report-file]
#
# Runs `./deploy.sh <stack> preview --refresh --json` and tells drift from failure by its exit
# status: 0 no drift; 1 drift, the changed resources listed (and written to report-file); 2 the
# preview itself failed (a broken key, an unreachable host), which is no drift and opens no issue.
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <dev|prod> [report-file]" >&2; exit 2; }
stack=$1
report=${2:-/dev/null}
cd "$(dirname "$0")/.." || exit 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! ./deploy.sh "$stack" preview --refresh --json --non-interactive >"$out"; then
  echo "the preview of $stack failed: this is no drift; see its output above" >&2
  exit 2
fi
# deploy.sh may print a line before pulumi's JSON document.
doc=$(sed -n '/^{/,$p' "$out")
if [ -z "$doc" ] || ! changes=$(jq -er 'if has("steps") then [.steps[] | select(.op != "same" and .op != "refresh") | "\(.op) \(.urn | split("::") | last) \(.diffReasons // [] | join(","))"] | join("\n") else error("no steps") end' <<<"$doc"); then
  echo "the preview of $stack printed no JSON document with its steps: this is no drift" >&2
  exit 2
fi
if [ -z "$changes" ]; then
  echo "no drift in $stack"
  exit 0
fi
{ echo "drift in $stack: what ./deploy.sh $stack up would change"; echo "$changes"; } | tee "$report"
exit 1
