#!/usr/bin/env bash
# fetch-nvidia.sh: download NVIDIA's userspace driver packages from Debian 12's
# non-free component (amd64, arm64 and the 32-bit i386 part) and unpack them under a git-ignored
# fixture directory, for the tests that need the real driver.
#
# The package archive's address is read from this machine's own apt sources
# (/etc/apt/sources.list.d/*.sources or /etc/apt/sources.list); nothing here
# names a registry host. Idempotent: a finished arch directory is kept.
#
# Usage: scripts/fetch-nvidia.sh [OUTDIR]   (default: .cache/fixtures)
# Layout: OUTDIR/nvidia/<arch>/debs/*.deb, OUTDIR/nvidia/<arch>/root/ (dpkg -x
# of every deb, i.e. a fake host root), OUTDIR/nvidia/<arch>/.done
set -euo pipefail

out=${1:-$(cd "$(dirname "$0")/.." && pwd)/.cache/fixtures}
out=$(mkdir -p "$out" && cd "$out" && pwd)

# The 535 (current) driver, the pieces DESIGN.md names, plus the rest of the
# userspace driver so the catalogue test sees every file.
pkgs_common=(
  libcuda1 libnvidia-ml1 libnvidia-ptxjitcompiler1 libnvidia-nvvm4
  libglx-nvidia0 libegl-nvidia0 libgles-nvidia1 libgles-nvidia2
  libnvidia-glcore libnvidia-eglcore libnvidia-glvkspirv
  nvidia-vulkan-icd nvidia-opencl-icd nvidia-egl-icd libnvidia-api1 libcudadebugger1
  libnvidia-allocator1 libnvidia-cfg1 libnvidia-encode1 libnvcuvid1
  libnvidia-rtcore libnvoptix1 libnvidia-fbc1 libnvidia-opticalflow1
  libnvidia-pkcs11-openssl3 nvidia-vdpau-driver nvidia-vulkan-common nvidia-opencl-common
  libnvidia-egl-wayland1 nvidia-egl-common libnvidia-ngx1
)
# 32-bit (i386): what a 64-bit machine's 32-bit programs (Steam, Wine) load,
# NixOS's driSupport32Bit part of the driver.
pkgs_i386=(
  libcuda1 libnvidia-ml1 libnvidia-ptxjitcompiler1 libglx-nvidia0 libnvidia-glcore
  libegl-nvidia0 libnvidia-eglcore libnvidia-glvkspirv nvidia-vulkan-icd
)
# Older drivers, for version selection: 525 (tesla) and 470 (tesla-470).
pkgs_old=(libnvidia-tesla-cuda1 libnvidia-tesla-470-cuda1 libnvidia-tesla-470-ml1 libnvidia-tesla-470-ptxjitcompiler1)

# shellcheck source=scripts/apt-private.sh
. "$(dirname "$0")/apt-private.sh"

fetch_arch() {
  local arch=$1 dir="$out/nvidia/$1"
  if [ -f "$dir/.done" ]; then echo "fetch-nvidia: $arch already in $dir"; return 0; fi
  local apt="$out/apt-$arch"
  rm -rf "$apt" "$dir"
  mkdir -p "$dir/debs" "$dir/root"
  # main + non-free (egl-wayland and egl-gbm live in main).
  apt_private fetch-nvidia "$apt" "$arch" "main non-free" || exit 1
  local opts=("${APT_OPTS[@]}")
  echo "fetch-nvidia: $arch: reading the package index (Debian 12 main and non-free)"
  apt-get "${opts[@]}" update >/dev/null
  local p size total=0 want=() sizes=()
  local pkgs=("${pkgs_common[@]}" "${pkgs_old[@]}")
  [ "$arch" = i386 ] && pkgs=("${pkgs_i386[@]}")
  for p in "${pkgs[@]}"; do
    if size=$(apt-cache "${opts[@]}" show --no-all-versions "$p:$arch" 2>/dev/null | awk '/^Size:/ {print $2; exit}') && [ -n "$size" ]; then
      want+=("$p:$arch"); sizes+=("$size"); total=$((total + size))
    else echo "fetch-nvidia: $p not in the $arch archive, skipped" >&2; fi
  done
  echo "fetch-nvidia: $arch: downloading ${#want[@]} packages, $((total / 1048576)) MiB, into $dir/debs"
  chmod 777 "$dir/debs"
  local i
  for i in "${!want[@]}"; do
    if ((sizes[i] >= 1048576)); then size="$(((sizes[i] + 524288) / 1048576)) MiB"; else size="$(((sizes[i] + 512) / 1024)) KiB"; fi
    printf 'fetch-nvidia: %s: [%d/%d] %s (%s)\n' "$arch" $((i + 1)) "${#want[@]}" "${want[i]%:*}" "$size"
    (cd "$dir/debs" && apt-get "${opts[@]}" download "${want[i]}" >/dev/null)
  done
  echo "fetch-nvidia: $arch: unpacking into $dir/root and $dir/old"
  local d
  for d in "$dir"/debs/*.deb; do
    case "$(basename "$d")" in
      *tesla*) mkdir -p "$dir/old"; dpkg -x "$d" "$dir/old" ;;
      *) dpkg -x "$d" "$dir/root" ;;
    esac
  done
  rm -rf "$apt"
  touch "$dir/.done"
  echo "fetch-nvidia: $arch: ${#want[@]} packages in $dir"
}

for a in ${NVIDIA_ARCHES:-amd64 arm64 i386}; do fetch_arch "$a"; done
