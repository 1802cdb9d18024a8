#!/usr/bin/env bash
# vendorhash.sh: check (default) or refresh (--update) the vendorHash in
# package.nix, the hash Nix's buildGoModule pins for the vendored Go
# dependencies.
#
# buildGoModule runs `go mod vendor` on the source and takes the NAR sha256
# of the resulting vendor directory (modules.txt included). This script does
# the same here: `go mod vendor -o TMP/vendor` on the working tree, then
# `nix-store --dump TMP/vendor | sha256sum`, written as an SRI hash. The result
# depends on go.mod, go.sum and on which dependency packages the repository's
# code (tests included) imports, so re-run it after changing any of them.
#
# Needs go (the module cache or the module proxy) and nix-store (Debian's
# nix-bin; no daemon needed). Usage: scripts/vendorhash.sh [--update]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
nixfile=$root/package.nix
mode=check
case ${1:-} in
'') ;;
--update) mode=update ;;
*)
  echo "usage: scripts/vendorhash.sh [--update]" >&2
  exit 2
  ;;
esac

command -v nix-store >/dev/null || {
  echo "vendorhash.sh: nix-store not found (install Debian's nix-bin)" >&2
  exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# As in buildGoModule's go-modules derivation: no GOFLAGS, no workspace.
(cd "$root" && env GOFLAGS= GOWORK=off go mod vendor -o "$tmp/vendor")

if [[ -z "$(ls -A "$tmp/vendor" 2>/dev/null)" ]]; then
  want=null
else
  hex=$(nix-store --dump "$tmp/vendor" | sha256sum | cut -d' ' -f1)
  want=\"sha256-$(printf '%s' "$hex" | tr a-f A-F | basenc --base16 -d | base64 -w0)\"
fi

line=$(grep -E '^\s*vendorHash = ' "$nixfile") || {
  echo "vendorhash.sh: no 'vendorHash = ...;' line in $nixfile" >&2
  exit 1
}
have=$(sed -E 's/^\s*vendorHash = (.*);\s*$/\1/' <<<"$line")

if [[ $have == "$want" ]]; then
  echo "vendorhash.sh: package.nix vendorHash = $want is current"
  exit 0
fi
if [[ $mode == update ]]; then
  sed -i -E "s|^(\s*vendorHash = ).*;\s*$|\1$want;|" "$nixfile"
  echo "vendorhash.sh: package.nix vendorHash updated: $have -> $want"
  exit 0
fi
cat >&2 <<MSG
vendorhash.sh: package.nix vendorHash is stale:
  package.nix says   $have
  go.mod/go.sum give $want
go.mod, go.sum or the set of imported dependency packages changed. Refresh it
with:
  scripts/vendorhash.sh --update
and commit package.nix with the change. (With Nix at hand, 'nix build' would
say the same: set vendorHash = lib.fakeHash; and copy the 'got:' hash.)
MSG
exit 1
