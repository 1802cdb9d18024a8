package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/doctor"
)

// rolesDoctor runs --doctor --json for prog on root and returns its report.
func rolesDoctor(t *testing.T, env []string, root, prog string, args ...string) doctor.Report {
	t.Helper()
	out, errOut, code := nixglhost(t, env, append(append([]string{"--driver-root", root}, args...), "--doctor", "--json", prog)...)
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--doctor --json (exit %d): %v\n%s\n%s", code, err, out, errOut)
	}
	return r
}

// mesaLeftOut reports whether the doctor says Mesa was left out.
func mesaLeftOut(r doctor.Report) bool {
	return slices.ContainsFunc(r.Skipped, func(s hostdrivers.Skipped) bool { return s.Code == hostdrivers.SkipMesaNotTaken })
}

// TestWSLMesa: on WSL2 (/dev/dxg, NVIDIA's CUDA-only libraries in
// /usr/lib/wsl/lib) with Mesa installed, a launch without --mesa takes
// Mesa's drivers beside NVIDIA's CUDA: the program's own libglvnd renders
// with Mesa on EGL's surfaceless platform (llvmpipe here; d3d12 on a real
// WSL2, whose d3d12_dri.so the entry holds), its Vulkan loader lists
// lavapipe through the entry's ICD file, CUDA and NVML reach WSL's libcuda
// (cuInit 100), and the doctor names dxgkrnl, leaves nothing out and blocks
// on nothing. Before, WSL's CUDA libraries counted as "an NVIDIA driver" and
// Mesa was left out unless --mesa.
func TestWSLMesa(t *testing.T) {
	root := fixtures.WSLRoot(t)
	fixtures.AddMesa(t, root)
	store := fixtures.NixStore(t, "amd64")
	store.AddLoaders(t)
	clients := clientsProbe(t, store)
	probe := store.Probe(t)
	cache := t.TempDir()
	env := baseEnv(t, "VK_LOADER_DEBUG=driver")

	out, _ := mesaRun(t, env, cache, clients, "egl-render", "--driver-root", root)
	entry := entryOf(t, cache)
	checkEntry(t, entry)
	if !strings.Contains(out, "gl_renderer llvmpipe") || !strings.Contains(out, "pixel 64 128 19") {
		t.Errorf("Mesa did not render on WSL2:\n%s", out)
	}
	if !strings.Contains(out, "obj "+filepath.Join(entry, "lib", "libEGL_mesa.so.0")+"\n") {
		t.Errorf("libEGL_mesa not loaded from the entry %s:\n%s", entry, out)
	}
	for _, want := range []string{"d3d12_dri.so", "libcuda.so.1", "libnvidia-ml.so.1"} {
		if _, err := os.Lstat(filepath.Join(entry, "lib", want)); err != nil {
			t.Errorf("the entry has no lib/%s: %v", want, err)
		}
	}
	out, stderr := mesaRun(t, env, cache, clients, "vulkan", "--driver-root", root)
	if !strings.Contains(out, "vulkan_device llvmpipe") || !strings.Contains(stderr, filepath.Join(entry, "share/vulkan/icd.d/lvp_icd.x86_64.json")) {
		t.Errorf("lavapipe not listed through the entry's ICD:\n%s\n%s", out, stderr)
	}
	res, pout, _ := runProbe(t, store, probe, baseEnv(t), "--driver-root", root)
	checkProbe(t, res, pout, store, root)

	r := rolesDoctor(t, baseEnv(t), root, probe)
	if r.Module.Kind != hostdrivers.KernelDXG || r.Blocking != 0 || mesaLeftOut(r) {
		t.Errorf("doctor: module %+v, %d blocking, Mesa left out %t: %+v", r.Module, r.Blocking, mesaLeftOut(r), r.Findings)
	}
}

// TestMesaGLXByRole: on Xvfb (whose GLX vendor is Mesa's), a Nix-like
// program's own libglvnd asks the server for its vendor and needs
// libGLX_mesa. Where Mesa drives the display beside NVIDIA's installed
// userspace (nouveau loaded; a hybrid laptop whose boot VGA card is
// i915's) a launch without --mesa holds it and the GLX context is
// llvmpipe's; where NVIDIA's card drives the display, Mesa stays out as
// before, unless --mesa-only, which leaves NVIDIA's out. The doctor agrees: Mesa left out exactly where the launch left it
// out. Before, every such host left Mesa out and GLX programs failed
// ("couldn't find RGB GLX visual or fbconfig") while the doctor said
// nothing blocks.
func TestMesaGLXByRole(t *testing.T) {
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		fixtures.Unavailable(t, "no Xvfb (package xvfb): %v", err)
	}
	store := fixtures.NixStore(t, "amd64")
	store.AddHostLibs(t, "libGLX.so.0", "libGLdispatch.so.0", "libX11.so.6", "libxcb.so.1", "libXau.so.6", "libXdmcp.so.6", "libbsd.so.0", "libmd.so.0")
	prog := clientsProbe(t, store)
	display := startXvfb(t, xvfb)
	v := fixtures.CorpusVersion(t, "amd64")
	for _, tc := range []struct {
		name string
		host func(t *testing.T, root string)
		mesa bool
	}{
		{"nouveau with NVIDIA's userspace installed", func(t *testing.T, root string) {
			fixtures.LoadModule(t, root, "nouveau")
			fixtures.SetDRMCard(t, root, "card0", "0000:01:00.0", "nouveau", "0x10de", true)
		}, true},
		{"hybrid laptop, the iGPU drives X", func(t *testing.T, root string) {
			fixtures.SetModuleVersion(t, root, v)
			fixtures.SetDRMCard(t, root, "card0", "0000:00:02.0", "i915", "0x8086", true)
			fixtures.SetDRMCard(t, root, "card1", "0000:01:00.0", "nvidia", "0x10de", false)
		}, true},
		{"NVIDIA drives the display", func(t *testing.T, root string) {
			fixtures.SetModuleVersion(t, root, v)
			fixtures.SetDRMCard(t, root, "card0", "0000:01:00.0", "nvidia", "0x10de", true)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fixtures.DebianRoot(t, "amd64")
			fixtures.AddMesa(t, root)
			tc.host(t, root)
			cache := t.TempDir()
			env := baseEnv(t, "DISPLAY="+display)
			if !tc.mesa {
				vars := printEnvJSON(t, env, "--driver-root", root, "--cache-dir", cache)
				if _, ok := vars["LIBGL_DRIVERS_PATH"]; ok {
					t.Errorf("Mesa taken where NVIDIA drives the display: %v", vars)
				}
				// --mesa-only: Mesa's alone, whoever drives the display.
				only := t.TempDir()
				out, _ := mesaRun(t, env, only, prog, "glx-render", "--driver-root", root, "--mesa-only")
				entry := entryOf(t, only)
				checkEntry(t, entry)
				if !strings.Contains(out, "glx_renderer llvmpipe") {
					t.Errorf("--mesa-only: no Mesa GLX context:\n%s", out)
				}
				for _, n := range []string{"libcuda.so.1", "libGLX_nvidia.so.0"} {
					if _, err := os.Lstat(filepath.Join(entry, "lib", n)); err == nil {
						t.Errorf("--mesa-only: the entry holds NVIDIA's %s", n)
					}
				}
			} else {
				out, _ := mesaRun(t, env, cache, prog, "glx-render", "--driver-root", root)
				entry := entryOf(t, cache)
				checkEntry(t, entry)
				if !strings.Contains(out, "glx_renderer llvmpipe") || !strings.Contains(out, "obj "+filepath.Join(entry, "lib", "libGLX_mesa.so.0")+"\n") {
					t.Errorf("no Mesa GLX context from the entry %s:\n%s", entry, out)
				}
			}
			r := rolesDoctor(t, env, root, prog)
			if mesaLeftOut(r) == tc.mesa || r.Blocking != 0 {
				t.Errorf("doctor: Mesa left out %t, want %t; %d blocking: %+v", mesaLeftOut(r), !tc.mesa, r.Blocking, r.Findings)
			}
		})
	}
}
