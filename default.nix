# nixglhost as a package function, for callPackage:
#
#   nixglhost = pkgs.callPackage ./default.nix { };
#
# go.mod asks for Go 1.26: where the default buildGoModule is older, pass
# `buildGoModule = pkgs.buildGo126Module;` (flake.nix does).
# vendorHash is kept in step with go.mod and go.sum by scripts/vendorhash.sh.
{
  lib,
  buildGoModule,
  installShellFiles,
  version ? "0-unstable",
  commit ? "unknown",
}:

buildGoModule {
  pname = "nixglhost";
  inherit version;

  # Only what the Go build and its tests read (testdata/ holds the C sources
  # of the test fakes). scripts/nixcheck.sh checks that every tracked Go, C
  # and assembly file lies under one of these.
  src = lib.fileset.toSource {
    root = ./.;
    fileset = lib.fileset.unions [
      ./go.mod
      ./go.sum
      ./cmd
      ./internal
      ./pkg
      ./testdata
      ./nix/nixglhost-run-opengl-driver.service
    ];
  };

  vendorHash = "sha256-NYD3kMAY06IxNf3LYuy2pBkaVs4cs/8Eon/MFbJIWBQ=";

  subPackages = [ "cmd/nixglhost" ];

  # A static binary: it must run on any distribution, before any library of
  # the host or of Nix is in reach.
  env.CGO_ENABLED = 0;

  # buildGoModule adds -trimpath and -buildid= itself.
  ldflags = [
    "-s"
    "-w"
    "-X main.version=${version}"
    "-X main.commit=${commit}"
  ];

  nativeBuildInputs = [ installShellFiles ];

  # The unit tests run in the flake's checks (checks.<system>.unit), not on
  # every build of the package.
  doCheck = false;

  # Completions and the man page come from the same flag table as the usage
  # (internal/cli). The generator runs on the build machine, so it is built
  # for it, not for the cross target.
  postInstall = ''
    env -u GOOS -u GOARCH go run ./internal/cli/gen -out "$TMPDIR/gen" -version ${lib.escapeShellArg version}
    installShellCompletion --cmd nixglhost \
      --bash "$TMPDIR/gen/nixglhost.bash" \
      --zsh "$TMPDIR/gen/_nixglhost" \
      --fish "$TMPDIR/gen/nixglhost.fish"
    installManPage "$TMPDIR/gen/nixglhost.1"

    # The Nix pre-build hook is nixglhost run under this name (nix.conf's
    # pre-build-hook takes a program, no arguments); the unit points
    # /run/opengl-driver at the host's driver at boot (system mode).
    ln -s nixglhost $out/bin/nixglhost-pre-build-hook
    install -Dm644 nix/nixglhost-run-opengl-driver.service \
      $out/lib/systemd/system/nixglhost-run-opengl-driver.service
    substituteInPlace $out/lib/systemd/system/nixglhost-run-opengl-driver.service \
      --replace-fail @bindir@ $out/bin
  '';

  meta = {
    description = "Run Nix-built programs with the host's NVIDIA driver on any Linux";
    longDescription = ''
      nixglhost runs a program built with Nix with the host's NVIDIA driver
      (CUDA, OpenGL, EGL, Vulkan, OpenCL), without exposing the host's libc:
      the driver's libraries go into a private cache entry laid out like
      NixOS's /run/opengl-driver, appended to the program's library path.
    '';
    mainProgram = "nixglhost";
    platforms = lib.platforms.linux;
  };
}
