# nixglhost, in nixpkgs' by-name shape (pkgs/by-name/ni/nixglhost/package.nix):
# a callPackage function of packages only, finalAttrs, meta complete,
# passthru.tests, an install check of --version. flake.nix and default.nix
# build this same file.
#
# What differs in nixpkgs' copy is the source: there it is the release tag,
#   src = fetchFromGitHub {
#     owner = "nixglhost";
#     repo = "nixglhost";
#     tag = "v${finalAttrs.version}";
#     hash = "...";
#   };
# with version the release's and commit the tag's, here the working tree
# (the flake stamps its date and revision over version and commit with
# overrideAttrs). vendorHash is kept in step with go.mod and go.sum by
# scripts/vendorhash.sh.
{
  lib,
  buildGo126Module,
  installShellFiles,
  versionCheckHook,
  runCommandCC,
}:

buildGo126Module (finalAttrs: {
  pname = "nixglhost";
  version = "0-unstable";

  # The revision --version names ("unknown" outside a checkout).
  commit = "unknown";

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
    "-X main.version=${finalAttrs.version}"
    "-X main.commit=${finalAttrs.commit}"
  ];

  nativeBuildInputs = [ installShellFiles ];

  # The unit tests need the fixtures of `make fixtures` and real loaders; the
  # flake's checks.<system>.unit runs those that do not (go test -short).
  # passthru.tests runs the built launcher on a fake driver.
  doCheck = false;

  # Completions and the man page come from the same flag table as the usage
  # (internal/cli). The generator runs on the build machine, so it is built
  # for it, not for the cross target.
  postInstall = ''
    env -u GOOS -u GOARCH go run ./internal/cli/gen -out "$TMPDIR/gen" -version ${lib.escapeShellArg finalAttrs.version}
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

  nativeInstallCheckInputs = [ versionCheckHook ];
  versionCheckProgramArg = "--version";
  doInstallCheck = true;

  passthru.tests = {
    # The launcher on a fake root: gcc-built stand-ins for libcuda and the
    # PTX JIT compiler (testdata/fakes) in ROOT/drv, and a program that
    # dlopens libcuda.so.1 by soname, as a Nix-built CUDA program does. It
    # finds nothing alone; through nixglhost it loads the cache entry's
    # libcuda.so.1, a link to the fake one, whose cuInit finds the PTX JIT
    # compiler (100, not 221).
    fake-root =
      runCommandCC "nixglhost-test-fake-root"
        {
          nativeBuildInputs = [ finalAttrs.finalPackage ];
          inherit (finalAttrs) src;
        }
        ''
          v=535.261.03
          root=$TMPDIR/root
          mkdir -p "$root/drv"
          cc -shared -fPIC -DFAKE_VERSION="\"$v\"" -DFAKE_CUDA_VERSION=12020 \
            -Wl,-soname,libnvidia-ptxjitcompiler.so.1 \
            -o "$root/drv/libnvidia-ptxjitcompiler.so.$v" "$src/testdata/fakes/ptxjit.c"
          cc -shared -fPIC -DFAKE_VERSION="\"$v\"" -DFAKE_CUDA_VERSION=12020 \
            -Wl,-soname,libcuda.so.1 \
            -o "$root/drv/libcuda.so.$v" "$src/testdata/fakes/cuda.c" -ldl
          ln -s "libcuda.so.$v" "$root/drv/libcuda.so.1"
          ln -s "libnvidia-ptxjitcompiler.so.$v" "$root/drv/libnvidia-ptxjitcompiler.so.1"
          cc -o "$TMPDIR/cuinit" "$src/testdata/nix/cuinit.c" -ldl

          if ! res=$(nixglhost --driver-root "$root" -d /drv --cache-dir "$TMPDIR/cache" -- "$TMPDIR/cuinit"); then
            echo "$res"
            echo "cuinit failed through nixglhost" >&2
            exit 1
          fi
          echo "$res"
          lib=$(echo "$res" | sed -n 's/^libcuda //p')
          case $lib in
          "$TMPDIR"/cache/*/lib/libcuda.so.1) ;;
          *)
            echo "libcuda was not loaded from the cache entry: $lib" >&2
            exit 1
            ;;
          esac
          if [ "$(readlink -f "$lib")" != "$(readlink -f "$root/drv/libcuda.so.$v")" ]; then
            echo "$lib is not the fake root's libcuda" >&2
            exit 1
          fi
          echo "$res" | grep -qx 'cuInit 100'
          touch "$out"
        '';
  };

  meta = {
    description = "Run Nix-built programs with the host's GPU driver on any Linux";
    longDescription = ''
      nixglhost runs a program built with Nix with the host's NVIDIA driver
      (CUDA, OpenGL, EGL, Vulkan, OpenCL) or Mesa, without exposing the
      host's libc: the driver's libraries go into a private cache entry laid
      out like NixOS's /run/opengl-driver, appended to the program's library
      path. It can also point /run/opengl-driver at that entry (system
      mode), give GPU derivations the driver in Nix's build sandbox (a
      pre-build hook) and write a CDI spec for containers.
    '';
    homepage = "https://github.com/nixglhost/nixglhost";
    # The repository has no LICENSE file yet: nixpkgs needs meta.license,
    # to be set here once one is chosen.
    mainProgram = "nixglhost";
    platforms = lib.platforms.linux;
  };
})
