#!/usr/bin/env bash
# why-failed.sh LOG: what each failed test of a `go test -v` log said, its figures left out.
#
# Parallel tests interleave their output, and CI keeps only the head and a short tail of a run:
# .ci/run prints this last, so the most telling lines come last. First the lines of each failed
# test, which go's own test2json attributes to it (the `=== NAME` lines say whose output follows),
# PER_TEST at the most each, a test before its failed steps: a test logs what surrounds them (the
# swarm tests' services and tasks), a step says why it failed. Then what a timeout or a panic said:
# it ends the run before its test can fail, and names the tests still running.
set -euo pipefail
log=${1:?usage: why-failed.sh LOG [PER_TEST] (LOG: the output of go test -v)}
per_test=${2:-8}
go tool test2json <"$log" | jq -rs --argjson per "$per_test" '
  [.[] | select(.Action == "fail" and .Test) | .Test] as $failed
  | [.[] | select(.Action == "output" and .Test != null and (.Test as $t | $failed | index([$t])))
         | select(.Output | test("^\\s*(=== |--- |[^ ]+: FIGURE \\|)") | not)]
  | group_by(.Test)
  | sort_by(.[0].Test | split("/") | length)
  | .[] | .[:$per][]
  | "\(.Test): \(.Output | rtrimstr("\n"))"'
grep -E -A 8 '^panic:|test timed out' "$log" | head -n 10 || true
