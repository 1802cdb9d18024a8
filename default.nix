# The plain-Nix entry, for users without flakes (flake.nix offers the same):
#
#   let
#     pkgs = import <nixpkgs> { };
#     nixglhost = import ./path/to/nixglhost { inherit pkgs; };
#   in
#   [ nixglhost.nixglhost (nixglhost.wrap pkgs.blender) ]
#
# nixglhost: the package (package.nix); wrap, wrapWith, wrapOffload and
# hook: nix/wrap.nix; homeManagerModule and systemManagerModule: the
# modules of nix/. `nix-build` builds the package and the hook.
{
  pkgs ? import <nixpkgs> { },
}:

let
  nixglhost = import ./nix/nixglhost.nix pkgs;
  w = pkgs.callPackage ./nix/wrap.nix { inherit nixglhost; };
in
{
  inherit nixglhost;
  inherit (w)
    wrap
    wrapWith
    wrapOffload
    hook
    ;
  homeManagerModule = ./nix/home-manager.nix;
  systemManagerModule = ./nix/system-manager.nix;
}
