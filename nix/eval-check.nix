# Evaluates flake.nix and default.nix against a small stand-in for nixpkgs:
# no network, no store, no daemon. It catches the evaluation errors that
# `nix-instantiate --parse` cannot (a wrong argument name, a missing
# attribute) and checks what the package is given. scripts/nixcheck.sh runs
#   nix-instantiate --eval --strict nix/eval-check.nix
# and expects `true`. The real build needs nixpkgs: `nix flake check`.
let
  flake = import ../flake.nix;
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  genAttrs =
    names: f:
    builtins.listToAttrs (
      map (name: {
        inherit name;
        value = f name;
      }) names
    );
  lib = {
    inherit genAttrs;
    getExe = d: "${d.outPath}/bin/${d.meta.mainProgram}";
    escapeShellArg = s: "'${s}'";
    platforms.linux = systems;
    fileset = {
      unions = xs: xs;
      toSource = { root, fileset }: map toString fileset;
    };
  };
  # A derivation stand-in: its arguments, plus overrideAttrs.
  drv =
    args:
    args
    // {
      outPath = "/nix/store/00000000000000000000000000000000-${args.pname}";
      overrideAttrs = f: drv (args // f args);
    };
  mkPkgs =
    system:
    let
      pkgs = {
        inherit lib system;
        buildGoModule = throw "flake.nix must use buildGo126Module where nixpkgs has it";
        buildGo126Module = drv;
        installShellFiles = "installShellFiles";
        callPackage =
          fn: over:
          let
            f = import fn;
          in
          f (builtins.intersectAttrs (builtins.functionArgs f) pkgs // over);
        mkShell = args: args;
      }
      // genAttrs [
        "go_1_26"
        "gopls"
        "gnumake"
        "gcc"
        "patchelf"
        "binutils"
        "qemu"
        "shellcheck"
        "nixfmt"
        "nixfmt-tree"
        "fish"
        "zsh"
        "groff"
      ] (name: name);
    in
    pkgs;
  nixpkgs = {
    inherit lib;
    legacyPackages = genAttrs systems mkPkgs;
  };
  self =
    flake.outputs { inherit self nixpkgs; }
    // {
      lastModifiedDate = "20260102030405";
      rev = "0123456789abcdef0123456789abcdef01234567";
    };
  check = cond: msg: if cond then true else throw "eval-check: ${msg}";
  forSystem =
    system:
    let
      p = self.packages.${system}.default;
      ldflags = builtins.concatStringsSep " " p.ldflags;
    in
    builtins.all (x: x) [
      (check (p.pname == "nixglhost") "pname")
      (check (p.version == "0-unstable-20260102") "version from lastModifiedDate: ${p.version}")
      (check (builtins.match "sha256-[A-Za-z0-9+/]{43}=" p.vendorHash != null) "vendorHash: ${p.vendorHash}")
      (check (p.env.CGO_ENABLED == 0) "CGO_ENABLED")
      (check (builtins.match ".*-s -w .*-X main.version=0-unstable-20260102 -X main.commit=0123456789abcdef0123456789abcdef01234567.*" ldflags != null) "ldflags: ${ldflags}")
      (check (p.meta.mainProgram == "nixglhost") "mainProgram")
      (check (builtins.elem system p.meta.platforms) "platforms")
      (check (p.subPackages == [ "cmd/nixglhost" ]) "subPackages")
      (check (builtins.match ".*installShellCompletion.*installManPage.*" (builtins.replaceStrings [ "\n" ] [ " " ] p.postInstall) != null) "postInstall installs completions and the man page")
      (check (self.apps.${system}.default.program == "${p.outPath}/bin/nixglhost") "apps.default")
      (check self.checks.${system}.unit.doCheck "checks.unit runs the tests")
      (check (self.devShells.${system}.default.packages != [ ]) "devShell")
      (check (self.formatter.${system} == "nixfmt-tree") "formatter")
      (check ((self.overlays.default (mkPkgs system) { }).nixglhost.pname == "nixglhost") "overlay")
    ];
in
builtins.all forSystem systems
