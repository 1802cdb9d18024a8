#!/usr/bin/env bash
# fetch-arm64-loaders.sh: download the real dispatch libraries a program brings
# (libglvnd's libEGL, the Vulkan loader) for a foreign architecture from
# Debian 12's main component and unpack them into a sysroot under a
# git-ignored fixture directory, for the tests that run them under qemu-user
# against a fake Jetson root (this machine has them for amd64 only).
#
# The package archive's address is read from this machine's own apt sources,
# as scripts/fetch-nvidia.sh does; nothing here names a registry host.
# Idempotent: a finished arch directory is kept.
#
# Usage: scripts/fetch-arm64-loaders.sh [OUTDIR]   (default: .cache/fixtures)
# Layout: OUTDIR/loaders/<arch>/debs/*.deb, OUTDIR/loaders/<arch>/root/ (dpkg
# -x of every deb), OUTDIR/loaders/<arch>/.done. A directory made by an older
# package list (no .pkgs line equal to today's) is fetched again.
set -euo pipefail

out=${1:-$(cd "$(dirname "$0")/.." && pwd)/.cache/fixtures}
out=$(mkdir -p "$out" && cd "$out" && pwd)

# libegl1 and libglvnd0: glvnd's libEGL and libGLdispatch; libvulkan1: the
# Vulkan loader. The X libraries (libX11 and libXext with their own
# dependencies) are the host's, which NVIDIA's libGLX_nvidia (the Vulkan ICD)
# needs: the cross toolchain has none for arm64. Each depends on libc6 alone
# beside these.
pkgs=(libegl1 libglvnd0 libvulkan1 libx11-6 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0)

# shellcheck source=scripts/apt-private.sh
. "$(dirname "$0")/apt-private.sh"

fetch_arch() {
  local arch=$1 dir="$out/loaders/$1"
  if [ -f "$dir/.done" ] && [ "$(cat "$dir/.done")" = "${pkgs[*]}" ]; then
    echo "fetch-arm64-loaders: $arch already in $dir"; return 0
  fi
  local apt="$out/apt-loaders-$arch"
  rm -rf "$apt" "$dir"
  mkdir -p "$dir/debs" "$dir/root"
  apt_private fetch-arm64-loaders "$apt" "$arch" main || exit 1
  local opts=("${APT_OPTS[@]}")
  echo "fetch-arm64-loaders: $arch: reading the package index (Debian 12 main)"
  apt-get "${opts[@]}" update >/dev/null
  chmod 777 "$dir/debs"
  local p
  for p in "${pkgs[@]}"; do
    echo "fetch-arm64-loaders: $arch: $p"
    (cd "$dir/debs" && apt-get "${opts[@]}" download "$p:$arch" >/dev/null)
  done
  local d
  for d in "$dir"/debs/*.deb; do dpkg -x "$d" "$dir/root"; done
  rm -rf "$apt"
  echo "${pkgs[*]}" > "$dir/.done"
  echo "fetch-arm64-loaders: $arch: ${#pkgs[@]} packages in $dir/root"
}

for a in ${LOADER_ARCHES:-arm64}; do fetch_arch "$a"; done
