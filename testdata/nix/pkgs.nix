# A stand-in for the few parts of nixpkgs that nix/wrap.nix and
# nix/nixglhost-wrap-hook.sh use, so that Debian's nix-bin can build them
# with no nixpkgs and no network (cmd/nixglhost's TestNixWrap; nix/modules-check.nix
# evaluates the modules with it). Its limits, against the real thing:
#   - runCommand's builder is the host's /bin/bash with PATH=/usr/bin:/bin,
#     so it needs an unsandboxed build (nixpkgs' uses stdenv's bash and
#     coreutils from the store); with stdenv's `set -eu -o pipefail`, it
#     runs what stdenv's genericBuild would
#     for a buildCommand: nativeBuildInputs' bin/ on PATH and their setup
#     hooks sourced, the command, then postFixupHooks (stdenv runs those only in its fixup
#     phase, which runCommand skips; mkDerivation packages have one);
#   - passthru and meta are kept on the result (passthru's attributes
#     too), not passed to the builder, as mkDerivation does; a list of
#     strings goes to the builder space-separated (no structured attributes);
#   - runtimeShell is /bin/sh (dash on Debian), not bash; runCommandCC is
#     runCommand with the host's cc;
#   - buildGo126Module builds no Go: it evaluates package.nix's attributes
#     (finalAttrs, passthru, meta) and its derivation installs the program
#     given as nixglhostBinary as bin/nixglhost (without one, building it
#     fails); installShellFiles and versionCheckHook are empty;
#   - lib has only what those files and the modules call; lib.fileset's
#     toSource copies the files under the paths given, no more.
{
  system ? builtins.currentSystem,
  nixglhostBinary ? null,
}:
let
  lib = {
    escapeShellArg =
      arg:
      let
        s = toString arg;
      in
      if builtins.match "[[:alnum:],._+:@%/-]+" s == null then
        "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] s}'"
      else
        s;
    escapeShellArgs = args: builtins.concatStringsSep " " (map lib.escapeShellArg args);
    getExe = d: "${d}/bin/${d.meta.mainProgram}";
    platforms.linux = [
      "x86_64-linux"
      "aarch64-linux"
    ];
    fileset = {
      unions = paths: paths;
      toSource =
        { root, fileset }:
        let
          wanted = map toString fileset;
          under = a: b: a == b || builtins.substring 0 (builtins.stringLength b + 1) a == b + "/";
        in
        builtins.path {
          path = root;
          name = "source";
          filter = p: _: builtins.any (w: under p w || under w p) wanted;
        };
    };
  };

  runCommand =
    name: env: buildCommand:
    let
      drv = derivation (
        builtins.removeAttrs env [
          "passthru"
          "meta"
        ]
        // {
          inherit name system buildCommand;
          builder = "/bin/bash";
          PATH = "/usr/bin:/bin";
          args = [
            "-e"
            "-c"
            ''
              set -eu -o pipefail
              postFixupHooks=()
              for p in ''${nativeBuildInputs-}; do
                if [ -d "$p/bin" ]; then
                  PATH=$p/bin:$PATH
                fi
                if [ -f "$p/nix-support/setup-hook" ]; then
                  . "$p/nix-support/setup-hook"
                fi
              done
              eval "$buildCommand"
              for h in "''${postFixupHooks[@]}"; do
                "$h"
              done
            ''
          ];
        }
      );
    in
    drv
    // (env.passthru or { })
    // {
      meta = env.meta or { };
      passthru = env.passthru or { };
    };

  makeSetupHook =
    {
      name,
      substitutions ? { },
    }:
    script:
    runCommand name { } ''
      mkdir -p $out/nix-support
      sed ${
        builtins.concatStringsSep " " (
          map (k: "-e 's|@${k}@|${substitutions.${k}}|g'") (builtins.attrNames substitutions)
        )
      } ${script} > $out/nix-support/setup-hook
    '';

  # buildGo126Module (finalAttrs: { ... }): the attributes, with
  # finalPackage and overrideAttrs, on a derivation that installs
  # nixglhostBinary.
  buildGo126Module =
    f:
    let
      fix =
        g:
        let
          attrs = g final;
          final = attrs // {
            finalPackage = result;
          };
          result =
            runCommand "${attrs.pname}-${attrs.version}"
              {
                passthru = attrs.passthru or { };
                meta = attrs.meta or { };
                binary = if nixglhostBinary == null then "" else nixglhostBinary;
              }
              ''
                [ -n "$binary" ] || { echo "the stand-in buildGo126Module builds no Go: give nixglhostBinary" >&2; exit 1; }
                mkdir -p $out/bin
                cp "$binary" $out/bin/nixglhost
              ''
            // {
              inherit (attrs) version;
              attrs = attrs;
              overrideAttrs = h: fix (fa: let a = g fa; in a // (if builtins.isFunction h then h a else h));
            };
        in
        result;
    in
    fix (if builtins.isFunction f then f else (_: f));

  pkgs = {
    inherit
      lib
      system
      runCommand
      makeSetupHook
      buildGo126Module
      ;
    runCommandCC = runCommand;
    installShellFiles = { };
    versionCheckHook = { };
    runtimeShell = "/bin/sh";
    callPackage =
      fn: over:
      let
        f = if builtins.isFunction fn then fn else import fn;
      in
      f (builtins.intersectAttrs (builtins.functionArgs f) pkgs // over);
  };
in
pkgs
