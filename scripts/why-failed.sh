#!/usr/bin/env bash
# why-failed.sh LOG: what each failed test of a `go test -v` log said, its figures left out.
#
# Parallel tests interleave their output, and CI keeps only the head and tail of a run: .ci/run
# prints this last, so that the reasons for a failure are in the tail. go's own test2json
# attributes each line to its test (the `=== NAME` lines say whose output follows); a failed test
# whose subtest failed too is left to the subtest, which says why.
set -euo pipefail
log=${1:?usage: why-failed.sh LOG (the output of go test -v)}
go tool test2json <"$log" | jq -rs '
  [.[] | select(.Action == "fail" and .Test) | .Test] as $failed
  | [$failed[] | . as $t | select(all($failed[]; startswith($t + "/") | not))] as $leaves
  | .[]
  | select(.Action == "output" and .Test != null and (.Test as $t | $leaves | index([$t])))
  | select(.Output | test("^\\s*(=== |--- |[^ ]+: FIGURE \\|)") | not)
  | "\(.Test): \(.Output | rtrimstr("\n"))"'
# A timeout or a panic ends the run before its test can fail, so it names no failed test.
grep -E '^panic:|test timed out|^FAIL[[:space:]]' "$log" || true
