#!/usr/bin/env bash
# fetch-i386-loaders.sh: download Debian 12's 32-bit (i386) VDPAU and GBM
# loaders (libvdpau1, libgbm1 and the libraries they need) and NVIDIA's
# 32-bit VDPAU driver and GBM allocator, and unpack them under a git-ignored
# fixture directory: the tests of the 32-bit companion entry load them with
# the real 32-bit loaders, run natively or under qemu-i386.
#
# The package archive's address is read from this machine's own apt sources,
# as scripts/fetch-nvidia.sh does; nothing here names a registry host.
# Idempotent: a finished directory is kept.
#
# Usage: scripts/fetch-i386-loaders.sh [OUTDIR]   (default: .cache/fixtures)
# Layout: OUTDIR/i386-loaders/debs/*.deb, OUTDIR/i386-loaders/root/ (dpkg -x
# of every deb), OUTDIR/i386-loaders/.done
set -euo pipefail

out=${1:-$(cd "$(dirname "$0")/.." && pwd)/.cache/fixtures}
out=$(mkdir -p "$out" && cd "$out" && pwd)
dir="$out/i386-loaders"
if [ -f "$dir/.done" ]; then echo "fetch-i386-loaders: already in $dir"; exit 0; fi

# The loaders and their closure (libc6 comes from the machine's libc6-i386),
# then NVIDIA's 32-bit backends of the same driver as fetch-nvidia.sh's.
pkgs=(
  libvdpau1 libx11-6 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0
  libgbm1 libdrm2 libexpat1 libwayland-server0 libffi8
  nvidia-vdpau-driver libnvidia-allocator1
)

# shellcheck source=scripts/apt-private.sh
. "$(dirname "$0")/apt-private.sh"

apt="$out/apt-i386-loaders"
rm -rf "$apt" "$dir"
mkdir -p "$dir/debs" "$dir/root"
apt_private fetch-i386-loaders "$apt" i386 "main non-free" || exit 1
opts=("${APT_OPTS[@]}")
echo "fetch-i386-loaders: reading the package index (Debian 12 main and non-free, i386)"
apt-get "${opts[@]}" update >/dev/null
chmod 777 "$dir/debs"
for p in "${pkgs[@]}"; do
  echo "fetch-i386-loaders: $p:i386"
  (cd "$dir/debs" && apt-get "${opts[@]}" download "$p:i386" >/dev/null)
done
for d in "$dir"/debs/*.deb; do dpkg -x "$d" "$dir/root"; done
rm -rf "$apt"
touch "$dir/.done"
echo "fetch-i386-loaders: ${#pkgs[@]} packages in $dir"
