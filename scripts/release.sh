#!/usr/bin/env bash
# release.sh: static release binaries, and the check that they are
# reproducible.
#
#   scripts/release.sh dist [DIR]     build DIR (default dist/):
#       nixglhost-VERSION-linux-{amd64,arm64,386,arm}, static (CGO_ENABLED=0,
#       -trimpath, -buildvcs=false, -buildid=, version and commit stamped),
#       the completions and man page (go run ./internal/cli/gen), the
#       systemd unit (nixglhost-run-opengl-driver.service, for
#       /usr/local/bin), the install guide INSTALL.md (docs/INSTALL.md) and
#       SHA256SUMS of them all; then runs each binary's --version (natively
#       where this kernel runs the architecture, else under qemu-user:
#       internal/archrun). Only these files are written; others in DIR are
#       left alone and not summed.
#   scripts/release.sh check [--fresh]
#       build amd64 and arm64 twice, once in this tree and once in a copy of
#       it at another path with another Go build cache, and compare the
#       bytes; run each (arm64 under qemu-aarch64, see archrun below). The second cache is kept
#       in .cache/reproducible so that later runs recompile only what
#       changed (each cache still compiles every package on its own);
#       --fresh uses two new empty caches and two copies instead (slow: the
#       standard library is compiled four times).
#
# Releases are tagged vX.Y.Z and carry the version X.Y.Z (`make release
# VERSION=X.Y.Z`, which sets TAGGED=1): dist then refuses unless VERSION is
# X.Y.Z or X.Y.Z-PRERELEASE, the tag vVERSION names HEAD and the tree is
# clean, so that the binaries are the tag's. Without TAGGED, a snapshot:
# VERSION and COMMIT come from the environment (the Makefile passes them),
# else from git (git describe, less the tag's "v"). ARCHES (default "amd64
# arm64 386 arm") limits dist to some architectures.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}
described=$(git describe --tags --always --dirty 2>/dev/null || true)
described=${described#v}
VERSION=${VERSION:-${described:-dev}}
COMMIT=${COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
ldflags="-s -w -buildid= -X main.version=$VERSION -X main.commit=$COMMIT"

# build SRC GOARCH OUT [GOCACHE]: one static binary of SRC's cmd/nixglhost.
build() {
  local src=$1 arch=$2 out=$3 cache=${4:-}
  local -a env=(CGO_ENABLED=0 GOOS=linux "GOARCH=$arch" GOFLAGS='')
  [[ $arch == arm ]] && env+=(GOARM=7)
  [[ -n $cache ]] && env+=("GOCACHE=$cache")
  (cd "$src" && env "${env[@]}" "$GO" build -trimpath -buildvcs=false \
    -ldflags "$ldflags" -o "$out" ./cmd/nixglhost)
}

# archrun ARCH BIN ARG...: run a linux/ARCH binary the way the tests do
# (internal/archrun): natively where this kernel runs ARCH, found by
# executing a tiny program, else under qemu-user. build_archrun builds it
# (into the git-ignored .cache/) before the first use.
archrun_bin=$root/.cache/archrun/archrun
build_archrun() {
  mkdir -p "$(dirname "$archrun_bin")"
  (cd "$root" && GOFLAGS='' CGO_ENABLED=0 "$GO" build -o "$archrun_bin" ./internal/archrun/cmd/archrun)
}
archrun() { "$archrun_bin" "$@"; }

# check_version BIN ARCH: BIN --version must print this version and commit.
check_version() {
  local bin=$1 arch=$2 how out want
  how=$(archrun -describe "$arch") || return 1
  want="nixglhost $VERSION (commit $COMMIT)"
  out=$(archrun "$arch" "$bin" --version)
  out=${out%%$'\n'*} # the first line: version and commit
  if [[ $out != "$want" ]]; then
    echo "release.sh: $bin --version printed '$out', want '$want'" >&2
    return 1
  fi
  echo "release.sh: $bin --version ($how): $out"
}

# copy_tree DEST: the working tree's tracked and untracked-but-not-ignored
# files, as the build sees them.
copy_tree() {
  mkdir -p "$1"
  git ls-files -z --cached --others --exclude-standard |
    tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$1"
}

# check_tagged: VERSION is a release version whose tag vVERSION names HEAD
# of a clean tree, and COMMIT is HEAD's.
check_tagged() {
  local head tagged
  if ! [[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
    echo "release.sh: VERSION=$VERSION is not a release version (X.Y.Z or X.Y.Z-PRERELEASE, tagged vX.Y.Z)" >&2
    return 1
  fi
  head=$(git rev-parse HEAD)
  if ! tagged=$(git rev-parse -q --verify "refs/tags/v$VERSION^{commit}"); then
    echo "release.sh: no tag v$VERSION: tag the release first (git tag -a v$VERSION)" >&2
    return 1
  fi
  if [[ $tagged != "$head" ]]; then
    echo "release.sh: tag v$VERSION is $tagged, not HEAD ($head): check it out first" >&2
    return 1
  fi
  if [[ -n $(git status --porcelain) ]]; then
    echo "release.sh: the tree has changes or untracked files; a release is built from the tag alone:" >&2
    git status --short >&2
    return 1
  fi
  if [[ $head != "$COMMIT"* ]]; then
    echo "release.sh: COMMIT=$COMMIT is not HEAD ($head)" >&2
    return 1
  fi
}

dist() {
  local out=${1:-dist} arches=${ARCHES:-amd64 arm64 386 arm} arch bin
  local -a files=()
  if [[ ${TAGGED:-} == 1 ]]; then
    check_tagged
  fi
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  build_archrun
  for arch in $arches; do
    bin=nixglhost-$VERSION-linux-$arch
    build "$root" "$arch" "$out/$bin"
    files+=("$bin")
  done
  (GOFLAGS='' CGO_ENABLED=0 "$GO" run ./internal/cli/gen -out "$out" -version "$VERSION")
  files+=(nixglhost.1 nixglhost.bash nixglhost.fish _nixglhost)
  sed 's|@bindir@|/usr/local/bin|g' nix/nixglhost-run-opengl-driver.service >"$out/nixglhost-run-opengl-driver.service"
  sed "s|@VERSION@|$VERSION|g" docs/INSTALL.md >"$out/INSTALL.md"
  files+=(nixglhost-run-opengl-driver.service INSTALL.md)
  (cd "$out" && sha256sum "${files[@]}" >SHA256SUMS)
  for arch in $arches; do
    bin=$out/nixglhost-$VERSION-linux-$arch
    if [[ $(file -b "$bin" 2>/dev/null || echo statically) != *statically* ]]; then
      echo "release.sh: $bin is not statically linked" >&2
      return 1
    fi
    check_version "$bin" "$arch"
  done
  echo "release.sh: release $VERSION (commit $COMMIT) in $out:"
  (cd "$out" && ls -l "${files[@]}" SHA256SUMS)
}

check() {
  local fresh=0 a_src a_cache b_src b_cache fail=0
  [[ ${1:-} == --fresh ]] && fresh=1
  build_archrun
  tmp=$(mktemp -d)
  # Go's module cache is read-only; make it removable.
  trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
  if ((fresh)); then
    a_src=$tmp/a/src a_cache=$tmp/a/gocache
    b_src=$tmp/second-build-at-a-longer-path/src b_cache=$tmp/b/gocache
    copy_tree "$a_src"
  else
    a_src=$root a_cache=
    b_src=$tmp/second-build-at-a-longer-path/src b_cache=$root/.cache/reproducible/gocache
  fi
  copy_tree "$b_src"
  for arch in amd64 arm64; do
    build "$a_src" "$arch" "$tmp/one-$arch" "$a_cache"
    build "$b_src" "$arch" "$tmp/two-$arch" "$b_cache"
    if cmp -s "$tmp/one-$arch" "$tmp/two-$arch"; then
      echo "release.sh: linux/$arch: two builds are byte-identical ($(sha256sum <"$tmp/one-$arch" | cut -c1-16)...)"
    else
      echo "release.sh: linux/$arch: the two builds differ:" >&2
      cmp "$tmp/one-$arch" "$tmp/two-$arch" | head -1 >&2 || true
      fail=1
    fi
    check_version "$tmp/one-$arch" "$arch" || fail=1
  done
  return "$fail"
}

case ${1:-} in
dist)
  shift
  dist "$@"
  ;;
check)
  shift
  check "$@"
  ;;
*)
  echo "usage: scripts/release.sh dist [DIR] | check [--fresh]" >&2
  exit 2
  ;;
esac
