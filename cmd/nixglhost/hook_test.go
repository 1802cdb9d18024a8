package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// drvFixture returns the path of testdata/drv/NAME.drv.
func drvFixture(name string) string {
	return filepath.Join(fixtures.RepoRoot(), "testdata", "drv", name+".drv")
}

// hookRoot is a fake host for the hook: the gcc-built driver in ROOT/drv,
// stand-ins for the generic libraries it loads (real files behind soname
// links, as distributions install them), and GPU device nodes (plain
// files: the hook only lists them) beside some that are not the GPU's.
func hookRoot(t *testing.T) (root, cache string) {
	t.Helper()
	root = t.TempDir()
	cache = filepath.Join(t.TempDir(), "nix-gl-host")
	fixtures.FakeDriver(t, filepath.Join(root, "drv"), "535.261.03", "amd64")
	lib := filepath.Join(root, "usr/lib/x86_64-linux-gnu")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ soname, file string }{
		{"libX11.so.6", "libX11.so.6.4.0"},
		{"libXext.so.6", "libXext.so.6.4.0"},
		{"libdrm.so.2", "libdrm.so.2.4.0"},
	} {
		p := fixtures.FakeStub(t, lib, l.soname, "amd64")
		if err := os.Rename(p, filepath.Join(lib, l.file)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(l.file, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"dev/dri", "dev/nvidia-caps"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"nvidiactl", "nvidia0", "nvidia1", "nvidia2", "nvidia10", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "null", "nvidia-caps/nvidia-cap1", "dri/card0", "dri/renderD128"} {
		if err := os.WriteFile(filepath.Join(root, "dev", f), nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	return root, cache
}

// gpuOutput is the hook's exact output for a GPU derivation on hookRoot,
// with $ROOT and $ENTRY for the paths that vary.
const gpuOutput = `extra-sandbox-paths
/run/opengl-driver=$ENTRY
$ROOT/drv/libEGL_nvidia.so.535.261.03
$ROOT/drv/libnvidia-glcore.so.535.261.03
$ROOT/drv/libnvidia-ml.so.535.261.03
$ROOT/drv/libnvidia-ptxjitcompiler.so.535.261.03
$ROOT/usr/lib/x86_64-linux-gnu/libX11.so.6.4.0
$ROOT/usr/lib/x86_64-linux-gnu/libXext.so.6.4.0
$ROOT/usr/lib/x86_64-linux-gnu/libdrm.so.2.4.0
/dev/nvidiactl=$ROOT/dev/nvidiactl
/dev/nvidia0=$ROOT/dev/nvidia0
/dev/nvidia1=$ROOT/dev/nvidia1
/dev/nvidia2=$ROOT/dev/nvidia2
/dev/nvidia10=$ROOT/dev/nvidia10
/dev/nvidia-uvm=$ROOT/dev/nvidia-uvm
/dev/nvidia-uvm-tools=$ROOT/dev/nvidia-uvm-tools
/dev/nvidia-modeset=$ROOT/dev/nvidia-modeset
/dev/dri=$ROOT/dev/dri

`

// entryIn returns the single entry of the system cache.
func entryIn(t *testing.T, cache string) string {
	t.Helper()
	ents, _ := filepath.Glob(filepath.Join(cache, "[0-9a-f]*"))
	if len(ents) != 1 {
		t.Fatalf("system cache %s holds %v, want one entry", cache, ents)
	}
	return ents[0]
}

func TestPreBuildHook(t *testing.T) {
	root, cache := hookRoot(t)
	for _, tc := range []struct {
		name string
		drv  string
		env  []string
		args []string
		// sandbox passes the second argument, as Nix does with a sandbox.
		sandbox bool
		gpu     bool
	}{
		{name: "plain env, cuda", drv: "plain-cuda", gpu: true},
		{name: "several features", drv: "several", gpu: true},
		{name: "no GPU feature", drv: "other-features"},
		{name: "no features", drv: "no-features"},
		{name: "structured attrs, cuda", drv: "structured-cuda", gpu: true},
		{name: "structured attrs, none", drv: "structured-none"},
		{name: "opengl, two outputs", drv: "multi-output", gpu: true},
		{name: "inputs, kvm and cuda", drv: "with-inputs", gpu: true},
		{name: "DrvWithVersion", drv: "with-version", gpu: true},
		{name: "features flag", drv: "other-features", args: []string{"--hook-features", "kvm"}, gpu: true},
		{name: "features flag replaces the default", drv: "plain-cuda", args: []string{"--hook-features", "kvm,gpu"}},
		{name: "features from the environment", drv: "other-features", env: []string{"NIXGLHOST_HOOK_FEATURES=big-parallel gpu"}, gpu: true},
		{name: "flag over environment", drv: "other-features", env: []string{"NIXGLHOST_HOOK_FEATURES=kvm"}, args: []string{"--hook-features", "cuda"}},
		{name: "with the sandbox argument", drv: "plain-cuda", sandbox: true, gpu: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--nix-pre-build-hook", "--driver-root", root, "--cache-dir", cache, "-d", "/drv"}, tc.args...)
			args = append(args, drvFixture(tc.drv))
			if tc.sandbox {
				args = append(args, drvFixture(tc.drv)+".chroot")
			}
			stdout, stderr, code := nixglhost(t, baseEnv(t, tc.env...), args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			want := ""
			if tc.gpu {
				want = strings.NewReplacer("$ENTRY", entryIn(t, cache), "$ROOT", root).Replace(gpuOutput)
			}
			if diff := cmp.Diff(want, stdout); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if stderr != "" {
				t.Errorf("stderr: %s", stderr)
			}
		})
	}
}

// TestPreBuildHookMounts reads the output as Nix does and checks that the
// sandbox would have what the entry's symlinks name, and that the entry is
// a /run/opengl-driver: lib/libcuda.so.1 and the vendor JSON files.
func TestPreBuildHookMounts(t *testing.T) {
	root, cache := hookRoot(t)
	stdout, stderr, code := nixglhost(t, baseEnv(t), "--nix-pre-build-hook", "--driver-root", root, "--cache-dir", cache, "-d", "/drv", drvFixture("plain-cuda"))
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("hook output:\n%s", stdout)
	mounts, err := parseNixHookOutput(stdout)
	if err != nil {
		t.Fatal(err)
	}
	entry := mounts["/run/opengl-driver"]
	if entry != entryIn(t, cache) {
		t.Fatalf("/run/opengl-driver=%q, want the system entry", entry)
	}
	checkEntry(t, entry)
	for inside, outside := range mounts {
		if _, err := os.Stat(outside); err != nil {
			t.Errorf("%s=%s: the source does not exist: %v", inside, outside, err)
		}
	}
	for _, p := range []string{"lib/libcuda.so.1", "lib/libnvidia-ptxjitcompiler.so.1", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(entry, p)); err != nil {
			t.Errorf("entry: %v", err)
		}
	}
	// Every symlink in the entry leads, inside the sandbox, to something
	// mounted: the entry itself or a host path printed.
	filepath.WalkDir(entry, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return err
		}
		target, _ := os.Readlink(p)
		if !filepath.IsAbs(target) {
			return nil
		}
		if _, ok := mounts[target]; !ok {
			t.Errorf("%s -> %s: not in the sandbox paths", p, target)
		}
		return nil
	})
}

// parseNixHookOutput reads the hook's output as Nix's parsePreBuildHook
// does and returns the sandbox paths, inside -> outside.
func parseNixHookOutput(out string) (map[string]string, error) {
	m := map[string]string{}
	inPaths := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !inPaths && (line == "extra-sandbox-paths" || line == "extra-chroot-dirs"):
			inPaths = true
		case !inPaths:
			return nil, fmt.Errorf("unknown pre-build hook command %q", line)
		case line == "":
			inPaths = false
		default:
			inside, outside, ok := strings.Cut(line, "=")
			if !ok {
				outside = line
			}
			m[inside] = outside
		}
	}
	if inPaths {
		return nil, fmt.Errorf("no empty line ends the paths")
	}
	return m, sc.Err()
}

// TestPreBuildHookErrors: a .drv that is not well formed, or a GPU
// derivation on a host with no driver, is exit 1 with the reason on stderr
// and nothing on stdout (Nix then fails that build, showing it); a .drv
// that is not on this machine (a remote build) is no paths and exit 0.
func TestPreBuildHookErrors(t *testing.T) {
	root, cache := hookRoot(t)
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"truncated", []string{drvFixture("malformed/truncated")}, 1, "malformed derivation at byte 147: unterminated string"},
		{"empty", []string{drvFixture("malformed/empty")}, 1, "malformed derivation at byte 0"},
		{"trailing data", []string{drvFixture("malformed/trailing-data")}, 1, "trailing data after the derivation"},
		{"not a derivation", []string{drvFixture("malformed/json-file")}, 1, "malformed derivation"},
		{"bad __json", []string{drvFixture("malformed/json-invalid")}, 1, "structured attributes (__json)"},
		{"features not a list", []string{drvFixture("malformed/json-features-string")}, 1, "requiredSystemFeatures is not a list of strings"},
		{"not on this machine", []string{"/nix/store/00000000000000000000000000000000-remote.drv"}, 0, "is not on this machine: no sandbox paths"},
		{"a directory", []string{empty}, 1, empty},
		{"no driver", []string{"--driver-root", empty, drvFixture("plain-cuda")}, 1, "requires cuda: no NVIDIA driver found under " + empty},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--nix-pre-build-hook", "--driver-root", root, "--cache-dir", cache, "-d", "/drv"}, tc.args...)
			if tc.name == "no driver" {
				args = append([]string{"--nix-pre-build-hook", "--cache-dir", cache}, tc.args...)
			}
			stdout, stderr, code := nixglhost(t, baseEnv(t), args...)
			if code != tc.code || !strings.Contains(stderr, tc.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.msg)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if tc.code == 1 && !strings.Contains(stderr, tc.args[len(tc.args)-1]) {
				t.Errorf("stderr %q does not name the derivation", stderr)
			}
		})
	}
}

// TestPreBuildHookByName: installed as nixglhost-pre-build-hook (a
// symlink), it is the hook with Nix's bare arguments; a chroot store's
// derivation is found through the sandbox path.
func TestPreBuildHookByName(t *testing.T) {
	root, cache := hookRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A chroot store (nix --store DIR): Nix names /nix/store/X.drv, the file
	// is DIR/nix/store/X.drv, the sandbox DIR/nix/store/X.drv.chroot.
	store := filepath.Join(t.TempDir(), "nix/store")
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	name := "1vqzm7hy21nsfxyqh48c5zaifpkyclid-plain-cuda.drv"
	b, err := os.ReadFile(drvFixture("plain-cuda"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store, name), b, 0o444); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no features", []string{drvFixture("no-features")}, ""},
		{"chroot store", []string{"--driver-root", root, "--cache-dir", cache, "-d", "/drv", "/nix/store/" + name, filepath.Join(store, name+".chroot")}, "/run/opengl-driver="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := execSelf(t, self, baseEnv(t), tc.args...)
			cmd.Args[0] = hookName
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			if tc.want == "" && stdout.Len() != 0 || !strings.Contains(stdout.String(), tc.want) {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.want)
			}
		})
	}
}

// TestHookHostileDerivation: a well-formed .drv of tens of MiB (any user
// can make Nix call the hook with one) is answered in little memory: the
// hook streams the features and keeps nothing else. The tree parser it
// replaced took 33 s and 628 MB on 16 MiB of empty strings; reading a
// 60 MiB __json value whole took the hook to a 194 MiB peak (7 MiB now). A
// child's peak RSS includes this test process's at the time it was
// started, so the hook's cost is the difference with a run on a small
// derivation.
func TestHookHostileDerivation(t *testing.T) {
	root, cache := hookRoot(t)
	peak := func(drvPath string) int64 {
		cmd := execSelf(t, testBinary(t), baseEnv(t), "--nix-pre-build-hook", "--driver-root", root, "--cache-dir", cache, "-d", "/drv", drvPath)
		out, err := cmd.Output()
		if err != nil || len(out) != 0 {
			t.Fatalf("hook %s: %v, stdout %q; want nothing for a derivation without a GPU feature", drvPath, err, out)
		}
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			t.Fatal("no resource usage for the hook process")
		}
		return ru.Maxrss << 10
	}
	small := peak(drvFixture("other-features"))
	for _, tc := range []struct {
		name  string
		write func(w *bufio.Writer)
	}{
		{"16 MiB of empty strings", func(w *bufio.Writer) {
			w.WriteString(`Derive([("out","/nix/store/x-out","","")],[],[],"x86_64-linux","/bin/sh",[""`)
			for range 16 << 20 / 3 {
				w.WriteString(`,""`)
			}
			w.WriteString(`],[("requiredSystemFeatures","kvm")])`)
		}},
		{"a 60 MiB __json value", func(w *bufio.Writer) {
			w.WriteString(`Derive([("out","/nix/store/x-out","","")],[],[],"x86_64-linux","/bin/sh",[],[("__json","{\"blob\":\"`)
			chunk := strings.Repeat("x", 4096)
			for range 60 << 20 / len(chunk) {
				w.WriteString(chunk)
			}
			w.WriteString(`\",\"requiredSystemFeatures\":[\"kvm\"]}")])`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "hostile.drv")
			f, err := os.Create(p)
			fixtures.Must(t, err)
			w := bufio.NewWriter(f)
			tc.write(w)
			fixtures.Must(t, w.Flush())
			fixtures.Must(t, f.Close())
			hostile := peak(p)
			t.Logf("hook peak memory: %d MiB, %d MiB for a small derivation", hostile>>20, small>>20)
			if hostile-small > 16<<20 {
				t.Errorf("hook peak memory %d MiB for %s, %d MiB for a small derivation: want under 16 MiB more", hostile>>20, tc.name, small>>20)
			}
		})
	}
}

// TestHookBindsOnlyManifestFiles: a link in a built entry replaced by a
// link to another file (a secret) makes the hook refuse, instead of
// binding that file into the sandbox as an extra path.
func TestHookBindsOnlyManifestFiles(t *testing.T) {
	root, cache := hookRoot(t)
	args := []string{"--nix-pre-build-hook", "--driver-root", root, "--cache-dir", cache, "-d", "/drv", drvFixture("plain-cuda")}
	if stdout, stderr, code := nixglhost(t, baseEnv(t), args...); code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, stdout, stderr)
	}
	entry := entryIn(t, cache)
	secret := filepath.Join(t.TempDir(), "secret")
	fixtures.Must(t, os.WriteFile(secret, []byte("root's secret\n"), 0o600))
	links, err := filepath.Glob(filepath.Join(entry, "lib", "libnvidia-ml.so*"))
	fixtures.Must(t, err)
	if len(links) == 0 {
		t.Fatalf("no libnvidia-ml in %s", entry)
	}
	victim := links[len(links)-1]
	fixtures.Must(t, os.Remove(victim))
	fixtures.Must(t, os.Symlink(secret, victim))
	stdout, stderr, code := nixglhost(t, baseEnv(t), args...)
	if code == 0 || strings.Contains(stdout, secret) || !strings.Contains(stderr, secret) {
		t.Errorf("exit %d, stdout %q, stderr %q: want a refusal naming %s, and nothing printed", code, stdout, stderr, secret)
	}
}

// TestPreBuildHookROCm: a derivation requiring "rocm" gets the GPU's
// device nodes (/dev/kfd and /dev/dri) and no driver entry: ROCm's
// userspace comes from Nix itself. It works on a host with no NVIDIA or
// Mesa driver at all, where a "cuda" derivation fails for want of one.
func TestPreBuildHookROCm(t *testing.T) {
	root := t.TempDir()
	cache := filepath.Join(t.TempDir(), "nix-gl-host")
	fixtures.Write(t, filepath.Join(root, "dev/kfd"), "")
	fixtures.Write(t, filepath.Join(root, "dev/dri/renderD128"), "")
	p := filepath.Join(t.TempDir(), "rocm.drv")
	fixtures.Write(t, p, `Derive([("out","/nix/store/x-out","","")],[],[],"x86_64-linux","/bin/sh",[],[("requiredSystemFeatures","rocm big-parallel")])`)
	stdout, stderr, code := nixglhost(t, baseEnv(t), "--nix-pre-build-hook", "--driver-root", root, "--cache-dir", cache, p)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	want := "extra-sandbox-paths\n/dev/dri=" + filepath.Join(root, "dev/dri") + "\n/dev/kfd=" + filepath.Join(root, "dev/kfd") + "\n\n"
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	cuda := filepath.Join(t.TempDir(), "cuda.drv")
	fixtures.Write(t, cuda, `Derive([("out","/nix/store/x-out","","")],[],[],"x86_64-linux","/bin/sh",[],[("requiredSystemFeatures","cuda")])`)
	if stdout, _, code := nixglhost(t, baseEnv(t), "--nix-pre-build-hook", "--driver-root", root, "--cache-dir", cache, cuda); code == 0 || stdout != "" {
		t.Errorf("a cuda derivation on a host without a driver: exit %d, stdout %q", code, stdout)
	}
}

// TestPreBuildHookDevices: the device nodes follow the features a
// derivation asks for. On a host with NVIDIA's nodes, /dev/dri and
// /dev/kfd, a rocm-only derivation gets /dev/kfd and /dev/dri and nothing
// of NVIDIA's; a driver feature gets NVIDIA's nodes and /dev/dri, not
// /dev/kfd; both together get every node; a feature the administrator
// configured that nixglhost does not know gets the entry and every node.
func TestPreBuildHookDevices(t *testing.T) {
	root, cache := hookRoot(t)
	fixtures.Write(t, filepath.Join(root, "dev/kfd"), "")
	nvidia := []string{"/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia2", "/dev/nvidia10", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"}
	type lines struct {
		Entry   bool
		Devices []string
	}
	for _, tc := range []struct {
		name     string
		features string
		args     []string
		want     lines
	}{
		{name: "rocm only", features: "rocm big-parallel", want: lines{Devices: []string{"/dev/dri", "/dev/kfd"}}},
		{name: "cuda", features: "cuda", want: lines{Entry: true, Devices: append(slices.Clone(nvidia), "/dev/dri")}},
		{name: "nvidia-gpu", features: "nvidia-gpu", want: lines{Entry: true, Devices: append(slices.Clone(nvidia), "/dev/dri")}},
		{name: "opengl", features: "opengl", want: lines{Entry: true, Devices: append(slices.Clone(nvidia), "/dev/dri")}},
		{name: "rocm and cuda", features: "rocm cuda", want: lines{Entry: true, Devices: append(slices.Clone(nvidia), "/dev/dri", "/dev/kfd")}},
		{name: "configured feature", features: "gpu", args: []string{"--hook-features", "gpu"}, want: lines{Entry: true, Devices: append(slices.Clone(nvidia), "/dev/dri", "/dev/kfd")}},
		{name: "rocm not configured", features: "rocm cuda", args: []string{"--hook-features", "cuda"}, want: lines{Entry: true, Devices: append(slices.Clone(nvidia), "/dev/dri")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "gpu.drv")
			fixtures.Write(t, p, `Derive([("out","/nix/store/x-out","","")],[],[],"x86_64-linux","/bin/sh",[],[("requiredSystemFeatures","`+tc.features+`")])`)
			args := append([]string{"--nix-pre-build-hook", "--driver-root", root, "--cache-dir", cache, "-d", "/drv"}, tc.args...)
			stdout, stderr, code := nixglhost(t, baseEnv(t), append(args, p)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			mounts, err := parseNixHookOutput(stdout)
			fixtures.Must(t, err)
			var got lines
			_, got.Entry = mounts["/run/opengl-driver"]
			for _, l := range strings.Split(stdout, "\n") {
				inside, outside, _ := strings.Cut(l, "=")
				if !strings.HasPrefix(inside, "/dev/") {
					continue
				}
				if outside != filepath.Join(root, inside) {
					t.Errorf("%s is bound from %s, want %s", inside, outside, filepath.Join(root, inside))
				}
				got.Devices = append(got.Devices, inside)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("sandbox paths (-want +got):\n%s", diff)
			}
		})
	}
}
