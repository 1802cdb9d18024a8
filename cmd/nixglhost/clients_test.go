package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// TestRealClients runs Debian's libglvnd (libEGL), Vulkan loader and
// ocl-icd, as a program brings them, under nixglhost on the Debian root, and
// checks that the generated vendor files led each to the cached NVIDIA
// driver: the EGL vendor library, the Vulkan ICD (libGLX_nvidia, whose
// libX11 comes from deps/ through its patched DT_RUNPATH) and the OpenCL ICD.
func TestRealClients(t *testing.T) {
	for _, lib := range []string{"libEGL.so.1", "libvulkan.so.1", "libOpenCL.so.1"} {
		if _, err := exec.Command("sh", "-c", "ldconfig -p | grep -q "+lib).CombinedOutput(); err != nil {
			fixtures.Unavailable(t, "%s not installed (packages libegl1, libvulkan1, ocl-icd-libopencl1)", lib)
		}
	}
	prog := clientsProbe(t, nil)
	for _, tc := range []struct {
		name string
		root func(testing.TB) string
		// made: the vendor files come from nixglhost, not the host.
		made bool
	}{
		{"Debian root, the host's vendor files", func(t testing.TB) string { return fixtures.DebianRoot(t, "amd64") }, false},
		{"Apptainer --nv, libraries only", fixtures.ApptainerRoot, true},
	} {
		t.Run(tc.name, func(t *testing.T) { testRealClients(t, prog, tc.root(t), tc.made) })
	}
}

func testRealClients(t *testing.T, prog, root string, made bool) {
	cache := t.TempDir()
	stdout, stderr, code := nixglhost(t, baseEnv(t), "--driver-root", root, "--cache-dir", cache, "--", prog)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("clients:\n%s", stdout)
	entry := entryOf(t, cache)
	maps := map[string]bool{}
	for _, l := range strings.Split(stdout, "\n") {
		if p, ok := strings.CutPrefix(l, "map "); ok {
			maps[filepath.Base(p)] = true
		}
	}
	v := fixtures.CorpusVersion(t, "amd64")
	for _, want := range []string{
		"libEGL_nvidia.so." + v,     // glvnd, through __EGL_VENDOR_LIBRARY_DIRS
		"libGLX_nvidia.so." + v,     // the Vulkan loader, through VK_DRIVER_FILES
		"libnvidia-opencl.so." + v,  // ocl-icd, through OCL_ICD_VENDORS
		"libnvidia-eglcore.so." + v, // what libEGL_nvidia needs, from lib/
		"libnvidia-glcore.so." + v,  // what libGLX_nvidia needs, from lib/
	} {
		if !maps[want] {
			t.Errorf("%s was not loaded; maps: %v", want, maps)
		}
	}
	// The patched libGLX_nvidia is the entry's copy, not the host file.
	if !strings.Contains(stdout, "map "+filepath.Join(entry, "lib", "libGLX_nvidia.so."+v)) {
		t.Errorf("libGLX_nvidia not loaded from the entry %s:\n%s", entry, stdout)
	}
	// The manifest says which vendor files nixglhost made, and why.
	m, err := hostdrivers.ReadManifest(entry)
	fixtures.Must(t, err)
	var madeFiles []string
	for _, d := range m.Data {
		if d.Made != "" {
			madeFiles = append(madeFiles, d.Dest)
		}
	}
	want := []string(nil)
	if made {
		// (egl-wayland is a package of its own, not bound here.)
		want = []string{"etc/OpenCL/vendors/nvidia.icd", "share/glvnd/egl_vendor.d/10_nvidia.json", "share/vulkan/icd.d/nvidia_icd.json", "share/vulkan/implicit_layer.d/nvidia_layers.json"}
	}
	if !slices.Equal(madeFiles, want) {
		t.Errorf("made vendor files %q, want %q", madeFiles, want)
	}
}

// TestRealGLX runs Debian's libglvnd libGLX against an Xvfb display under
// nixglhost: by default glvnd asks the server (no NVIDIA library); with
// --prime, __GLX_VENDOR_LIBRARY_NAME=nvidia makes it load the entry's
// patched libGLX_nvidia, whose libX11 and XCB libraries resolve.
func TestRealGLX(t *testing.T) {
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		fixtures.Unavailable(t, "no Xvfb (package xvfb): %v", err)
	}
	if _, err := exec.Command("sh", "-c", "ldconfig -p | grep -q libGLX.so.0").CombinedOutput(); err != nil {
		fixtures.Unavailable(t, "libGLX.so.0 not installed (package libglx0)")
	}
	root := fixtures.DebianRoot(t, "amd64")
	prog := clientsProbe(t, nil)
	display := startXvfb(t, xvfb)
	cache := t.TempDir()
	v := fixtures.CorpusVersion(t, "amd64")
	// Without --prime, glvnd asks the X server for its vendor (Xvfb's is
	// Mesa's): NVIDIA's library is not forced on a server that is not
	// NVIDIA's, which would fail with BadValue.
	stdout, stderr, code := nixglhost(t, baseEnv(t, "DISPLAY="+display), "--driver-root", root, "--cache-dir", cache, "--", prog, "glx")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "libGLX_nvidia.so."+v) {
		t.Errorf("without --prime, libGLX_nvidia was loaded on Xvfb:\n%s", stdout)
	}
	// With --prime, as on a hybrid laptop, it is NVIDIA's.
	stdout, stderr, code = nixglhost(t, baseEnv(t, "DISPLAY="+display), "--driver-root", root, "--cache-dir", cache, "--prime", "--", prog, "glx")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("clients glx:\n%s", stdout)
	entry := entryOf(t, cache)
	if !strings.Contains(stdout, "map "+filepath.Join(entry, "lib", "libGLX_nvidia.so."+v)) {
		t.Errorf("libglvnd did not load the entry's libGLX_nvidia:\n%s", stdout)
	}
	if !strings.Contains(stdout, "libnvidia-glcore.so."+v) {
		t.Errorf("libGLX_nvidia's libnvidia-glcore not loaded:\n%s", stdout)
	}
}

// startXvfb starts Xvfb on a display number of its own choosing (it says
// which) and returns the display name; the server is killed at cleanup.
func startXvfb(t *testing.T, xvfb string) string {
	t.Helper()
	r, w, err := os.Pipe()
	fixtures.Must(t, err)
	x := exec.Command(xvfb, "-displayfd", "3", "-nolisten", "tcp")
	x.ExtraFiles = []*os.File{w}
	if err := x.Start(); err != nil {
		fixtures.Unavailable(t, "Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() { x.Process.Kill(); x.Wait() })
	num, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("Xvfb gave no display number: %v", err)
	}
	return ":" + strings.TrimSpace(num)
}

// clientsSource is the real-clients probe (testdata/probe/clients.c).
func clientsSource() string { return filepath.Join(fixtures.RepoRoot(), "testdata/probe/clients.c") }

// clientsProbe builds the real-clients probe: with this machine's gcc and
// glibc (an FHS program using the host's libglvnd and loaders) when store
// is nil, else against store, as a Nix program that brings its own
// libraries (AddHostLibs puts them there).
func clientsProbe(t *testing.T, store *fixtures.Store) string {
	t.Helper()
	if store != nil {
		return store.Compile(t, clientsSource(), "clients", "-ldl")
	}
	prog := filepath.Join(t.TempDir(), "clients")
	if out, err := exec.Command("gcc", "-o", prog, clientsSource(), "-ldl").CombinedOutput(); err != nil {
		fixtures.Unavailable(t, "gcc: %v\n%s", err, out)
	}
	return prog
}
