{
  description = "Run Nix-built programs with the host's NVIDIA driver on any Linux";

  # A released branch with Go 1.26 (go.mod's go line). There is no
  # flake.lock: it pins a nixpkgs revision and its NAR hash, which only a
  # fetch of nixpkgs gives, and the repository is built and tested where
  # none can be fetched. `nix flake lock` writes one; a flake that has
  # nixglhost as an input locks it in its own flake.lock (or follows its
  # own nixpkgs: inputs.nixglhost.inputs.nixpkgs.follows = "nixpkgs").
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});

      version = "0-unstable-" + builtins.substring 0 8 (self.lastModifiedDate or "19700101");
      commit = self.rev or self.dirtyRev or "unknown";

      # package.nix, the file nixpkgs would hold, stamped with this
      # checkout's date and revision. Go 1.26 where the default is older.
      nixglhostFor =
        pkgs:
        (import ./nix/nixglhost.nix pkgs).overrideAttrs
          (_: {
            inherit version commit;
          });

      # nix/wrap.nix with this flake's nixglhost.
      wrapFor = pkgs: pkgs.callPackage ./nix/wrap.nix { nixglhost = nixglhostFor pkgs; };

      # The nixpkgs of a package's platform, for lib.wrap without pkgs.
      pkgsOf = pkg: nixpkgs.legacyPackages.${pkg.stdenv.hostPlatform.system or pkg.system};
    in
    {
      packages = forAllSystems (
        system: pkgs: {
          nixglhost = nixglhostFor pkgs;
          default = self.packages.${system}.nixglhost;
          # The wrapProgram-style setup hook (nix/nixglhost-wrap-hook.sh).
          nixglhost-wrap-hook = (wrapFor pkgs).hook;
        }
      );

      apps = forAllSystems (
        system: pkgs: {
          default = {
            type = "app";
            program = lib.getExe self.packages.${system}.default;
            meta.description = "Run a Nix-built program with the host's NVIDIA driver";
          };
        }
      );

      # nixglhost.lib.wrap pkgs.blender: a package with blender's outputs
      # and meta whose bin/* (and .desktop Exec lines) run through
      # nixglhost (nix/wrap.nix). wrapWith takes flags, and the pkgs to
      # build the wrapper with (default: this flake's nixpkgs for the
      # package's platform).
      lib = {
        wrapWith =
          {
            flags ? [ ],
            pkgs ? null,
          }:
          pkg: (wrapFor (if pkgs == null then pkgsOf pkg else pkgs)).wrapWith { inherit flags; } pkg;
        wrap = pkg: self.lib.wrapWith { } pkg;
        wrapOffload = pkg: self.lib.wrapWith { flags = [ "--prime" ]; } pkg;
      };

      overlays.default = final: prev: {
        nixglhost = nixglhostFor final;
        # wrap, wrapWith, wrapOffload and hook, as in nix/wrap.nix.
        nixglhostWrap = final.callPackage ./nix/wrap.nix { inherit (final) nixglhost; };
      };

      # home-manager: programs.nixglhost and config.lib.nixglhost.wrap
      # (nix/home-manager.nix), its package this flake's build.
      homeManagerModules.default =
        { pkgs, ... }:
        {
          imports = [ ./nix/home-manager.nix ];
          programs.nixglhost.package = lib.mkDefault (nixglhostFor pkgs);
        };

      # system-manager: services.nixglhost, system mode at boot and the
      # pre-build hook's nix.conf lines (nix/system-manager.nix).
      systemManagerModules.default =
        { pkgs, ... }:
        {
          imports = [ ./nix/system-manager.nix ];
          services.nixglhost.package = lib.mkDefault (nixglhostFor pkgs);
        };

      devShells = forAllSystems (
        system: pkgs: {
          default = pkgs.mkShell {
            packages = with pkgs; [
              (pkgs.go_1_26 or pkgs.go)
              gopls
              gnumake
              gcc
              patchelf # test oracle: DT_RUNPATH of patched copies
              binutils # readelf, the other oracle
              qemu # qemu-aarch64 for the arm64 checks
              shellcheck
              (pkgs.nixfmt or pkgs.nixfmt-rfc-style)
            ];
          };
        }
      );

      # The unit tests that need no network and no real driver: tests whose
      # fixtures are missing in the build sandbox skip themselves
      # (NIXGLHOST_REQUIRE_FIXTURES unset), -short drops the slow corpus walks.
      # fake-root is package.nix's passthru test.
      checks = forAllSystems (
        system: pkgs: {
          package = self.packages.${system}.default;
          inherit (self.packages.${system}.default.passthru.tests) fake-root;
          unit = self.packages.${system}.default.overrideAttrs (old: {
            pname = "nixglhost-unit-tests";
            doCheck = true;
            nativeCheckInputs = with pkgs; [
              fish
              zsh
              groff
            ];
            checkPhase = ''
              runHook preCheck
              export GOFLAGS=''${GOFLAGS//-trimpath/}
              unset NIXGLHOST_REQUIRE_FIXTURES
              go test -short -count=1 -p "$NIX_BUILD_CORES" ./...
              runHook postCheck
            '';
          });
        }
      );

      formatter = forAllSystems (system: pkgs: pkgs.nixfmt-tree or pkgs.nixfmt-rfc-style);
    };
}
