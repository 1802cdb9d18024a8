# shellcheck shell=bash
# nixglhost-wrap-hook: a setup hook (nix/wrap.nix's `hook`) for packages
# built in nixpkgs whose programs should run through nixglhost:
#
#   nativeBuildInputs = [ (pkgs.callPackage ./nix/wrap.nix { }).hook ];
#   nixglhostFlags = [ "--prime" ];   # optional, passed before the `--`
#   dontWrapNixglhost = true;         # optional: wrap by hand instead
#
# After fixup, every executable regular file in the bin/ of each output is
# moved to .NAME-nixglhost-wrapped beside it and replaced by a script
# `exec nixglhost FLAGS -- .NAME-nixglhost-wrapped "$@"`, as makeWrapper's
# wrapProgram does with its .NAME-wrapped. By hand (in postFixup):
#
#   wrapProgramNixglhost $out/bin/prog --mesa
#
# @nixglhost@ and @shell@ are substituted by makeSetupHook.

# wrapProgramNixglhost PROG [FLAG...]: PROG runs through nixglhost FLAG...
wrapProgramNixglhost() {
  local prog=$1
  shift
  local hidden
  hidden="$(dirname "$prog")/.$(basename "$prog")-nixglhost-wrapped"
  if [[ -e $hidden ]]; then
    echo "wrapProgramNixglhost: $prog is already wrapped ($hidden exists)" >&2
    return 1
  fi
  mv -- "$prog" "$hidden"
  {
    printf '#!%s\n' "@shell@"
    printf 'exec %q' "@nixglhost@"
    if (($# > 0)); then
      printf ' %q' "$@"
    fi
    printf ' -- %q "$@"\n' "$hidden"
  } >"$prog"
  chmod 555 "$prog"
}

# nixglhostWrapOutputs: wrap every executable regular file in the outputs'
# bin/, with the flags of nixglhostFlags (a list, or a space-separated
# string without structured attributes). Hidden files (wrapProgram's
# .NAME-wrapped among them) are left: their wrapper is what gets wrapped.
nixglhostWrapOutputs() {
  if [[ -n ${dontWrapNixglhost-} ]]; then
    return 0
  fi
  local -a flags=()
  if [[ "$(declare -p nixglhostFlags 2>/dev/null)" == "declare -a"* ]]; then
    flags=("${nixglhostFlags[@]}")
  elif [[ -n ${nixglhostFlags-} ]]; then
    read -r -a flags <<<"$nixglhostFlags"
  fi
  local output dir prog
  for output in ${outputs:-out}; do
    dir=${!output}/bin
    [[ -d $dir ]] || continue
    for prog in "$dir"/*; do
      if [[ -f $prog && -x $prog && ! -L $prog ]]; then
        wrapProgramNixglhost "$prog" "${flags[@]}"
      fi
    done
  done
}

postFixupHooks+=(nixglhostWrapOutputs)
