package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/doctor"
)

// runProbe runs the Nix-like probe under nixglhost (amd64: through exec;
// arm64: nixglhost prints the environment for the probe, which then runs
// under qemu with it, since this machine has no binfmt for arm64) and
// returns the parsed output and the cache entry used.
func runProbe(t *testing.T, store *fixtures.Store, probe string, env []string, args ...string) (fixtures.ProbeResult, string, string) {
	t.Helper()
	cache := t.TempDir()
	args = append([]string{"--cache-dir", cache}, args...)
	var out string
	if store.Arch == "amd64" {
		stdout, stderr, code := nixglhost(t, env, append(args, "--", probe)...)
		if code != 0 {
			t.Fatalf("nixglhost exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if stderr != "" {
			t.Logf("nixglhost stderr:\n%s", stderr)
		}
		out = stdout
	} else {
		vars := printEnvJSON(t, env, append(args, probe)...)
		penv := append([]string(nil), env...)
		for k, v := range vars {
			penv = append(penv, k+"="+v)
		}
		var res fixtures.ProbeResult
		res, out = store.RunProbe(t, probe, penv)
		_ = res
	}
	return fixtures.ParseProbe(out), out, entryOf(t, cache)
}

// checkProbe asserts what a GPU-less machine gives with the real driver.
func checkProbe(t *testing.T, res fixtures.ProbeResult, out string, store *fixtures.Store, driverRoot string) {
	t.Helper()
	if res.CUDADlopen != "ok" || res.CuInit != 100 || res.NVMLInit != 9 {
		t.Fatalf("probe: cuda_dlopen %q cuInit %d nvmlInit %d, want ok 100 9\n%s", res.CUDADlopen, res.CuInit, res.NVMLInit, out)
	}
	libcs := res.MappedLibc()
	if len(libcs) == 0 {
		t.Errorf("no libc mapped?\n%s", out)
	}
	for _, m := range libcs {
		if !strings.HasPrefix(m, store.Dir+"/") {
			t.Errorf("invariant 1: a libc outside the program's store is mapped: %s", m)
		}
	}
	for _, m := range res.MapsContaining("libcuda") {
		if !strings.HasPrefix(m, driverRoot+"/") {
			t.Errorf("libcuda mapped from %s, want the host's file under %s", m, driverRoot)
		}
	}
}

// snapshot records every path under root with its size, mode and mtime,
// to prove nixglhost writes nothing there (invariant 4).
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		m[p] = fi.Mode().String() + " " + fi.ModTime().String() + " " + string(rune(fi.Size()%1000))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDebianRootDiscovery(t *testing.T) {
	root := fixtures.DebianRoot(t, "amd64")
	store := fixtures.NixStore(t, "amd64")
	probe := store.Probe(t)
	before := snapshot(t, root)
	res, out, entry := runProbe(t, store, probe, baseEnv(t, "CUDA_CACHE_DISABLE=1"), "--driver-root", root)
	checkProbe(t, res, out, store, root)
	checkEntry(t, entry)
	if diff := cmp.Diff(before, snapshot(t, root)); diff != "" {
		t.Errorf("invariant 4: the host tree changed (-before +after):\n%s", diff)
	}
	m, err := hostdrivers.ReadManifest(entry)
	if err != nil {
		t.Fatal(err)
	}
	if m.DriverVersion != fixtures.CorpusVersion(t, "amd64") {
		t.Errorf("driver version %q, want %q", m.DriverVersion, fixtures.CorpusVersion(t, "amd64"))
	}
	// Invariant 2: generic libraries the driver needs are hidden in deps/,
	// never in lib/; the vendor data points at the entry.
	for _, name := range []string{"libX11.so.6", "libXext.so.6", "libxcb.so.1", "libdrm.so.2"} {
		if _, err := os.Lstat(filepath.Join(entry, "deps", name)); err != nil {
			t.Errorf("deps/%s missing: %v", name, err)
		}
		if _, err := os.Lstat(filepath.Join(entry, "lib", name)); err == nil {
			t.Errorf("lib/%s exposes a generic library", name)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(entry, "lib"))
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if _, ok := catalog.Classify(e.Name()); !ok {
			t.Errorf("lib/%s is not a driver file", e.Name())
		}
	}
	icd, err := os.ReadFile(filepath.Join(entry, "share/vulkan/icd.d/nvidia_icd.json"))
	if err != nil || !strings.Contains(string(icd), `"../../../lib/libGLX_nvidia.so.0"`) {
		t.Errorf("Vulkan ICD not rewritten into the entry: %v\n%s", err, icd)
	}
	if _, err := os.Stat(filepath.Join(entry, "share/glvnd/egl_vendor.d/10_nvidia.json")); err != nil {
		t.Errorf("EGL vendor file: %v", err)
	}
	// libnvidia-allocator is a patched copy (it dlopens libdrm from deps/),
	// so its GBM backend is a copy of its own (TestBackends checks its
	// runpath).
	if in, err := elfscan.Read(filepath.Join(entry, "lib/gbm/nvidia-drm_gbm.so")); err != nil || in.Soname != "libnvidia-allocator.so.1" {
		t.Errorf("GBM backend: %+v, %v; want NVIDIA's allocator", in, err)
	}
	// The patched copies carry the runpath into deps/; the big libraries
	// stay links to the host.
	for _, f := range m.Files {
		p := filepath.Join(entry, "lib", f.Base)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		isLink := fi.Mode()&os.ModeSymlink != 0
		if isLink != (f.Mode == "link") {
			t.Errorf("%s: manifest mode %s, file is link=%v", f.Base, f.Mode, isLink)
		}
	}
	for _, big := range []string{"libcuda.so.", "libnvidia-glcore.so.", "libnvidia-eglcore.so.", "libnvidia-rtcore.so.", "libnvidia-ml.so."} {
		for _, f := range m.Files {
			if strings.HasPrefix(f.Base, big) && f.Mode != "link" {
				t.Errorf("%s is a %s copy, want a link to the host", f.Base, f.Mode)
			}
		}
	}
}

func TestCloudRoot(t *testing.T) {
	root := fixtures.CloudRoot(t)
	store := fixtures.NixStore(t, "amd64")
	probe := store.Probe(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"discovery", []string{"--driver-root", root}},
		{"-d lib64", []string{"--driver-root", root, "-d", "/usr/local/nvidia/lib64"}},
		{"-d lib and lib64 are one dir", []string{"--driver-root", root, "-d", "/usr/local/nvidia/lib", "-d", "/usr/local/nvidia/lib64/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, out, entry := runProbe(t, store, probe, baseEnv(t), tc.args...)
			checkProbe(t, res, out, store, root)
			checkEntry(t, entry)
			// libX11 is not under /usr/local/nvidia: found on the host's path.
			if _, err := os.Lstat(filepath.Join(entry, "deps", "libX11.so.6")); err != nil {
				t.Errorf("libGLX_nvidia's libX11 not resolved on the host: %v", err)
			}
			layers, err := os.ReadFile(filepath.Join(entry, "share/vulkan/implicit_layer.d/nvidia_layers.json"))
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Layers []struct {
					Name        string
					LibraryPath string `json:"library_path"`
				}
			}
			if err := json.Unmarshal(layers, &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Layers) != 1 || doc.Layers[0].LibraryPath != "../../../lib/libGLX_nvidia.so.0" {
				t.Errorf("layers = %+v, want only the optimus layer, pointing into lib/", doc.Layers)
			}
		})
	}
}

func TestJetsonArm64(t *testing.T) {
	root := fixtures.JetsonRoot(t)
	store := fixtures.NixStore(t, "arm64")
	probe := store.Probe(t)
	tegra := "/usr/lib/aarch64-linux-gnu/tegra"
	res, out, entry := runProbe(t, store, probe, baseEnv(t), "--driver-root", root, "-d", tegra, "-d", tegra+"-egl")
	checkProbe(t, res, out, store, root)
	checkEntry(t, entry)
	for _, name := range []string{"libnvrm_gpu.so", "libnvos.so", "libEGL_nvidia.so.0", "libcuda.so.1"} {
		if _, err := os.Lstat(filepath.Join(entry, "lib", name)); err != nil {
			t.Errorf("Jetson library %s not exposed: %v", name, err)
		}
	}
	// The doctor knows the host for a Jetson: the nvgpu module with its L4T
	// release, no "no kernel module" warning, and the table's CUDA row.
	out, errOut, code := nixglhost(t, baseEnv(t), "--driver-root", root, "-d", tegra, "-d", tegra+"-egl", "--doctor", "--json", probe)
	if code != 0 {
		t.Fatalf("--doctor exited %d:\n%s\n%s", code, out, errOut)
	}
	var r doctor.Report
	fixtures.Must(t, json.Unmarshal([]byte(out), &r))
	if r.Module.Kind != hostdrivers.KernelNVGPU || r.Module.L4TMajor() != 36 {
		t.Errorf("module = %+v, want nvgpu with L4T R36", r.Module)
	}
	for _, f := range r.Findings {
		if f.Topic == "module" {
			t.Errorf("finding on a Jetson: %+v", f)
		}
	}
	for _, c := range r.Capabilities {
		if c.Name == "cuda" && (!c.Found || strings.Contains(c.Outcome, "no GPU kernel driver")) {
			t.Errorf("cuda row on a Jetson: %+v", c)
		}
	}
}

// TestDebianRootDirs: -d naming Debian's multiarch directory, where the
// driver is reached through the alternatives links into nvidia/current.
func TestDebianRootDirs(t *testing.T) {
	root := fixtures.DebianRoot(t, "amd64")
	store := fixtures.NixStore(t, "amd64")
	probe := store.Probe(t)
	res, out, entry := runProbe(t, store, probe, baseEnv(t), "--driver-root", root, "-d", "/usr/lib/x86_64-linux-gnu")
	checkProbe(t, res, out, store, root)
	checkEntry(t, entry)
	// libcuda.so.1 in the multiarch dir is a link to nvidia/current: the
	// entry links the real file, named as NVIDIA names it.
	v := fixtures.CorpusVersion(t, "amd64")
	if l, err := os.Readlink(filepath.Join(entry, "lib", "libcuda.so.1")); err != nil || l != "libcuda.so."+v {
		t.Errorf("lib/libcuda.so.1 -> %q (%v), want libcuda.so.%s", l, err, v)
	}
	target, err := os.Readlink(filepath.Join(entry, "lib", "libcuda.so."+v))
	if err != nil || target != filepath.Join(root, "usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so."+v) {
		t.Errorf("lib/libcuda.so.%s -> %q (%v), want the real file in nvidia/current", v, target, err)
	}
}

// TestBareNames: as NixOS's driver package does, every driver library in
// the entry has its bare .so name, whether the host has that link or not
// (Debian's root has no libnvidia-ml.so): a Nix-like program dlopens
// libcuda.so and libnvidia-ml.so by those names (Triton and cudarc do).
func TestBareNames(t *testing.T) {
	root := fixtures.DebianRoot(t, "amd64")
	if _, err := os.Lstat(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so")); err == nil {
		t.Fatal("the Debian root has libnvidia-ml.so: this test needs a host without it")
	}
	store := fixtures.NixStore(t, "amd64")
	probe := store.Probe(t)
	cache := t.TempDir()
	names := []string{"libcuda.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so", "libEGL_nvidia.so"}
	stdout, stderr, code := nixglhost(t, baseEnv(t), append([]string{"--driver-root", root, "--cache-dir", cache, "--", probe}, names...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	res := fixtures.ParseProbe(stdout)
	entry := entryOf(t, cache)
	for _, n := range names {
		d, ok := res.Lookup(n)
		if !ok || !d.OK || !strings.HasPrefix(d.Path, filepath.Join(entry, "lib")+"/") {
			t.Errorf("dlopen(%s) = %+v, want it from %s/lib\n%s", n, d, entry, stdout)
		}
	}
	if libcs := res.MappedLibc(); len(libcs) != 1 || !strings.HasPrefix(libcs[0], store.Dir+"/") {
		t.Errorf("mapped libc %q, want only the store's", libcs)
	}
}

// TestBackends: on Debian the VDPAU driver lives in <libdir>/vdpau/; the
// entry exposes it in lib/vdpau/ with VDPAU_DRIVER_PATH, where libvdpau
// looks, and a Nix-like program loads it from there with its dependencies;
// the GBM and VDPAU backends find the entry's lib/ and deps/ from where
// they are loaded.
func TestBackends(t *testing.T) {
	root := fixtures.DebianRoot(t, "amd64")
	cache := t.TempDir()
	vars := printEnvJSON(t, baseEnv(t), "--driver-root", root, "--cache-dir", cache)
	entry := entryOf(t, cache)
	vdpau := filepath.Join(entry, "lib", "vdpau")
	if vars["VDPAU_DRIVER_PATH"] != vdpau {
		t.Errorf("VDPAU_DRIVER_PATH = %q, want %s", vars["VDPAU_DRIVER_PATH"], vdpau)
	}
	drv := filepath.Join(vdpau, "libvdpau_nvidia.so.1")
	if _, err := os.Stat(drv); err != nil {
		t.Fatalf("no VDPAU driver in the entry: %v", err)
	}
	store := fixtures.NixStore(t, "amd64")
	res, out := store.RunProbe(t, store.Probe(t), nil, drv)
	if d, ok := res.Lookup(drv); !ok || !d.OK {
		t.Errorf("dlopen(%s) failed:\n%s", drv, out)
	}
	// A backend is loaded by its path in lib/gbm/ or lib/vdpau/, and the
	// loader takes $ORIGIN from that path: a patched backend's runpath must
	// reach lib/ and deps/ from there (libnvidia-allocator dlopens libdrm
	// from deps/ only when GBM is used, so loading it proves nothing).
	for _, b := range []string{"gbm/nvidia-drm_gbm.so", "vdpau/libvdpau_nvidia.so.1"} {
		p := filepath.Join(entry, "lib", b)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("backend %s: %v", b, err)
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			// Only a host library (not patched: it needs nothing from
			// deps/) may be reached through a link here.
			if r, err := filepath.EvalSymlinks(p); err != nil || strings.HasPrefix(r, entry+"/") {
				t.Errorf("backend %s is a link to the patched copy %s (%v): its $ORIGIN would be wrong", b, r, err)
			}
			continue
		}
		in, err := elfscan.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		var dirs []string
		for _, d := range strings.Split(in.Runpath, ":") {
			dirs = append(dirs, filepath.Clean(strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(p))))
		}
		if !slices.Contains(dirs, filepath.Join(entry, "lib")) || !slices.Contains(dirs, filepath.Join(entry, "deps")) {
			t.Errorf("backend %s: runpath %q reaches %q, want the entry's lib/ and deps/", b, in.Runpath, dirs)
		}
	}
}

// TestDebianSplitLayout: `-d .../nvidia/current`, what a Debian user tries,
// lacks libnvidia-glsi, -tls and -glcore, which libGLX_nvidia and
// libEGL_nvidia NEED, and -eglcore and -rtcore, which libEGL_nvidia and
// libnvoptix dlopen by versioned name; Debian keeps them one directory up. They are
// found on the host's search path, of the chosen version, and said so in
// the manifest.
func TestDebianSplitLayout(t *testing.T) {
	root := fixtures.DebianRoot(t, "amd64")
	cache := t.TempDir()
	dir := "/usr/lib/x86_64-linux-gnu/nvidia/current"
	if _, err := os.Stat(filepath.Join(root, dir, "libnvidia-glcore.so."+fixtures.CorpusVersion(t, "amd64"))); err == nil {
		t.Fatalf("%s holds glcore: not the split layout this test needs", dir)
	}
	if _, errOut, code := nixglhost(t, baseEnv(t), "--driver-root", root, "--cache-dir", cache, "-d", dir, "-p"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m, err := hostdrivers.ReadManifest(entryOf(t, cache))
	fixtures.Must(t, err)
	fromHost := map[string]bool{}
	for _, f := range m.Files {
		if f.Origin == hostdrivers.OriginHostSearch {
			fromHost[strings.SplitN(f.Base, ".so", 2)[0]] = true
		}
	}
	for _, want := range []string{"libnvidia-glcore", "libnvidia-glsi", "libnvidia-tls", "libnvidia-eglcore", "libnvidia-rtcore"} {
		if !fromHost[want] {
			t.Errorf("%s not completed from the host's search path; from there: %v", want, fromHost)
		}
	}
	for _, s := range m.Missing {
		if s.Code == hostdrivers.SkipNoComponent {
			t.Errorf("still missing: %s (%s)", s.Path, s.Reason)
		}
	}
}

// TestIncompleteDirWarned: a -d whose chosen library needs a driver library
// found nowhere (not there, not on the host's search path) is said at every
// launch, cold and hot, naming it.
func TestIncompleteDirWarned(t *testing.T) {
	root := fixtures.DebianRoot(t, "amd64")
	v := fixtures.CorpusVersion(t, "amd64")
	glcore := filepath.Join(root, "usr/lib/x86_64-linux-gnu", "libnvidia-glcore.so."+v)
	fixtures.Must(t, os.Remove(glcore))
	fixtures.RunLdconfig(t, root, "amd64")
	cache := t.TempDir()
	for _, run := range []string{"cold", "hot"} {
		_, errOut, code := nixglhost(t, baseEnv(t), "--driver-root", root, "--cache-dir", cache, "-d", "/usr/lib/x86_64-linux-gnu/nvidia/current", "-p")
		if code != 0 || !strings.Contains(errOut, "libnvidia-glcore.so."+v) || !strings.Contains(errOut, "none of the -d directories") {
			t.Errorf("%s launch: exit %d, stderr %q: want a warning naming libnvidia-glcore", run, code, errOut)
		}
	}
}
