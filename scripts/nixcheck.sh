#!/usr/bin/env bash
# nixcheck.sh: the checks of the Nix packaging that run without Nix's store,
# daemon or network (Debian's nix-bin is enough), for `make test`:
#   1. flake.nix, default.nix, package.nix, nix/*.nix and testdata/nix/*.nix
#      parse (nix-instantiate --parse);
#   2. they evaluate against a stand-in for nixpkgs (nix/eval-check.nix),
#      the modules against a stand-in for the module system
#      (nix/modules-check.nix);
#   3. package.nix's vendorHash matches go.mod/go.sum (scripts/vendorhash.sh);
#   4. package.nix's source fileset holds every tracked Go, C and assembly
#      file (a new top-level directory must be added there);
#   5. the packaging scripts are shellcheck-clean, where shellcheck is
#      installed.
# Without nix-instantiate it skips, or fails when NIXGLHOST_REQUIRE_FIXTURES=1
# (as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
export NIX_CONFIG='build-users-group ='

if ! command -v nix-instantiate >/dev/null; then
  msg="nix-instantiate not installed (Debian: apt-get install nix-bin)"
  if [[ ${NIXGLHOST_REQUIRE_FIXTURES:-} == 1 ]]; then
    echo "nixcheck.sh: FAIL: $msg" >&2
    exit 1
  fi
  echo "nixcheck.sh: SKIP: $msg" >&2
  exit 0
fi

fail=0
for f in flake.nix default.nix package.nix nix/*.nix testdata/nix/*.nix; do
  if ! nix-instantiate --parse "$f" >/dev/null; then
    echo "nixcheck.sh: $f does not parse" >&2
    fail=1
  fi
done

for check in nix/eval-check.nix nix/modules-check.nix; do
  if ! out=$(nix-instantiate --eval --strict "$check") || [[ $out != true ]]; then
    echo "nixcheck.sh: $check did not evaluate to true: $out" >&2
    fail=1
  fi
done

scripts/vendorhash.sh || fail=1

# The fileset's top-level entries, from the lines "./name" in package.nix.
mapfile -t roots < <(sed -nE 's|^\s*\./([^ ;]+)$|\1|p' package.nix)
while read -r top; do
  found=0
  for r in "${roots[@]}"; do
    [[ $top == "$r" ]] && found=1
  done
  if ((found == 0)); then
    echo "nixcheck.sh: $top/ holds Go, C or assembly files but is not in package.nix's src fileset" >&2
    fail=1
  fi
done < <(git ls-files -- '*.go' '*.c' '*.h' '*.s' | grep / | cut -d/ -f1 | sort -u)

if command -v shellcheck >/dev/null; then
  shellcheck scripts/nixcheck.sh scripts/vendorhash.sh scripts/release.sh nix/nixglhost-wrap-hook.sh || fail=1
else
  echo "nixcheck.sh: shellcheck not installed; scripts not linted" >&2
fi

if ((fail)); then
  exit 1
fi
echo "nixcheck.sh: ok"
