package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/internal/sandbox"
	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/doctor"
)

// mesaInstalled makes the test unavailable unless this machine has
// Debian's Mesa (the driver under test: its EGL, DRI and Vulkan drivers).
func mesaInstalled(t *testing.T) {
	t.Helper()
	for _, f := range []string{"/usr/lib/x86_64-linux-gnu/libEGL_mesa.so.0", "/usr/lib/x86_64-linux-gnu/dri/swrast_dri.so",
		"/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so", "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"} {
		if _, err := os.Stat(f); err != nil {
			fixtures.Unavailable(t, "Debian's Mesa is not installed here (packages libegl-mesa0, libgl1-mesa-dri, mesa-vulkan-drivers): %v", err)
		}
	}
}

// mesaRun runs nixglhost --cache-dir CACHE ARGS -- PROG MODE and returns
// its stdout and stderr.
func mesaRun(t *testing.T, env []string, cache, prog, mode string, args ...string) (string, string) {
	t.Helper()
	stdout, stderr, code := nixglhost(t, env, append(append([]string{"--cache-dir", cache}, args...), "--", prog, mode)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	return stdout, stderr
}

// TestMesaHost: a Nix-like program whose store holds its own glibc,
// libglvnd and Vulkan loader (copies of Debian's), blind to the host,
// renders with this machine's Mesa through the entry: on EGL's surfaceless
// platform llvmpipe clears a framebuffer object to (0.25, 0.5, 0.75, 1) and
// the pixel read back is (64, 128, 191, 255); the Vulkan loader lists the
// lavapipe device through the entry's ICD file. Mesa's generic libraries
// (LLVM, libstdc++, libdrm, libgbm, libglapi...) are loaded from deps/,
// never from lib/, and the only libc is the store's. --mesa keeps the test
// true on a machine that also has an NVIDIA driver (TestTakeVendors checks
// that Mesa is taken without it where there is none).
func TestMesaHost(t *testing.T) {
	mesaInstalled(t)
	store := fixtures.NixStore(t, "amd64")
	store.AddHostLibs(t, "libEGL.so.1", "libGLdispatch.so.0", "libvulkan.so.1")
	prog := clientsProbe(t, store)
	cache := t.TempDir()

	out, _ := mesaRun(t, baseEnv(t), cache, prog, "egl-render", "--mesa")
	t.Logf("clients egl-render:\n%s", out)
	entry := entryOf(t, cache)
	checkEntry(t, entry)
	vals := map[string]string{}
	var objs []string
	for _, l := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(l, " ")
		if k == "obj" {
			objs = append(objs, filepath.Clean(v))
			continue
		}
		vals[k] = v
	}
	if !strings.Contains(vals["gl_renderer"], "llvmpipe") {
		t.Errorf("GL_RENDERER %q, want llvmpipe", vals["gl_renderer"])
	}
	if vals["fbo_status"] != "0x8cd5" {
		t.Errorf("framebuffer status %s, want 0x8cd5 (complete)", vals["fbo_status"])
	}
	px := strings.Fields(vals["pixel"])
	want := []int{64, 128, 191, 255}
	if len(px) != 4 {
		t.Fatalf("no pixel read back:\n%s", out)
	}
	for i, s := range px {
		n, _ := strconv.Atoi(s)
		if n < want[i]-1 || n > want[i]+1 {
			t.Errorf("pixel %v, want %v (±1)", px, want)
			break
		}
	}
	for _, o := range objs {
		base := filepath.Base(o)
		switch {
		case base == "libc.so.6" && !strings.HasPrefix(o, store.Dir+"/"):
			t.Errorf("a libc outside the store: %s", o)
		case strings.HasPrefix(base, "libstdc++") || strings.HasPrefix(base, "libLLVM") || strings.HasPrefix(base, "libgbm") || strings.HasPrefix(base, "libglapi"):
			if !strings.HasPrefix(o, filepath.Join(entry, "deps")+"/") {
				t.Errorf("%s loaded from %s, want the entry's deps/", base, o)
			}
		case strings.HasSuffix(base, "_dri.so") && strings.HasPrefix(o, filepath.Join(entry, "deps", "plugins")+"/"):
			// The host's DRI driver, which the shim in lib/ loads.
		case strings.HasSuffix(base, "_dri.so") || strings.HasPrefix(base, "libEGL_mesa"):
			if !strings.HasPrefix(o, filepath.Join(entry, "lib")+"/") {
				t.Errorf("%s loaded from %s, want the entry's lib/", base, o)
			}
		}
	}
	// The DRI driver is a shim of the host's file (see TestMarkChained;
	// TestMesaWrapperDiskUse counts the bytes).
	if !slices.Contains(objs, filepath.Join(entry, "lib", "swrast_dri.so")) || !slices.ContainsFunc(objs, func(o string) bool {
		return strings.HasPrefix(o, filepath.Join(entry, "deps", "plugins")+"/") && strings.HasSuffix(o, "_dri.so")
	}) {
		t.Errorf("the DRI driver was not loaded through its shim (lib/swrast_dri.so, then deps/plugins/): %q", objs)
	}
	// lib/ exposes the vendor libraries only: no name a program links.
	ents, err := os.ReadDir(filepath.Join(entry, "lib"))
	fixtures.Must(t, err)
	for _, e := range ents {
		n := e.Name()
		stem, _, _ := strings.Cut(n, ".so")
		switch {
		case catalog.IsDispatch(n), catalog.IsGlibcFamily(n),
			stem == "libgbm", stem == "libglapi", stem == "libdrm", stem == "libva", stem == "libstdc++", strings.HasPrefix(stem, "libLLVM"):
			t.Errorf("lib/ holds %s, which would shadow the program's own", n)
		}
	}
	vars := printEnvJSON(t, baseEnv(t), "--cache-dir", cache, "--mesa")
	if vars["LIBGL_DRIVERS_PATH"] != filepath.Join(entry, "lib") {
		t.Errorf("LIBGL_DRIVERS_PATH = %q, want the entry's lib/", vars["LIBGL_DRIVERS_PATH"])
	}

	// The doctor's table says what the launch did.
	dout, derr, code := nixglhost(t, baseEnv(t), "--cache-dir", cache, "--mesa", "--doctor", "--json", prog)
	if code != 0 {
		t.Fatalf("--doctor exited %d:\n%s\n%s", code, dout, derr)
	}
	var r doctor.Report
	fixtures.Must(t, json.Unmarshal([]byte(dout), &r))
	rows := map[string]doctor.CapabilityReport{}
	for _, c := range r.Capabilities {
		rows[c.Name] = c
	}
	for name, vendor := range map[string]string{"egl-mesa": "host", "glx-mesa": "", "dri": "", "vulkan-mesa": "host"} {
		if c := rows[name]; !c.Found || c.Vendor != vendor {
			t.Errorf("doctor row %s = %+v, want found with vendor file %q", name, c, vendor)
		}
	}

	out, stderr := mesaRun(t, baseEnv(t, "VK_LOADER_DEBUG=driver"), cache, prog, "vulkan", "--mesa")
	t.Logf("clients vulkan:\n%s", out)
	if !strings.Contains(out, "vulkan_device llvmpipe") {
		t.Errorf("no lavapipe device listed:\n%s", out)
	}
	icd := filepath.Join(entry, "share/vulkan/icd.d/lvp_icd.x86_64.json")
	if !strings.Contains(stderr, "Found ICD manifest file "+icd) {
		t.Errorf("VK_LOADER_DEBUG does not show the entry's ICD %s:\n%s", icd, stderr)
	}
}

// entryBytes returns the bytes an entry's lib/ and deps/ hold themselves
// (its copies and shims) and the bytes they expose (every file reached
// there, links followed, each counted once).
func entryBytes(t *testing.T, entry string) (copied, exposed int64) {
	t.Helper()
	seen := map[[2]uint64]bool{}
	for _, d := range []string{"lib", "deps"} {
		err := filepath.WalkDir(filepath.Join(entry, d), func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() {
				return err
			}
			if e.Type().IsRegular() {
				copied += fi.Size()
			}
			st := fi.Sys().(*syscall.Stat_t)
			if k := [2]uint64{uint64(st.Dev), st.Ino}; !seen[k] {
				seen[k] = true
				exposed += fi.Size()
			}
			return nil
		})
		fixtures.Must(t, err)
	}
	return copied, exposed
}

// TestMesaHybrid: an NVIDIA compute card beside a Mesa GPU (here: the
// NVIDIA 535 corpus reached through LD_LIBRARY_PATH, and this machine's
// Mesa). Without --mesa the entry holds NVIDIA's driver alone and says
// why Mesa's was left out; with --mesa one entry holds both: the CUDA
// probe reaches libcuda (cuInit 100 without a GPU), the Vulkan loader
// reads both vendors' ICD files and lists lavapipe (NVIDIA's ICD finds no
// GPU), glvnd's EGL sees both vendor files, NVIDIA's first.
func TestMesaHybrid(t *testing.T) {
	mesaInstalled(t)
	store := fixtures.NixStore(t, "amd64")
	store.AddHostLibs(t, "libEGL.so.1", "libGLdispatch.so.0", "libvulkan.so.1")
	prog := clientsProbe(t, store)
	probe := store.Probe(t)
	env := baseEnv(t, "LD_LIBRARY_PATH="+strings.Join(fixtures.CorpusLibDirs(t, "amd64"), ":"))

	alone := t.TempDir()
	vars := printEnvJSON(t, env, "--cache-dir", alone)
	if _, ok := vars["LIBGL_DRIVERS_PATH"]; ok {
		t.Errorf("without --mesa an NVIDIA host's entry has Mesa's DRI drivers: %v", vars)
	}
	m, err := hostdrivers.ReadManifest(entryOf(t, alone))
	fixtures.Must(t, err)
	if !slices.ContainsFunc(m.Skipped, func(s hostdrivers.Skipped) bool { return s.Code == hostdrivers.SkipMesaNotTaken }) {
		t.Errorf("the manifest does not say Mesa was left out: %+v", m.Skipped)
	}

	cache := t.TempDir()
	stdout, stderr, code := nixglhost(t, env, "--cache-dir", cache, "--mesa", "--", probe)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if res := fixtures.ParseProbe(stdout); res.CUDADlopen != "ok" || res.CuInit != 100 {
		t.Errorf("CUDA: dlopen %q cuInit %d, want ok 100\n%s", res.CUDADlopen, res.CuInit, stdout)
	}
	entry := entryOf(t, cache)
	checkEntry(t, entry)
	vendors, err := os.ReadDir(filepath.Join(entry, "share/glvnd/egl_vendor.d"))
	fixtures.Must(t, err)
	var names []string
	for _, v := range vendors {
		names = append(names, v.Name())
	}
	if !slices.Equal(names, []string{"10_nvidia.json", "50_mesa.json"}) {
		t.Errorf("EGL vendor files %v, want NVIDIA's then Mesa's", names)
	}
	out, stderr := mesaRun(t, baseEnv(t, "VK_LOADER_DEBUG=driver", "LD_LIBRARY_PATH="+strings.Join(fixtures.CorpusLibDirs(t, "amd64"), ":")), cache, prog, "vulkan", "--mesa")
	if !strings.Contains(out, "vulkan_device llvmpipe") {
		t.Errorf("no lavapipe device listed:\n%s", out)
	}
	for _, icd := range []string{"nvidia_icd.json", "lvp_icd.x86_64.json"} {
		if p := filepath.Join(entry, "share/vulkan/icd.d", icd); !strings.Contains(stderr, "Found ICD manifest file "+p) {
			t.Errorf("VK_LOADER_DEBUG does not show %s", p)
		}
	}
	out, _ = mesaRun(t, env, cache, prog, "egl-render", "--mesa")
	t.Logf("hybrid egl:\n%s", out)
	for _, lib := range []string{"libEGL_nvidia.so.", "libEGL_mesa.so."} {
		if !strings.Contains(out, lib) {
			t.Errorf("glvnd did not load %s", lib)
		}
	}
}

// TestMesaGLX: on Xvfb, whose GLX is Mesa's, the Nix-like program's own
// libglvnd asks the server for its vendor and loads libGLX_mesa from the
// entry (no __GLX_VENDOR_LIBRARY_NAME is set), and a context on a GLX
// pixmap reports llvmpipe. The program brings its own libX11, as a Nix
// program does.
func TestMesaGLX(t *testing.T) {
	mesaInstalled(t)
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		fixtures.Unavailable(t, "no Xvfb (package xvfb): %v", err)
	}
	store := fixtures.NixStore(t, "amd64")
	store.AddHostLibs(t, "libGLX.so.0", "libGLdispatch.so.0", "libX11.so.6", "libxcb.so.1", "libXau.so.6", "libXdmcp.so.6", "libbsd.so.0", "libmd.so.0")
	prog := clientsProbe(t, store)
	display := startXvfb(t, xvfb)
	cache := t.TempDir()
	out, _ := mesaRun(t, baseEnv(t, "DISPLAY="+display), cache, prog, "glx-render", "--mesa")
	entry := entryOf(t, cache)
	if !strings.Contains(out, "glx_renderer llvmpipe") {
		t.Errorf("no llvmpipe GLX context:\n%s", out)
	}
	if !strings.Contains(out, "obj "+filepath.Join(entry, "lib", "libGLX_mesa.so.0")+"\n") {
		t.Errorf("libGLX_mesa not loaded from the entry %s:\n%s", entry, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if o, ok := strings.CutPrefix(l, "obj "); ok && filepath.Base(o) == "libc.so.6" && !strings.HasPrefix(o, store.Dir+"/") {
			t.Errorf("a libc outside the store: %s", o)
		}
	}
}

// TestMesaSystemMode: system mode on a Mesa host (this machine's, with
// --mesa so that it holds beside an NVIDIA driver too) links
// RUN/opengl-driver, and a Nix-like program renders through it with no
// environment at all. Its libglvnd and Vulkan loader are configured as
// nixpkgs builds them: libglvnd's default EGL vendor directory is
// <driverLink>/share/glvnd/egl_vendor.d (nixpkgs' libglvnd,
// DEFAULT_EGL_VENDOR_CONFIG_DIRS) and the Vulkan loader reads
// <driverLink>/share/vulkan/icd.d (nixpkgs' vulkan-loader sets
// SYSCONFDIR=<driverLink>/share; here its FALLBACK_DATA_DIRS, the older
// nixpkgs flag, is pointed there). The copies' compiled-in defaults are
// rewritten in place to a short link to RUN/opengl-driver. The host files
// that the entry's shims load are among what the pre-build hook (and the
// CDI spec) mount.
func TestMesaSystemMode(t *testing.T) {
	mesaInstalled(t)
	s := newSysRoot(t)
	s.root = "/"
	stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("--mesa", "--link-run-opengl-driver")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	entry := s.linkTarget(t)
	checkEntry(t, entry)
	short, err := os.MkdirTemp("/tmp", "nxg")
	fixtures.Must(t, err)
	t.Cleanup(func() { os.RemoveAll(short) })
	driverLink := filepath.Join(short, "o")
	fixtures.Must(t, os.Symlink(s.link, driverLink))

	store := fixtures.NixStore(t, "amd64")
	store.AddHostLibs(t, "libEGL.so.1", "libGLdispatch.so.0", "libvulkan.so.1")
	for lib, paths := range map[string][2]string{
		"libEGL.so.1":    {"/etc/glvnd/egl_vendor.d", driverLink + "/share/glvnd/egl_vendor.d"},
		"libvulkan.so.1": {"/usr/local/share", driverLink + "/share"},
	} {
		if n, err := elfscan.ReplaceRodataString(filepath.Join(store.Dir, lib), paths[0], paths[1]); err != nil || n != 1 {
			fixtures.Unavailable(t, "%s: its default search path %s is not where Debian's is (%d, %v)", lib, paths[0], n, err)
		}
	}
	prog := clientsProbe(t, store)

	run := func(mode string) string {
		cmd := store.Command(t, prog, []string{"PATH=/usr/bin:/bin"}, mode)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("clients %s: %v\n%s", mode, err, out)
		}
		return string(out)
	}
	out := run("egl-render")
	if !strings.Contains(out, "pixel 64 128 191 255") || !strings.Contains(out, "gl_renderer llvmpipe") {
		t.Errorf("no llvmpipe rendering through %s with no environment:\n%s", s.link, out)
	}
	if !strings.Contains(out, "obj "+s.link+"/lib/swrast_dri.so\n") {
		t.Errorf("the DRI driver was not loaded from %s/lib (the compiled-in path was not rewritten?):\n%s", s.link, out)
	}
	out = run("vulkan")
	if !strings.Contains(out, "vulkan_device llvmpipe") {
		t.Errorf("no lavapipe device through %s:\n%s", s.link, out)
	}
	// The pre-build hook and the CDI spec mount every host file a shim
	// loads (deps/plugins/ holds links to them) at its own path.
	m, err := hostdrivers.ReadManifest(entry)
	fixtures.Must(t, err)
	lines, err := sandbox.Paths("/", entry, 0)
	fixtures.Must(t, err)
	shims := 0
	for _, f := range m.Files {
		if f.Mode != hostdrivers.ModeShim {
			continue
		}
		shims++
		if !slices.Contains(lines, f.Real) {
			t.Errorf("the hook does not mount %s, which the shim lib/%s loads:\n%s", f.Real, f.Base, strings.Join(lines, "\n"))
		}
	}
	if shims == 0 {
		t.Errorf("no shim in the self-contained Mesa entry")
	}
	// The EGL vendor file names its library where programs see it.
	b, err := os.ReadFile(filepath.Join(entry, "share/glvnd/egl_vendor.d/50_mesa.json"))
	fixtures.Must(t, err)
	if !strings.Contains(string(b), s.link+"/lib/libEGL_mesa.so.0") {
		t.Errorf("50_mesa.json names no absolute path under %s:\n%s", s.link, b)
	}
}
