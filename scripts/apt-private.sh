# shellcheck shell=bash
# apt-private.sh: sourced by the fetch scripts (fetch-nvidia.sh,
# fetch-i386-loaders.sh, fetch-arm64-loaders.sh). It sets up a private apt
# for one architecture: its own lists and cache under a directory, no lock,
# no dpkg state, so nothing of the machine's apt is touched. Debian 12's
# archive address is read from this machine's own apt sources
# (/etc/apt/sources.list.d/*.sources or /etc/apt/sources.list); nothing
# here names a registry host.
#
# apt_private NAME DIR ARCH COMPONENTS
#   makes DIR (parts, lists, cache), writes there one source for Debian 12
#   (bookworm, not -security) with COMPONENTS ("main", "main non-free") for
#   ARCH alone, and sets the array APT_OPTS to the options that make
#   apt-get and apt-cache use it. NAME prefixes its errors. Returns 1 when
#   the machine has no Debian 12 source.

apt_private() {
  local name=$1 apt=$2 arch=$3 comps=$4 f src="" uri
  mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    if grep -qE '^Suites:.*\bbookworm\b' "$f" && grep -qiE '^URIs:.*debian/?$' "$f"; then src=$f; break; fi
  done
  if [ -n "$src" ]; then
    # The main archive stanza only (not -security), for ARCH alone.
    awk -v arch="$arch" -v comps="$comps" '
      BEGIN { RS=""; ORS="\n\n" }
      /Suites:[^\n]*bookworm/ && !/security/ {
        gsub(/Components:[^\n]*/, "Components: " comps)
        gsub(/Suites:[^\n]*/, "Suites: bookworm")
        gsub(/\nArchitectures:[^\n]*/, "")
        print $0 "\nArchitectures: " arch
      }' "$src" > "$apt/parts/bookworm.sources"
  elif [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
    [ -n "$uri" ] || { echo "$name: no bookworm source in /etc/apt" >&2; return 1; }
    printf 'deb [arch=%s] %s bookworm %s\n' "$arch" "$uri" "$comps" > "$apt/parts/bookworm.list"
  else
    echo "$name: no apt sources found under /etc/apt" >&2; return 1
  fi
  # shellcheck disable=SC2034 # read by the scripts that source this file
  APT_OPTS=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$apt/parts"
    -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache"
    -o Dir::State::status=/dev/null -o APT::Architecture="$arch"
    -o APT::Architectures="$arch" -o Debug::NoLocking=1 -q)
}
