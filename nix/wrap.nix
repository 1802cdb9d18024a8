# Wrap a package so that its programs run through nixglhost, for callPackage:
#
#   w = pkgs.callPackage ./nix/wrap.nix { };          # nixglhost from ../package.nix
#   w.wrap pkgs.blender                               # bin/* run as `nixglhost -- PROG`
#   w.wrapWith { flags = [ "--prime" ]; } pkgs.blender
#   w.wrapOffload pkgs.blender                        # the same as flags = [ "--prime" ]
#   nativeBuildInputs = [ w.hook ];                   # wrapProgram-style, see nixglhost-wrap-hook.sh
#
# The wrapped package has the original's outputs, meta and passthru (plus
# passthru.unwrapped). In each output, every executable of bin/ becomes a
# script `exec nixglhost FLAGS -- ORIGINAL/bin/NAME "$@"`; the Exec= and
# TryExec= lines of share/applications/*.desktop name the wrappers (a path
# into the original's bin/, or a bare name of a program the output wraps);
# everything else is a symlink into the original, so the wrapper costs a
# few inodes, not a copy. Not rewritten: programs the original runs by
# their store path (a bin/ program calling another by absolute path: the
# first one's environment carries the driver to its children anyway), an
# Exec= line that starts with another command (`env VAR=1 prog`), D-Bus
# service files and systemd units that name the original's bin/.
#
# flake.nix (lib.wrap, the overlay), default.nix and the home-manager
# module use this file; testdata/nix/pkgs.nix is the stand-in for nixpkgs
# that cmd/nixglhost's TestNixWrap builds it with.
{
  lib,
  callPackage,
  runCommand,
  makeSetupHook,
  runtimeShell,
  nixglhost ? callPackage ../package.nix { },
}:

let
  exe = "${nixglhost}/bin/nixglhost";

  wrapWith =
    {
      flags ? [ ],
    }:
    pkg:
    let
      outputs = pkg.outputs or [ "out" ];
      # One line per output: its name and the original's path.
      wrapOutputs = builtins.concatStringsSep "" (
        map (o: "wrapOutput ${o} ${pkg.${o}}\n") outputs
      );
      # Rewrite the originals' bin/ paths in any output's .desktop files.
      binPaths = builtins.concatStringsSep " " (map (o: "${pkg.${o}}/bin/=${o}") outputs);
    in
    runCommand (pkg.name or "${pkg.pname}-${pkg.version}")
      {
        inherit outputs;
        passthru = (pkg.passthru or { }) // {
          unwrapped = pkg;
        };
        meta = pkg.meta or { };
        preferLocalBuild = true;
        allowSubstitutes = false;
        nixglhost = exe;
        nixglhostFlags = lib.escapeShellArgs flags;
        wrapperShell = runtimeShell;
        inherit binPaths;
      }
      ''
        # quote ARG: ARG as one single-quoted shell word.
        quote() {
          printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\'''/g")"
        }
        # linkEntries FROM TO SKIP...: symlink every entry of FROM into TO,
        # but the names SKIP.
        linkEntries() {
          from=$1 to=$2
          shift 2
          mkdir -p "$to"
          for e in "$from"/* "$from"/.[!.]*; do
            [ -e "$e" ] || [ -L "$e" ] || continue
            n=''${e##*/}
            skip=
            for s in "$@"; do
              [ "$n" = "$s" ] && skip=1
            done
            [ -n "$skip" ] || ln -s "$e" "$to/$n"
          done
        }
        # desktopFile IN OUT BINDIR: IN with Exec=/TryExec= lines naming the
        # wrappers in BINDIR.
        desktopFile() {
          sedArgs=
          for p in $binPaths; do
            orig=''${p%=*}
            outVar=''${p##*=}
            eval "new=\$$outVar"
            sedArgs="$sedArgs -e s|$orig|$new/bin/|g"
          done
          # shellcheck disable=SC2086
          sed $sedArgs "$1" | while IFS= read -r line; do
            case $line in
            Exec=* | TryExec=*)
              key=''${line%%=*}
              cmd=''${line#*=}
              word=''${cmd%% *}
              case $word in
              */*) ;;
              *)
                if [ -n "$word" ] && [ -x "$3/$word" ] && [ ! -d "$3/$word" ]; then
                  line="$key=$3/$cmd"
                fi
                ;;
              esac
              ;;
            esac
            printf '%s\n' "$line"
          done >"$2"
        }
        # wrapOutput NAME ORIGINAL: fill output NAME from ORIGINAL.
        wrapOutput() {
          eval "dest=\$$1"
          src=$2
          if [ ! -d "$src" ]; then
            ln -s "$src" "$dest"
            return
          fi
          linkEntries "$src" "$dest" bin share
          if [ -d "$src/bin" ]; then
            mkdir -p "$dest/bin"
            for p in "$src"/bin/* "$src"/bin/.[!.]*; do
              [ -e "$p" ] || [ -L "$p" ] || continue
              n=''${p##*/}
              # Hidden files (makeWrapper's .NAME-wrapped) are what the
              # visible programs run: linked, not wrapped.
              if [ -f "$p" ] && [ -x "$p" ] && [ "''${n#.}" = "$n" ]; then
                {
                  printf '#!%s\n' "$wrapperShell"
                  printf 'exec %s %s -- %s "$@"\n' "$(quote "$nixglhost")" "$nixglhostFlags" "$(quote "$src/bin/$n")"
                } >"$dest/bin/$n"
                chmod 555 "$dest/bin/$n"
              else
                ln -s "$p" "$dest/bin/$n"
              fi
            done
          fi
          if [ -d "$src/share" ]; then
            linkEntries "$src/share" "$dest/share" applications
            if [ -d "$src/share/applications" ]; then
              linkEntries "$src/share/applications" "$dest/share/applications"
              for d in "$src"/share/applications/*.desktop; do
                [ -f "$d" ] || continue
                rm "$dest/share/applications/''${d##*/}"
                desktopFile "$d" "$dest/share/applications/''${d##*/}" "$dest/bin"
              done
            fi
          fi
        }
        ${wrapOutputs}
      '';
in
{
  inherit wrapWith;

  # wrap PKG: PKG's programs run through nixglhost with no flags.
  wrap = wrapWith { };

  # wrapOffload PKG: with --prime (NVIDIA's PRIME render offload on a
  # hybrid laptop), as home-manager's nixGL integration names it.
  wrapOffload = wrapWith { flags = [ "--prime" ]; };

  # hook: a setup hook for packages built in nixpkgs. It wraps every
  # executable in the outputs' bin/ after fixup (dontWrapNixglhost = true
  # turns that off; nixglhostFlags adds flags) and defines
  # wrapProgramNixglhost PROG [FLAG...] for doing it by hand.
  hook = makeSetupHook {
    name = "nixglhost-wrap-hook";
    substitutions = {
      nixglhost = exe;
      shell = runtimeShell;
    };
  } ./nixglhost-wrap-hook.sh;
}
