#!/usr/bin/env bash
# bench.sh: whole-process wall time and peak RSS of nixglhost launches on a
# fake host root made from the real Debian NVIDIA 535 packages, against a
# direct exec of the same program. Prints a markdown table of medians and
# ratios, then the scale series (directories, unrelated files, versions).
#
# Usage: scripts/bench.sh [RUNS]     (default 200; needs hyperfine, GNU time,
#        python3, strace, gcc with libc6-dev's static libc, go, make; fetches the driver corpus with scripts/fetch-nvidia.sh;
#        NIXGLHOST=path measures that binary instead of building one;
#        otherwise the binary is built as released, by make build (static,
#        stripped, stamped with the version), into the temporary directory:
#        bin/ is left alone;
#        BENCH_SCALE=0 skips the scale series)
# Output: a table on stdout; raw hyperfine JSON under $BENCH_OUT (default a
# temporary directory, removed afterwards).
set -euo pipefail
runs=${1:-200}
here=$(cd "$(dirname "$0")/.." && pwd)
for t in hyperfine python3; do command -v $t >/dev/null || { echo "bench: $t missing (apt-get install $t)" >&2; exit 1; }; done
[ -x /usr/bin/time ] || { echo "bench: GNU time missing (apt-get install time)" >&2; exit 1; }
"$here/scripts/fetch-nvidia.sh" >/dev/null
corpus=$here/.cache/fixtures/nvidia/amd64/root
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ngh=${NIXGLHOST:-}
if [ -z "$ngh" ]; then
  make -s -C "$here" build BIN="$work/nixglhost" >&2
  ngh=$work/nixglhost
fi
out=${BENCH_OUT:-$work/json}
mkdir -p "$out"
prog=/bin/true
triplet=x86_64-linux-gnu

# A Debian-like host root: the corpus hard-linked, the alternatives links,
# the host's generic libraries the driver needs, ld.so.conf and a cache.
root=$work/root
cp -al "$corpus" "$root" 2>/dev/null || cp -a "$corpus" "$root"
ml=$root/usr/lib/$triplet
for f in "$ml"/nvidia/current/*.so.1 "$ml"/nvidia/current/*.so.0 "$ml"/nvidia/current/*.so.2 "$ml"/nvidia/current/*.so.4; do
  [ -e "$f" ] && ln -sf "nvidia/current/$(basename "$f")" "$ml/$(basename "$f")"
done
for l in libX11.so.6 libXext.so.6 libxcb.so.1 libXau.so.6 libXdmcp.so.6 libX11-xcb.so.1 libxcb-dri3.so.0 \
         libxcb-glx.so.0 libxcb-present.so.0 libxcb-randr.so.0 libxcb-sync.so.1 libxcb-xfixes.so.0 libdrm.so.2 \
         libbsd.so.0 libmd.so.0 libcrypto.so.3 libwayland-client.so.0 libwayland-server.so.0 libffi.so.8 libXrandr.so.2 libXrender.so.1; do
  src=/usr/lib/$triplet/$l
  [ -e "$src" ] && cp -L "$src" "$ml/$l"
done
mkdir -p "$root/etc/ld.so.conf.d"
echo 'include /etc/ld.so.conf.d/*.conf' > "$root/etc/ld.so.conf"
printf '/usr/local/lib\n/lib/%s\n/usr/lib/%s\n' $triplet $triplet > "$root/etc/ld.so.conf.d/$triplet.conf"
ldconfig -r "$root" 2>/dev/null || ldconfig -C "$root/etc/ld.so.cache" -f "$root/etc/ld.so.conf" -r "$root"
dflags=(-d /usr/lib/$triplet/nvidia/current -d /usr/lib/$triplet)
cache=$work/cache

hf() { # hf NAME [hyperfine args...] -- measure and keep the JSON
  local name=$1; shift
  hyperfine -N --style none --runs "$runs" --warmup 5 --export-json "$out/$name.json" "$@" >/dev/null 2>&1
}
rss() { # rss CMD...: median peak RSS in KiB over 21 runs
  for _ in $(seq 21); do /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; done | sort -n | sed -n 11p
}
# The floors: a static C program (no loader at all) and a Go hello-world
# built as the tool is (static, -trimpath, -s -w): what any Go launcher costs.
printf 'int main(void) { return 0; }\n' > "$work/static.c"
gcc -O2 -static -o "$work/static" "$work/static.c"
mkdir -p "$work/gofloor"
printf 'package main\n\nimport "os"\n\nfunc main() { os.Stdout.WriteString("hello\\n") }\n' > "$work/gofloor/main.go"
(cd "$work/gofloor" && GOFLAGS='' CGO_ENABLED=0 go mod init floor >/dev/null 2>&1 && GOFLAGS='' CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/gofloor/hello" .)
# The floor of any Go launcher: the same hello-world, exec'ing the program
# (what a hot launch does last) instead of printing.
mkdir -p "$work/goexec"
printf 'package main

import (
	"os"
	"syscall"
)

func main() { syscall.Exec(os.Args[1], os.Args[1:], os.Environ()) }
' > "$work/goexec/main.go"
(cd "$work/goexec" && GOFLAGS='' CGO_ENABLED=0 go mod init goexec >/dev/null 2>&1 && GOFLAGS='' CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/goexec/goexec" .)
"$ngh" --driver-root "$root" --cache-dir "$cache" "${dflags[@]}" -p >/dev/null
"$ngh" --driver-root "$root" --cache-dir "$cache" -p >/dev/null
hf static "$work/static"
hf gofloor "$work/gofloor/hello"
hf direct "$prog"
hf goexec "$work/goexec/goexec $prog"
hf version "$ngh --version"
hf hot_d "$ngh --driver-root $root --cache-dir $cache ${dflags[*]} -- $prog"
hf hot_discovery "$ngh --driver-root $root --cache-dir $cache -- $prog"
hf print_path "$ngh --driver-root $root --cache-dir $cache ${dflags[*]} -p"
hyperfine -N --style none --runs "$(( runs / 10 > 10 ? runs / 10 : 10 ))" --export-json "$out/cold.json" \
  --prepare "rm -rf $work/coldcache" "$ngh --driver-root $root --cache-dir $work/coldcache ${dflags[*]} -- $prog" >/dev/null 2>&1
rss_direct=$(rss "$prog")
rss_hot=$(rss "$ngh" --driver-root "$root" --cache-dir "$cache" "${dflags[@]}" -- "$prog")
rss_cold=$(for _ in $(seq 11); do rm -rf "$work/c2"; /usr/bin/time -f %M "$ngh" --driver-root "$root" --cache-dir "$work/c2" "${dflags[@]}" -- "$prog" 2>&1 >/dev/null | tail -1; done | sort -n | sed -n 6p)
rm -rf "$work/c3"; "$ngh" --driver-root "$root" --cache-dir "$work/c3" "${dflags[@]}" -p >/dev/null
cold_bytes=$(du -sb --apparent-size "$work/c3" | cut -f1)
full_bytes=$(du -sbL --apparent-size "$work/c3" 2>/dev/null | cut -f1)
syscalls=$(strace -f -c -o "$work/strace.txt" "$ngh" --driver-root "$root" --cache-dir "$cache" "${dflags[@]}" -p >/dev/null 2>&1; tail -1 "$work/strace.txt" | awk '{print $4}')
syscalls_rt=$(strace -f -c -o "$work/strace0.txt" "$ngh" --version >/dev/null 2>&1; tail -1 "$work/strace0.txt" | awk '{print $4}')

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
echo "runs: $runs per hot case, $(( runs / 10 > 10 ? runs / 10 : 10 )) cold; driver: Debian 535 ($(du -sh "$corpus/usr/lib" | cut -f1) of libraries)"
echo
python3 - "$out" "$rss_direct" "$rss_hot" "$rss_cold" <<'PY'
import json, sys, statistics, os
out, rd, rh, rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def med(n):
    r = json.load(open(os.path.join(out, n + '.json')))['results'][0]['times']
    return statistics.median(r) * 1000
d = med('direct')
g = med('gofloor')
print('| case | median ms | ratio to the Go floor | over the Go floor ms | ratio to /bin/true | peak RSS KiB |')
print('|---|---:|---:|---:|---:|---:|')
rows = [('static', 'static C program (no loader)', ''), ('direct', 'direct exec of /bin/true', rd),
        ('gofloor', 'Go hello-world built like the tool (the Go floor)', ''),
        ('goexec', 'the same Go program exec\'ing /bin/true (the Go launcher floor)', ''),
        ('version', '`nixglhost --version` (no exec)', ''), ('hot_d', 'hot launch, -d', rh),
        ('hot_discovery', 'hot launch, discovery', ''), ('print_path', '`-p`, -d', ''),
        ('cold', 'cold launch, -d (builds the entry)', rc)]
for name, label, r in rows:
    m = med(name)
    print(f'| {label} | {m:.2f} | {m/g:.2f} | {m-g:+.2f} | {m/d:.1f} | {r} |')
print()
e = med('goexec')
for name, label, target in [('hot_d', 'hot -d', 1.0), ('hot_discovery', 'hot discovery', 1.5)]:
    over = med(name) - g
    verdict = 'met' if over <= target else f'missed by {over-target:.2f} ms'
    print(f'target {label}: the Go floor + {target:.1f} ms; measured floor + {over:.2f} ms: {verdict} '
          f'(over the Go launcher floor, which execs the program too: {med(name)-e:+.2f} ms)')
PY
echo
echo "cold entry: ${cold_bytes} bytes written, against ${full_bytes} bytes for a full copy ($(python3 -c "print(f'{100*$cold_bytes/$full_bytes:.1f}%')"))"
echo "system calls, hot -p with -d: $syscalls in all; the Go runtime's own start (--version): $syscalls_rt"
# Package initialisers before main (traced, so inflated): the median of 21
# runs of --version against a budget of 0.5 ms, and the three largest.
inits=$(for _ in $(seq 21); do GODEBUG=inittrace=1 "$ngh" --version 2>&1 >/dev/null | awk '$1 == "init" {s += $5} END {printf "%.3f\n", s}'; done | sort -n | sed -n 11p)
top=$(GODEBUG=inittrace=1 "$ngh" --version 2>&1 >/dev/null | awk '$1 == "init" {print $5, $2}' | sort -rn | head -3 | awk '{printf "%s %s ms; ", $2, $1}')
verdict=$(python3 -c "print('within' if $inits <= 0.5 else 'over')")
echo "package initialisers before main: ${inits} ms (budget 0.5 ms: $verdict); largest: $top"

# Mesa (where this machine has Debian's): the bytes its entry holds itself
# (copies and shims) against the bytes its lib/ and deps/ expose (every
# file reached, links followed, each counted once).
if [ -e "/usr/lib/$triplet/libEGL_mesa.so.0" ]; then
  "$ngh" --cache-dir "$work/mesa" --mesa -p >/dev/null
  python3 - "$work/mesa" <<'PY'
import os, re, sys
cache = sys.argv[1]
entry = next(os.path.join(cache, d) for d in os.listdir(cache) if re.fullmatch('[0-9a-f]{32}', d))
copied = exposed = 0
seen = set()
for sub in ('lib', 'deps'):
    for dirpath, dirs, files in os.walk(os.path.join(entry, sub)):
        for f in files:
            p = os.path.join(dirpath, f)
            try:
                st = os.stat(p)
            except OSError:
                continue
            if os.path.isfile(p) and not os.path.islink(p):
                copied += st.st_size
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                exposed += st.st_size
print(f'mesa entry (wrapper, --mesa): {copied} bytes copied of {exposed} exposed ({100*copied/exposed:.2f}%)')
PY
fi

# Scale: N directories of M unrelated files each, plus the fake driver dir.
if [ "${BENCH_SCALE:-1}" = 1 ]; then
  echo
  echo "| scale case | hot median ms | cold median ms |"
  echo "|---|---:|---:|"
  srt=$work/scale
  mkdir -p "$srt/drv"
  for f in "$ml"/nvidia/current/libcuda.so.* "$ml"/nvidia/current/libnvidia-ml.so.* "$ml"/nvidia/current/libnvidia-ptxjitcompiler.so.*; do cp -P "$f" "$srt/drv/"; done
  for spec in "1 100" "10 100" "100 100" "1 10000" "10 10000"; do
    set -- $spec; n=$1; m=$2
    dirs=()
    for i in $(seq "$n"); do
      d=$srt/d$n-$m-$i; mkdir -p "$d"
      [ -e "$d/f$m" ] || (cd "$d" && seq -f "libunrelated%g.so.1" "$m" | xargs touch)
      dirs+=(-d "$d")
    done
    dirs+=(-d "$srt/drv")
    "$ngh" --cache-dir "$srt/cache" "${dirs[@]}" -p >/dev/null
    hyperfine -N --style none --runs 50 --export-json "$work/s.json" "$ngh --cache-dir $srt/cache ${dirs[*]} -p" >/dev/null 2>&1
    h=$(python3 -c "import json,statistics;print(f\"{statistics.median(json.load(open('$work/s.json'))['results'][0]['times'])*1000:.2f}\")")
    hyperfine -N --style none --runs 10 --prepare "rm -rf $srt/cc" --export-json "$work/s.json" "$ngh --cache-dir $srt/cc ${dirs[*]} -p" >/dev/null 2>&1
    c=$(python3 -c "import json,statistics;print(f\"{statistics.median(json.load(open('$work/s.json'))['results'][0]['times'])*1000:.2f}\")")
    echo "| $n dirs x $m unrelated files | $h | $c |"
  done
  # Versions: 1 and 5 driver versions side by side (renamed copies of 535).
  for nv in 1 5; do
    vd=$srt/v$nv; mkdir -p "$vd"
    for i in $(seq "$nv"); do
      v=53$i.100.0$i
      for b in libcuda libnvidia-ml libnvidia-ptxjitcompiler; do
        ln -f "$ml/nvidia/current/$b.so.535.261.03" "$vd/$b.so.$v" 2>/dev/null || cp "$ml/nvidia/current/$b.so.535.261.03" "$vd/$b.so.$v"
      done
    done
    "$ngh" --cache-dir "$srt/vc" -d "$vd" -p >/dev/null
    hyperfine -N --style none --runs 50 --export-json "$work/s.json" "$ngh --cache-dir $srt/vc -d $vd -p" >/dev/null 2>&1
    h=$(python3 -c "import json,statistics;print(f\"{statistics.median(json.load(open('$work/s.json'))['results'][0]['times'])*1000:.2f}\")")
    echo "| $nv driver version(s) in one dir | $h | |"
  done
fi
