# A system-manager module (numtide's system-manager: NixOS-style
# configuration of a non-NixOS host) for system mode and the pre-build hook:
#
#   services.nixglhost.enable = true;                 # /run/opengl-driver at boot
#   services.nixglhost.preBuildHook.enable = true;    # GPUs inside nix build
#
# System mode is the unit of nix/nixglhost-run-opengl-driver.service, the
# same commands (nix/modules-check.nix compares them with the file),
# started by system-manager.target: at every switch and every boot. The
# hook is two nix.conf lines in nix.settings, which system-manager writes
# only once it manages /etc/nix/nix.conf (see its documentation); restart
# nix-daemon afterwards. The flake exports it as
# systemManagerModules.default.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.nixglhost;
  bin = "${cfg.package}/bin";
in
{
  options.services.nixglhost = {
    enable = lib.mkEnableOption "nixglhost, which runs Nix-built programs with the host's GPU driver";

    package = lib.mkOption {
      type = lib.types.package;
      default = import ./nixglhost.nix pkgs;
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The nixglhost package.";
    };

    systemMode.enable = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Point /run/opengl-driver at the host's driver at every boot (and
        write the CDI spec for containers in /var/run/cdi), so that every
        Nix program linked with addDriverRunpath finds it with no wrapper.
      '';
    };

    preBuildHook = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = ''
          Make nixglhost Nix's pre-build-hook, so that derivations requiring
          one of `features` get the driver and the GPU's device nodes in the
          build sandbox. Sets nix.settings, which system-manager writes to
          /etc/nix/nix.conf only when it manages that file.
        '';
      };
      features = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [
          "cuda"
          "opengl"
          "nvidia-gpu"
          "rocm"
        ];
        description = ''
          The system features added to nix.conf (extra-system-features): the
          ones the hook serves unless told otherwise.
        '';
      };
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        environment.systemPackages = [ cfg.package ];
      }
      (lib.mkIf cfg.systemMode.enable {
        systemd.services.nixglhost-run-opengl-driver = {
          description = "Link /run/opengl-driver to the host's NVIDIA driver for Nix programs (nixglhost)";
          after = [
            "systemd-modules-load.service"
            "nvidia-persistenced.service"
            "local-fs.target"
          ];
          wantedBy = [ "system-manager.target" ];
          unitConfig.ConditionPathExists = "!/etc/NIXOS";
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            ExecStart = [
              "${bin}/nixglhost --link-run-opengl-driver"
              "-${bin}/nixglhost --cdi-spec --cdi-dir /var/run/cdi"
            ];
            ExecStop = "${bin}/nixglhost --unlink-run-opengl-driver";
          };
        };
      })
      (lib.mkIf cfg.preBuildHook.enable {
        nix.settings = {
          pre-build-hook = "${bin}/nixglhost-pre-build-hook";
          extra-system-features = cfg.preBuildHook.features;
        };
      })
    ]
  );
}
