package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// nixWrapExpr builds, with testdata/nix/pkgs.nix standing in for nixpkgs,
// a two-output package holding the Nix-like probe, and wraps it with
// nix/wrap.nix (wrapWith, flags naming the fake root) and with its setup
// hook (automatically after fixup, and by hand). nixglhost itself is a
// package whose bin/nixglhost runs this test binary as main. The verbs are
// filled by fmt: repository, test binary, probe, fake root, cache.
const nixWrapExpr = `
let
  repo = %[1]q;
  pkgs = import (repo + "/testdata/nix/pkgs.nix") { };
  nixglhost = pkgs.runCommand "nixglhost-test" { meta.mainProgram = "nixglhost"; } ''
    mkdir -p $out/bin
    printf '#!/bin/sh\nNIXGLHOST_TEST_AS_MAIN=1 exec %%s "$@"\n' %[2]q > $out/bin/nixglhost
    chmod +x $out/bin/nixglhost
  '';
  w = pkgs.callPackage (repo + "/nix/wrap.nix") { inherit nixglhost; };
  flags = [ "--driver-root" %[4]q "--cache-dir" %[5]q "-d" "/drv" ];
  app = pkgs.runCommand "probe-app-1.0" {
    outputs = [ "out" "man" ];
    meta = { description = "the probe"; mainProgram = "probe"; license = "free"; };
    passthru.kind = "test";
  } ''
    mkdir -p $out/bin $out/lib $out/share/applications $out/share/icons $man/share/man/man1
    cp %[3]q $out/bin/probe
    ln -s probe $out/bin/probe-link
    cp %[3]q $out/bin/.probe-wrapped
    echo data > $out/bin/notes.txt
    echo icon > $out/share/icons/probe.png
    echo lib > $out/lib/libprobe.so
    echo page > $man/share/man/man1/probe.1
    printf '[Desktop Entry]\nName=Probe\nExec=probe --flag %%%%U\nTryExec=%%s/bin/probe\nIcon=probe\n' $out > $out/share/applications/probe.desktop
    printf '[Desktop Entry]\nName=Other\nExec=other-program\n' > $out/share/applications/other.desktop
  '';
  hooked = pkgs.runCommand "probe-hooked" {
    nativeBuildInputs = [ w.hook ];
    nixglhostFlags = flags;
  } ''
    mkdir -p $out/bin
    cp %[3]q $out/bin/probe
    echo data > $out/bin/notes.txt
  '';
  byHand = pkgs.runCommand "probe-by-hand" {
    nativeBuildInputs = [ w.hook ];
    dontWrapNixglhost = true;
  } ''
    mkdir -p $out/bin
    cp %[3]q $out/bin/probe
    cp %[3]q $out/bin/unwrapped
    wrapProgramNixglhost $out/bin/probe ${pkgs.lib.escapeShellArgs flags}
  '';
in
{
  inherit app hooked byHand;
  wrapped = w.wrapWith { inherit flags; } app;
  wrappedMan = (w.wrapWith { inherit flags; } app).man;
  appMeta = app.meta;
  wrappedMeta = (w.wrapWith { inherit flags; } app).meta;
  wrappedOutputs = (w.wrapWith { inherit flags; } app).outputs;
  wrappedPassthru = { inherit ((w.wrapWith { inherit flags; } app)) kind; unwrapped = (w.wrapWith { inherit flags; } app).unwrapped.name; };
}
`

// nixEnv is a private Nix store of dir for nix-build and nix-instantiate:
// its store directory is DIR/store itself (not a chroot of /nix/store),
// so what it builds runs here by its path.
type nixEnv struct {
	dir, file string
	env       []string
}

func (n nixEnv) args(tool string, a ...string) *exec.Cmd {
	store := fmt.Sprintf("local?store=%s/store&state=%s/state&log=%s/log", n.dir, n.dir, n.dir)
	cmd := exec.Command(tool, append([]string{n.file, "--store", store,
		"--option", "sandbox", "false",
		"--option", "build-users-group", "",
		"--option", "substituters", ""}, a...)...)
	cmd.Env = n.env
	return cmd
}

// run runs tool on the expression file with args and returns its stdout.
func (n nixEnv) run(t *testing.T, tool string, a ...string) string {
	t.Helper()
	cmd := n.args(tool, a...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(a, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// TestNixWrap builds wrapped packages with the real Nix (Debian's nix-bin,
// a private store, no sandbox: the stand-in's builder is the host's shell)
// and runs their programs: each must reach the fake driver through
// nixglhost with the flags given to the wrapper (the driver lies in
// ROOT/drv, which only -d /drv under --driver-root ROOT finds), while the
// original program, unwrapped, does not find libcuda. It also checks what
// else the wrapper promises: the other outputs and files are links into
// the original, the .desktop files' Exec and TryExec lines name the
// wrappers, meta and passthru are kept.
func TestNixWrap(t *testing.T) {
	fixtures.SkipShort(t, "the Nix builds of wrapped packages")
	nixBuild, err := exec.LookPath("nix-build")
	if err != nil {
		fixtures.Unavailable(t, "nix-build not installed (Debian: nix-bin): %v", err)
	}
	nixInstantiate, err := exec.LookPath("nix-instantiate")
	if err != nil {
		fixtures.Unavailable(t, "nix-instantiate not installed (Debian: nix-bin): %v", err)
	}
	root, cache := hookRoot(t)
	store := fixtures.NixStore(t, "amd64")
	probe := store.Probe(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	n := nixEnv{
		dir:  work,
		file: filepath.Join(work, "default.nix"),
		env:  []string{"PATH=/usr/bin:/bin", "HOME=" + work, "NIX_CONF_DIR=" + work, "XDG_CACHE_HOME=" + filepath.Join(work, "cache")},
	}
	expr := fmt.Sprintf(nixWrapExpr, fixtures.RepoRoot(), self, probe, root, cache)
	if err := os.WriteFile(n.file, []byte(expr), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(attr string) string { return n.run(t, nixBuild, "-A", attr, "--no-out-link") }
	app, wrapped, man := build("app"), build("wrapped"), build("wrappedMan")
	hooked, byHand := build("hooked"), build("byHand")

	env := []string{"PATH=/usr/bin:/bin", "HOME=" + work, "CUDA_CACHE_DISABLE=1"}
	if res, out := store.RunProbe(t, filepath.Join(app, "bin/probe"), env); res.CUDADlopen == "ok" {
		t.Fatalf("the unwrapped program found libcuda: the test proves nothing\n%s", out)
	}
	for _, tc := range []struct{ name, prog string }{
		{"wrapWith", filepath.Join(wrapped, "bin/probe")},
		{"wrapWith, a link in bin", filepath.Join(wrapped, "bin/probe-link")},
		{"hook after fixup", filepath.Join(hooked, "bin/probe")},
		{"wrapProgramNixglhost", filepath.Join(byHand, "bin/probe")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, out := store.RunProbe(t, tc.prog, env)
			checkProbe(t, res, out, store, root)
		})
	}

	// What each output holds: a wrapper script or a file (its first line,
	// "ELF" for a program, and its mode), a link, or a directory.
	describe := func(p string) string {
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
			return "missing"
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			return "-> " + target
		case fi.IsDir():
			return "dir"
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err.Error()
		}
		first, _, _ := strings.Cut(string(b), "\n")
		if strings.HasPrefix(first, "\x7fELF") {
			first = "ELF"
		}
		return fmt.Sprintf("%s (%o)", first, fi.Mode().Perm())
	}
	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"wrapper", filepath.Join(wrapped, "bin/probe"), "#!/bin/sh (555)"},
		{"link in bin wrapped", filepath.Join(wrapped, "bin/probe-link"), "#!/bin/sh (555)"},
		{"not executable", filepath.Join(wrapped, "bin/notes.txt"), "-> " + filepath.Join(app, "bin/notes.txt")},
		{"hidden program", filepath.Join(wrapped, "bin/.probe-wrapped"), "-> " + filepath.Join(app, "bin/.probe-wrapped")},
		{"other directory", filepath.Join(wrapped, "lib"), "-> " + filepath.Join(app, "lib")},
		{"share", filepath.Join(wrapped, "share"), "dir"},
		{"share entry", filepath.Join(wrapped, "share/icons"), "-> " + filepath.Join(app, "share/icons")},
		{"desktop file", filepath.Join(wrapped, "share/applications/probe.desktop"), "[Desktop Entry] (444)"},
		{"man output", filepath.Join(man, "share/man"), "-> " + filepath.Join(n.run(t, nixBuild, "-A", "app.man", "--no-out-link"), "share/man")},
		{"hook wrapper", filepath.Join(hooked, "bin/probe"), "#!/bin/sh (555)"},
		{"hook keeps the program", filepath.Join(hooked, "bin/.probe-nixglhost-wrapped"), "ELF (555)"},
		{"hook leaves data", filepath.Join(hooked, "bin/notes.txt"), "data (444)"},
		{"by hand: only what was named", filepath.Join(byHand, "bin/unwrapped"), "ELF (555)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(tc.path); got != tc.want {
				t.Errorf("%s: %s, want %s", tc.path, got, tc.want)
			}
		})
	}

	desktop, err := os.ReadFile(filepath.Join(wrapped, "share/applications/probe.desktop"))
	if err != nil {
		t.Fatal(err)
	}
	wantDesktop := "[Desktop Entry]\nName=Probe\nExec=" + wrapped + "/bin/probe --flag %U\nTryExec=" + wrapped + "/bin/probe\nIcon=probe\n"
	if diff := cmp.Diff(wantDesktop, string(desktop)); diff != "" {
		t.Errorf("probe.desktop (-want +got):\n%s", diff)
	}
	// A bare name the package does not wrap is left as it is.
	other, err := os.ReadFile(filepath.Join(wrapped, "share/applications/other.desktop"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("[Desktop Entry]\nName=Other\nExec=other-program\n", string(other)); diff != "" {
		t.Errorf("other.desktop (-want +got):\n%s", diff)
	}

	eval := func(attr string) any {
		var v any
		if err := json.Unmarshal([]byte(n.run(t, nixInstantiate, "--eval", "--strict", "--json", "-A", attr)), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if diff := cmp.Diff(eval("appMeta"), eval("wrappedMeta")); diff != "" {
		t.Errorf("meta (-app +wrapped):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"out", "man"}, eval("wrappedOutputs")); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"kind": "test", "unwrapped": "probe-app-1.0"}, eval("wrappedPassthru")); diff != "" {
		t.Errorf("passthru (-want +got):\n%s", diff)
	}
}

// TestPackageFakeRootTest builds package.nix's passthru.tests.fake-root
// with the real Nix, testdata/nix/pkgs.nix standing in for nixpkgs (its
// buildGo126Module installs a given program instead of building Go), so
// that the test's own script runs here: with nixglhost (this test binary
// as main) it must pass; with a launcher that runs the program without
// the driver it must fail, or the test proves nothing.
func TestPackageFakeRootTest(t *testing.T) {
	fixtures.SkipShort(t, "the Nix build of package.nix's passthru test")
	nixBuild, err := exec.LookPath("nix-build")
	if err != nil {
		fixtures.Unavailable(t, "nix-build not installed (Debian: nix-bin): %v", err)
	}
	if _, err := exec.LookPath("cc"); err != nil {
		fixtures.Unavailable(t, "no cc to build the fakes (Debian: gcc): %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		launcher string
		ok       bool
		// out is a line the build's output must hold.
		out string
	}{
		{"nixglhost", fmt.Sprintf("#!/bin/sh\n%s=1 exec %q \"$@\"\n", asMainEnv, self), true, "cuInit 100"},
		// Drops every flag and runs the program as it is.
		{"no driver", "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift\nexec \"$@\"\n", false, "dlopen libcuda.so.1: cannot open shared object file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			launcher := filepath.Join(work, "launcher")
			if err := os.WriteFile(launcher, []byte(tc.launcher), 0o755); err != nil {
				t.Fatal(err)
			}
			n := nixEnv{
				dir:  work,
				file: filepath.Join(work, "default.nix"),
				env:  []string{"PATH=/usr/bin:/bin", "HOME=" + work, "NIX_CONF_DIR=" + work, "XDG_CACHE_HOME=" + filepath.Join(work, "cache")},
			}
			expr := fmt.Sprintf(`let
  pkgs = import %q { nixglhostBinary = %q; };
in
(pkgs.callPackage %q { }).passthru.tests.fake-root
`, filepath.Join(fixtures.RepoRoot(), "testdata/nix/pkgs.nix"), launcher, filepath.Join(fixtures.RepoRoot(), "package.nix"))
			if err := os.WriteFile(n.file, []byte(expr), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := n.args(nixBuild, "--no-out-link")
			out, err := cmd.CombinedOutput()
			if tc.ok && err != nil {
				t.Fatalf("passthru.tests.fake-root failed with nixglhost: %v\n%s", err, out)
			}
			if !tc.ok && err == nil {
				t.Fatalf("passthru.tests.fake-root passed without the driver: it proves nothing\n%s", out)
			}
			if !strings.Contains(string(out), tc.out) {
				t.Errorf("the build's output lacks %q:\n%s", tc.out, out)
			}
		})
	}
}
