package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/doctor"
)

// TestRealHosts launches the real Debian loaders under nixglhost on a root
// modelled on each kind of host users run on, and checks the doctor's
// per-API table against what each launch really did:
//   - glvnd's libEGL loads libEGL_nvidia, the Vulkan loader the NVIDIA ICD
//     (VK_LOADER_DEBUG names the entry's ICD file), ocl-icd (clinfo, traced
//     with LD_DEBUG) libnvidia-opencl from the entry, libvdpau the NVIDIA
//     backend (on Xvfb, as an NVIDIA X server names it), exactly where the
//     table says the library is found;
//   - a Nix-like probe dlopens libcuda.so and libnvidia-ml.so by their bare
//     names from the entry, and cuInit and nvmlInit reach the real driver;
//   - each vendor file the table calls made is one the manifest says
//     nixglhost wrote, and each it calls the host's is not.
func TestRealHosts(t *testing.T) {
	fixtures.SkipShort(t, "real loaders on six fake hosts")
	for _, lib := range []string{"libEGL.so.1", "libvulkan.so.1", "libOpenCL.so.1", "libvdpau.so.1"} {
		if _, err := exec.Command("sh", "-c", "ldconfig -p | grep -q "+lib).CombinedOutput(); err != nil {
			fixtures.Unavailable(t, "%s not installed (packages libegl1, libvulkan1, ocl-icd-libopencl1, libvdpau1)", lib)
		}
	}
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		fixtures.Unavailable(t, "no Xvfb (package xvfb): %v", err)
	}
	clinfo, err := exec.LookPath("clinfo")
	if err != nil {
		fixtures.Unavailable(t, "no clinfo (package clinfo): %v", err)
	}
	clients := clientsProbe(t, nil)
	display := startXvfb(t, xvfb)
	store := fixtures.NixStore(t, "amd64")
	probe := store.Probe(t)
	all := []string{"cuda", "nvml", "glx", "egl", "vulkan", "opencl", "gbm", "vdpau", "nvenc", "nvdec"}
	made := map[string]string{"egl": "made", "vulkan": "made", "opencl": "made"}
	host := map[string]string{"egl": "host", "vulkan": "host", "opencl": "host"}
	for _, tc := range []struct {
		name string
		root func(testing.TB) string
		args []string
		// found are the APIs whose library the entry must hold; vendor
		// says where each vendor file must come from.
		found  []string
		vendor map[string]string
	}{
		{"Debian, discovery", func(t testing.TB) string { return fixtures.DebianRoot(t, "amd64") }, nil, all, host},
		{"Debian split layout, -d nvidia/current", func(t testing.TB) string { return fixtures.DebianRoot(t, "amd64") },
			[]string{"-d", "/usr/lib/x86_64-linux-gnu/nvidia/current"}, all, host},
		{"Apptainer --nv", fixtures.ApptainerRoot, nil, all, made},
		{"container toolkit", fixtures.ToolkitRoot, nil, all, made},
		{"cloud image, /usr/local/nvidia", fixtures.CloudRoot, nil, all, map[string]string{"egl": "host", "vulkan": "host", "opencl": "made"}},
		{"WSL2", fixtures.WSLRoot, nil, []string{"cuda", "nvml"}, map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tc.root(t)
			cache := t.TempDir()
			args := append([]string{"--driver-root", root, "--cache-dir", cache}, tc.args...)
			env := baseEnv(t, "DISPLAY="+display)

			// The doctor's table, before anything is built.
			out, errOut, code := nixglhost(t, env, append(append([]string(nil), args...), "--doctor", "--json", clients)...)
			if code != 0 {
				t.Fatalf("--doctor exited %d:\n%s\n%s", code, out, errOut)
			}
			var r doctor.Report
			fixtures.Must(t, json.Unmarshal([]byte(out), &r))
			var found []string
			vendor := map[string]string{}
			caps := map[string]doctor.CapabilityReport{}
			for _, c := range r.Capabilities {
				caps[c.Name] = c
				if c.Found {
					found = append(found, c.Name)
				}
				if c.Vendor != "" {
					vendor[c.Name] = c.Vendor
				}
			}
			if diff := cmp.Diff(tc.found, found); diff != "" {
				t.Errorf("APIs found (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.vendor, vendor); diff != "" {
				t.Errorf("vendor files (-want +got):\n%s", diff)
			}

			// The launch of the real clients, with the Vulkan loader's
			// account of the drivers it found.
			stdout, stderr, code := nixglhost(t, append(env, "VK_LOADER_DEBUG=driver"), append(append([]string(nil), args...), "--", clients)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			entry := entryOf(t, cache)
			m, err := hostdrivers.ReadManifest(entry)
			fixtures.Must(t, err)
			mapped := func(out, base string) bool {
				for _, l := range strings.Split(out, "\n") {
					if p, ok := strings.CutPrefix(l, "map "); ok && strings.HasPrefix(path.Base(p), base) {
						return true
					}
				}
				return false
			}
			for _, c := range r.Capabilities {
				// The table's library is in the entry exactly when found.
				p := filepath.Join(entry, "lib", c.Library)
				if _, err := os.Stat(p); (err == nil) != c.Found {
					t.Errorf("%s: the doctor says found=%t, the entry's %s: %v", c.Name, c.Found, p, err)
				}
				// Made is what the manifest says nixglhost wrote.
				if c.Vendor != "" {
					wrote := false
					for _, d := range m.Data {
						wrote = wrote || d.Made != "" && d.Dest == c.VendorFile
					}
					if wrote != (c.Vendor == "made") {
						t.Errorf("%s: the doctor says the vendor file is %s (%s); the manifest's made files: %+v", c.Name, c.Vendor, c.VendorFile, m.Data)
					}
				}
			}
			for api, lib := range map[string]string{"egl": "libEGL_nvidia.so.", "vulkan": "libGLX_nvidia.so.", "opencl": "libnvidia-opencl.so."} {
				if got := mapped(stdout, lib); got != caps[api].Found {
					t.Errorf("%s: %s loaded = %t, the doctor says found = %t\n%s", api, lib, got, caps[api].Found, stdout)
				}
			}
			icd := filepath.Join(entry, "share/vulkan/icd.d/nvidia_icd.json")
			for _, l := range strings.Split(stderr, "\n") {
				if strings.Contains(l, "nvidia") {
					t.Logf("VK_LOADER_DEBUG: %s", l)
				}
			}
			if strings.Contains(stdout+stderr, icd) != caps["vulkan"].Found {
				t.Errorf("VK_LOADER_DEBUG names %s: %t, want %t\n%s", icd, !caps["vulkan"].Found, caps["vulkan"].Found, stderr)
			}

			// clinfo, the real OpenCL client, through ocl-icd.
			_, stderr, _ = nixglhost(t, append(env, "LD_DEBUG=files"), append(append([]string(nil), args...), "--", clinfo, "-l")...)
			init := "calling init: " + filepath.Join(entry, "lib", "libnvidia-opencl.so.1")
			if strings.Contains(stderr, init) != caps["opencl"].Found {
				t.Errorf("clinfo: %q in LD_DEBUG = %t, want %t", init, !caps["opencl"].Found, caps["opencl"].Found)
			}

			// libvdpau, as an NVIDIA X server names the driver.
			stdout, stderr, code = nixglhost(t, append(env, "VDPAU_DRIVER=nvidia"), append(append([]string(nil), args...), "--", clients, "vdpau")...)
			if code != 0 {
				t.Fatalf("clients vdpau: exit %d\n%s\n%s", code, stdout, stderr)
			}
			if got := mapped(stdout, "libvdpau_nvidia.so."); got != caps["vdpau"].Found {
				t.Errorf("vdpau: libvdpau_nvidia loaded = %t, the doctor says found = %t\n%s", got, caps["vdpau"].Found, stdout)
			}

			// A Nix-like program: cuInit and nvmlInit reach the real
			// driver; then, by the bare names Nix tools use.
			stdout, stderr, code = nixglhost(t, env, append(append([]string(nil), args...), "--", probe)...)
			if code != 0 {
				t.Fatalf("probe: exit %d\n%s\n%s", code, stdout, stderr)
			}
			checkProbe(t, fixtures.ParseProbe(stdout), stdout, store, root)
			bare := []string{"libcuda.so", "libnvidia-ml.so"}
			stdout, stderr, code = nixglhost(t, env, append(append(append([]string(nil), args...), "--", probe), bare...)...)
			if code != 0 {
				t.Fatalf("probe: exit %d\n%s\n%s", code, stdout, stderr)
			}
			res := fixtures.ParseProbe(stdout)
			for _, n := range bare {
				if d, ok := res.Lookup(n); !ok || !d.OK || !strings.HasPrefix(d.Path, filepath.Join(entry, "lib")+"/") {
					t.Errorf("dlopen(%s) = %+v, want it from %s/lib", n, d, entry)
				}
			}
			checkEntry(t, entry)
		})
	}
}
