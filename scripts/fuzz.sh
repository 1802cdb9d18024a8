#!/usr/bin/env bash
# fuzz.sh: run every fuzz target of the module, one after another.
#
# Usage: scripts/fuzz.sh [LIMIT]   (default 10s each; LIMIT is go test's
#        -fuzztime: a duration, or a count of executions such as 5000x,
#        which `make test` uses: a duration can end a run while a worker is
#        still busy and report "context deadline exceeded" as a failure)
# Prints one line per target with the executions run. New crashers are
# written under the package's testdata/fuzz/ by go test, and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
fail=0
while IFS=: read -r file func; do
  pkg=./$(dirname "$file")
  name=${func#func }
  name=${name%%(*}
  log=$(mktemp)
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -fuzzminimizetime 1s -parallel 2 "$pkg" > "$log" 2>&1; then
    execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    echo "fuzz: $pkg $name: ${execs:-?} executions (limit $t), no failure"
  else
    echo "fuzz: $pkg $name: FAILED"; cat "$log"; fail=1
  fi
  rm -f "$log"
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*(' . | sed 's|^\./||; s/($//' | sort)
exit "$fail"
