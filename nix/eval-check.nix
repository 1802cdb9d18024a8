# Evaluates flake.nix (and through it package.nix and nix/wrap.nix) against
# a small stand-in for nixpkgs (testdata/nix/pkgs.nix):
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
  # testdata/nix/pkgs.nix (runCommand, makeSetupHook, the stand-in
  # buildGo126Module that keeps package.nix's attributes as .attrs) plus
  # the names the devShell and checks use.
  base = system: import ../testdata/nix/pkgs.nix { inherit system; };
  lib = (base "x86_64-linux").lib // {
    inherit genAttrs;
  };
  mkPkgs =
    system:
    let
      pkgs =
        base system
        // {
          inherit lib;
          buildGoModule = throw "flake.nix must use buildGo126Module where nixpkgs has it";
          callPackage =
            fn: over:
            let
              f = if builtins.isFunction fn then fn else import fn;
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
    lib = lib // {
      mkDefault = v: {
        _type = "override";
        priority = 1000;
        content = v;
      };
    };
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
      pkg = self.packages.${system}.default;
      p = pkg.attrs;
      ldflags = builtins.concatStringsSep " " p.ldflags;
      pkgs = mkPkgs system;
      app = pkgs.runCommand "app-1.0" { meta.mainProgram = "app"; } "mkdir $out";
      wrapped = self.lib.wrapWith { flags = [ "--mesa" ]; inherit pkgs; } app;
      hm = self.homeManagerModules.default { inherit pkgs; };
      sm = self.systemManagerModules.default { inherit pkgs; };
    in
    builtins.all (x: x) [
      (check (p.pname == "nixglhost") "pname")
      (check (pkg.version == "0-unstable-20260102") "version from lastModifiedDate: ${pkg.version}")
      (check (builtins.match "sha256-[A-Za-z0-9+/]{43}=" p.vendorHash != null) "vendorHash: ${p.vendorHash}")
      (check (p.env.CGO_ENABLED == 0) "CGO_ENABLED")
      (check (builtins.match ".*-s -w .*-X main.version=0-unstable-20260102 -X main.commit=0123456789abcdef0123456789abcdef01234567.*" ldflags != null) "ldflags: ${ldflags}")
      (check (p.meta.mainProgram == "nixglhost") "mainProgram")
      (check (builtins.elem system p.meta.platforms) "platforms")
      (check (p.subPackages == [ "cmd/nixglhost" ]) "subPackages")
      (check (builtins.match ".*installShellCompletion.*installManPage.*" (builtins.replaceStrings [ "\n" ] [ " " ] p.postInstall) != null) "postInstall installs completions and the man page")
      (check (p.doInstallCheck && p.nativeInstallCheckInputs == [ pkgs.versionCheckHook ] && p.versionCheckProgramArg == "--version") "the install check runs --version")
      (check (pkg.passthru.tests ? fake-root) "passthru.tests.fake-root")
      (check (self.checks.${system}.fake-root == pkg.passthru.tests.fake-root) "checks.fake-root is the passthru test")
      (check (self.apps.${system}.default.program == "${pkg.outPath}/bin/nixglhost") "apps.default")
      (check self.checks.${system}.unit.attrs.doCheck "checks.unit runs the tests")
      (check (self.devShells.${system}.default.packages != [ ]) "devShell")
      (check (self.formatter.${system} == "nixfmt-tree") "formatter")
      (check ((self.overlays.default pkgs { }).nixglhost.attrs.pname == "nixglhost") "overlay")
      (check (wrapped.nixglhost == "${pkg}/bin/nixglhost" && wrapped.nixglhostFlags == "--mesa") "lib.wrapWith uses the flake's package and the flags")
      (check (wrapped.name == app.name && wrapped.meta == app.meta) "lib.wrapWith keeps the name and meta")
      (check (self.packages.${system}.nixglhost-wrap-hook.name == "nixglhost-wrap-hook") "packages.nixglhost-wrap-hook")
      (check (hm.imports == [ ./home-manager.nix ] && hm.programs.nixglhost.package.content == pkg) "homeManagerModules.default")
      (check (sm.imports == [ ./system-manager.nix ] && sm.services.nixglhost.package.content == pkg) "systemManagerModules.default")
    ];
  # default.nix, the plain-Nix entry.
  plain = import ../default.nix { pkgs = mkPkgs "x86_64-linux"; };
  plainApp = (mkPkgs "x86_64-linux").runCommand "app-1.0" { } "mkdir $out";
  plainChecks = [
    (check (plain.nixglhost.attrs.pname == "nixglhost") "default.nix: nixglhost")
    (check ((plain.wrap plainApp).nixglhost == "${plain.nixglhost}/bin/nixglhost") "default.nix: wrap uses its nixglhost")
    (check ((plain.wrapOffload plainApp).nixglhostFlags == "--prime") "default.nix: wrapOffload")
    (check (plain.hook.name == "nixglhost-wrap-hook") "default.nix: hook")
    (check (plain.homeManagerModule == ./home-manager.nix && plain.systemManagerModule == ./system-manager.nix) "default.nix: modules")
  ];
in
builtins.all forSystem systems && builtins.all (x: x) plainChecks
