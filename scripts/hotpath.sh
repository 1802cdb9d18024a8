#!/usr/bin/env bash
# hotpath.sh: which functions and files a cold and a hot launch run, from
# a coverage build of nixglhost (go build -cover) on the fake Debian root of
# the real 535 driver: `-p` once cold (builds the entry), once hot (the
# index holds). docs/DESIGN.md ("Packages") quotes its hot-path list.
#
# Usage: scripts/hotpath.sh [-v]   (-v lists the functions too; needs go
#        and the fixtures of scripts/fetch-nvidia.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/fetch-nvidia.sh" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$here" && go build -cover -coverpkg=./... -o "$work/nixglhost" ./cmd/nixglhost)
cp -al "$here/.cache/fixtures/nvidia/amd64/root" "$work/root" 2>/dev/null || cp -a "$here/.cache/fixtures/nvidia/amd64/root" "$work/root"
for phase in cold hot; do
  mkdir -p "$work/cov-$phase"
  GOCOVERDIR=$work/cov-$phase HOME=$work XDG_CACHE_HOME=$work/cache \
    "$work/nixglhost" --driver-root "$work/root" -p >/dev/null
  go tool covdata func -i "$work/cov-$phase" | awk '$NF != "0.0%" && $1 != "total"' >"$work/$phase.txt"
  files=$(cut -d: -f1 "$work/$phase.txt" | sort -u)
  echo "$phase: $(wc -l <"$work/$phase.txt") functions in $(echo "$files" | wc -l) files"
  if [ "$phase" = hot ]; then
    echo "$files" | sed 's#.*/nixglhost/##' | tr '\n' ' '
    echo
  fi
  if [ "${1:-}" = -v ]; then sed 's#^.*/nixglhost/##' "$work/$phase.txt"; fi
done
