# package.nix built with a given nixpkgs, with Go 1.26 where that nixpkgs'
# default Go is older: the one expression flake.nix, default.nix and the
# home-manager and system-manager modules build the package with.
pkgs:
pkgs.callPackage ../package.nix {
  buildGo126Module = pkgs.buildGo126Module or pkgs.buildGoModule;
}
