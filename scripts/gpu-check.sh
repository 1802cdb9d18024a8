#!/usr/bin/env bash
# gpu-check.sh: prove nixglhost on a real NVIDIA GPU host.
#
# Builds a Nix-like program (its own glibc copied into a short store dir,
# its loader patched as nixpkgs' is: blind to /etc/ld.so.cache and the
# system directories), checks that it cannot find libcuda on its own, then
# runs it under nixglhost with discovery (once with the inherited
# LD_LIBRARY_PATH, once without, so discovery goes through ld.so.conf) and
# expects: cuInit 0, a device name, a context, a PTX module JIT-compiled
# (CUDA_CACHE_DISABLE=1: proof that libnvidia-ptxjitcompiler was found),
# NVML init 0 with a device count, and only the store's libc mapped.
#
# Needs: gcc, python3 (to patch the loader's bytes), and nixglhost
# ($NIXGLHOST, else bin/nixglhost, else built with go). Exit 0 when every
# expectation holds.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
nixglhost=${NIXGLHOST:-$here/bin/nixglhost}
if [ ! -x "$nixglhost" ]; then
  command -v go >/dev/null || { echo "gpu-check: no $nixglhost and no go to build it" >&2; exit 1; }
  (cd "$here" && CGO_ENABLED=0 go build -o bin/nixglhost ./cmd/nixglhost)
  nixglhost=$here/bin/nixglhost
fi
cc=${CC:-$(command -v gcc || command -v cc)}

store=$(mktemp -d /tmp/nxXXXX)
work=$(mktemp -d)
trap 'rm -rf "$store" "$work"' EXIT
triplet=$("$cc" -dumpmachine | sed 's/-pc-/-/; s/-unknown-/-/')
case "$triplet" in x86_64*) loader=ld-linux-x86-64.so.2; triplet=x86_64-linux-gnu ;;
  aarch64*) loader=ld-linux-aarch64.so.1; triplet=aarch64-linux-gnu ;;
  *) echo "gpu-check: unsupported machine $triplet" >&2; exit 1 ;; esac
libc=$("$cc" -print-file-name=libc.so.6)
libdir=$(dirname "$(readlink -f "$libc")")
for f in "$loader" libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libgcc_s.so.1; do
  src=$libdir/$f
  [ -e "$src" ] || src=$(readlink -f "$("$cc" -print-file-name="$f")")
  cp -L "$src" "$store/$f"
done
# Patch the copied loader like nixpkgs' glibc: no ld.so.cache, and the
# built-in system directories replaced by the store (same lengths).
python3 - "$store/$loader" "$store" "$triplet" <<'PY'
import sys
path, store, trip = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
b = open(path, 'rb').read()
c = b'/etc/ld.so.cache'
assert c in b, 'ld.so.cache path not found in the loader'
b = b.replace(c, b'/xxx/ld.so.cache')
dirs = [b'/lib/' + trip + b'/', b'/usr/lib/' + trip + b'/', b'/lib/', b'/usr/lib/']
old = b''.join(d + b'\0' for d in dirs)
new = b''
for i, d in enumerate(dirs):
    r = store + b'/' * (len(d) - len(store)) if i < 2 else b'/' + b'x' * (len(d) - 2) + b'/'
    assert len(r) == len(d), 'store path too long for the loader slot'
    new += r + b'\0'
if old not in b:
    sys.exit('system directory block not found in the loader: cannot make it Nix-like')
open(path, 'wb').write(b.replace(old, new))
PY
chmod +x "$store/$loader"
"$cc" -O1 -o "$store/probe" "$here/testdata/probe/probe.c" -ldl \
  -Wl,--dynamic-linker="$store/$loader" -Wl,-rpath,"$store" -Wl,--enable-new-dtags

fail=0
expect() { # expect FILE REGEX WHAT
  if grep -Eq "$2" "$1"; then echo "ok: $3"; else echo "FAIL: $3 (no line matching /$2/)"; fail=1; fi
}
check_libc() { # only the store's libc may be mapped
  if grep -E '^map .*libc[.-]' "$1" | grep -vq " $store/"; then
    echo "FAIL: a host libc is mapped:"; grep -E '^map .*libc[.-]' "$1"; fail=1
  else echo "ok: only the store's libc is mapped"; fi
}

echo "== host"; uname -a; nvidia-smi -L 2>/dev/null || true
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
echo "== without nixglhost (and without the inherited LD_LIBRARY_PATH)"
env -u LD_LIBRARY_PATH CUDA_CACHE_DISABLE=1 "$store/probe" > "$work/bare.txt" || true
cat "$work/bare.txt"
expect "$work/bare.txt" '^cuda_dlopen error' "the Nix-like probe cannot find libcuda on its own"

run_case() { # run_case NAME ENV...
  local name=$1; shift
  echo "== nixglhost, $name"
  env "$@" CUDA_CACHE_DISABLE=1 DEBUG=${GPU_CHECK_DEBUG:-} "$nixglhost" --cache-dir "$work/cache-$name" -- "$store/probe" > "$work/$name.txt"
  cat "$work/$name.txt"
  expect "$work/$name.txt" '^cuda_dlopen ok' "libcuda loaded"
  expect "$work/$name.txt" '^cuInit 0$' "cuInit returned 0"
  expect "$work/$name.txt" '^device_name .+' "device 0 has a name"
  expect "$work/$name.txt" '^cuCtxCreate 0$' "a context was created"
  expect "$work/$name.txt" '^cuModuleLoadData 0$' "a PTX module was JIT-compiled (ptxjitcompiler found)"
  expect "$work/$name.txt" '^nvmlInit 0$' "NVML initialised"
  expect "$work/$name.txt" '^nvmlDeviceGetCount 0 [1-9]' "NVML counts at least one device"
  check_libc "$work/$name.txt"
  echo "-- entry: $("$nixglhost" --cache-dir "$work/cache-$name" -p)"
  env "$@" "$nixglhost" --cache-dir "$work/cache-$name" --print-env
}
run_case inherited "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
run_case discovery -u LD_LIBRARY_PATH
lib=$(env -u LD_LIBRARY_PATH "$nixglhost" --cache-dir "$work/cache-discovery" -p) || lib=""
if [ -n "$lib" ]; then
  echo "== cache entry (discovery)"; (cd "$(dirname "$lib")" && find . -maxdepth 2 | sort | head -80)
  du -sh "$work/cache-discovery"
  if [ -n "${GPU_CHECK_OUT:-}" ]; then cp "$(dirname "$lib")/manifest.json" "$GPU_CHECK_OUT/manifest.json"; fi
else
  echo "FAIL: no cache entry (no driver found)"; fail=1
fi
if [ "$fail" = 0 ]; then echo "gpu-check: PASS"; else echo "gpu-check: FAIL"; fi
exit "$fail"
