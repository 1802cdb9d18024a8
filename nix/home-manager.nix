# A home-manager module: nixglhost in the profile, and the wrap function as
#   config.lib.nixglhost.wrap pkgs.blender
# (as home-manager's nixGL integration offers config.lib.nixGL.wrap), so
#   home.packages = [ (config.lib.nixglhost.wrap pkgs.blender) ];
# runs blender's programs, .desktop entries included, through nixglhost.
# The flake exports it as homeManagerModules.default (package: the flake's
# build); without flakes: imports = [ ./nix/home-manager.nix ].
# nix/modules-check.nix evaluates it (scripts/nixcheck.sh).
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.programs.nixglhost;
  w = pkgs.callPackage ./wrap.nix { nixglhost = cfg.package; };
in
{
  options.programs.nixglhost = {
    enable = lib.mkEnableOption "nixglhost, which runs Nix-built programs with the host's GPU driver";

    package = lib.mkOption {
      type = lib.types.package;
      default = import ./nixglhost.nix pkgs;
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The nixglhost package, for the profile and the wrappers.";
    };

    flags = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "--mesa" ];
      description = ''
        Flags every program wrapped by config.lib.nixglhost.wrap passes to
        nixglhost (before the `--`): `-d DIR`, `--mesa`, `--prime`...
      '';
    };
  };

  config = lib.mkMerge [
    {
      # Defined whether or not enable is set: a wrapper names the package by
      # its store path and needs nothing in the profile.
      lib.nixglhost = {
        # wrap PKG: PKG's programs run through nixglhost with the flags above.
        wrap = w.wrapWith { inherit (cfg) flags; };
        # wrapWith { flags = [ ... ]; } PKG: with these flags instead.
        inherit (w) wrapWith;
        # wrapOffload PKG: the flags above and --prime (PRIME render offload).
        wrapOffload = w.wrapWith { flags = cfg.flags ++ [ "--prime" ]; };
      };
    }
    (lib.mkIf cfg.enable {
      home.packages = [ cfg.package ];
    })
  ];
}
