{
  description = "Run Nix-built programs with the host's NVIDIA driver on any Linux";

  # A released branch with Go 1.26 (go.mod's go line). The lock file is
  # written by the first `nix build`/`nix flake lock` run with network access.
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

      # The package from default.nix, built with Go 1.26 where the default
      # Go is older.
      nixglhostFor =
        pkgs:
        pkgs.callPackage ./default.nix {
          buildGoModule = pkgs.buildGo126Module or pkgs.buildGoModule;
          inherit version commit;
        };
    in
    {
      packages = forAllSystems (
        system: pkgs: {
          nixglhost = nixglhostFor pkgs;
          default = self.packages.${system}.nixglhost;
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

      overlays.default = final: prev: {
        nixglhost = nixglhostFor final;
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
      checks = forAllSystems (
        system: pkgs: {
          package = self.packages.${system}.default;
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
