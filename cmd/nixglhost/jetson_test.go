package main

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/doctor"
)

// jetsonGenerations are the Jetson hosts by generation (see
// ../shared/real-hosts/jetson-generations.txt): Orin on JetPack 5 and 6,
// whose nvidia module drives the display only, and the OpenRM generation
// (Thor on JetPack 7, Orin on JetPack 7.2).
var jetsonGenerations = []struct {
	name string
	root func(testing.TB) string
	// gpu is the kernel driver that serves the GPU, version its version,
	// display the display-only module's version.
	gpu              hostdrivers.KernelKind
	version, display string
	// lib is where the host keeps its driver, cuda where its libcuda.
	lib, cuda string
	// compat is the cuda_compat libcuda's version (its file name) and
	// note the branches its note lists.
	compat, note string
}{
	{
		name: "Orin L4T R35 (JetPack 5) with its display module 35.3.1",
		root: func(t testing.TB) string { return fixtures.OrinRoot(t, fixtures.L4TR35, "35.3.1") },
		gpu:  hostdrivers.KernelNVGPU, version: "35.3.1", display: "35.3.1",
		lib: "/usr/lib/aarch64-linux-gnu/tegra", cuda: "/usr/lib/aarch64-linux-gnu/tegra",
		compat: "1.1", note: `{"Format":1,"CUDA Version":"12.2","Driver":[535],"Device":[]}`,
	},
	{
		name: "Orin L4T R36 (JetPack 6) with its display module 36.3.0",
		root: func(t testing.TB) string { return fixtures.OrinRoot(t, fixtures.NvTegraRelease, "36.3.0") },
		gpu:  hostdrivers.KernelNVGPU, version: "36.3.0", display: "36.3.0",
		lib: "/usr/lib/aarch64-linux-gnu/nvidia", cuda: "/usr/lib/aarch64-linux-gnu/nvidia",
		compat: "1.1", note: `{"Format":1,"CUDA Version":"12.6","Driver":[540],"Device":[]}`,
	},
	{
		name: "Thor L4T R38 (JetPack 7) on OpenRM",
		root: fixtures.ThorRoot,
		gpu:  hostdrivers.KernelNVIDIA, version: "", display: "",
		lib: "/usr/lib/aarch64-linux-gnu/nvidia", cuda: "/usr/lib/aarch64-linux-gnu/nvidia",
		compat: "580.65.06", note: `{"Format":1,"CUDA Version":"13.0","Driver":[535,580],"Device":[]}`,
	},
	{
		name: "Orin L4T R39 (JetPack 7.2) on OpenRM with libcuda in " + fixtures.OpenRMDir,
		root: fixtures.JetPack7Root,
		gpu:  hostdrivers.KernelNVIDIA, version: "", display: "",
		lib: "/usr/lib/aarch64-linux-gnu/nvidia", cuda: fixtures.OpenRMDir,
		compat: "580.65.06", note: `{"Format":1,"CUDA Version":"13.0","Driver":[535,580],"Device":[]}`,
	},
}

// TestJetsonGenerations runs the arm64 probe and the real arm64 loaders
// (Debian's libglvnd libEGL and Vulkan loader, brought by the program, under
// qemu-user) on each Jetson generation's root, found by discovery alone: CUDA
// and NVML reach the host's libcuda (cuInit 100 without a GPU), glvnd loads
// libEGL_nvidia and the Vulkan loader libGLX_nvidia from the entry. The
// doctor names the GPU's driver (nvgpu with the L4T release on Orin before
// R38, whose nvidia module drives the display only; the OpenRM module on
// JetPack 7) and blocks on nothing; a cuda_compat libcuda given with -d goes
// first, and the doctor agrees. Before, the display module was taken for a
// desktop branch 35 or 36: a BLOCKING "kernel module 35.3.1 is loaded but
// the userspace driver is ..." and the compat libcuda refused.
func TestJetsonGenerations(t *testing.T) {
	store := fixtures.NixStore(t, "arm64")
	store.AddLoaders(t)
	probe := store.Probe(t)
	clients := clientsProbe(t, store)
	corpus := fixtures.CorpusVersion(t, "arm64")
	for _, tt := range jetsonGenerations {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.root(t)
			version := tt.version
			if tt.gpu == hostdrivers.KernelNVIDIA {
				version = corpus
			}
			res, out, entry := runProbe(t, store, probe, baseEnv(t), "--driver-root", root)
			checkProbe(t, res, out, store, root)
			checkEntry(t, entry)
			if want := filepath.Join(root, tt.cuda) + "/"; !strings.HasPrefix(res.CUDAPath, want) &&
				!strings.HasPrefix(res.CUDAPath, filepath.Join(entry, "lib")+"/") {
				t.Errorf("libcuda loaded from %q", res.CUDAPath)
			}
			if l, err := os.Readlink(filepath.Join(entry, "lib", "libcuda.so."+corpus)); err != nil || path.Dir(l) != filepath.Join(root, tt.cuda) {
				t.Errorf("lib/libcuda.so.%s -> %q (%v), want the host's file in %s", corpus, l, err, tt.cuda)
			}

			// The real loaders, as the program brings them.
			vars := printEnvJSON(t, baseEnv(t), "--driver-root", root, "--cache-dir", filepath.Dir(entry), clients)
			env := baseEnv(t, "VK_LOADER_DEBUG=error")
			for k, v := range vars {
				env = append(env, k+"="+v)
			}
			cout, err := store.Command(t, clients, env).CombinedOutput()
			if err != nil {
				t.Fatalf("clients: %v\n%s", err, cout)
			}
			// glvnd keeps libEGL_nvidia loaded; the Vulkan loader opens
			// libGLX_nvidia through the entry's ICD file and finds its
			// vk_icdGetInstanceProcAddr, which gives no vkCreateInstance
			// without a GPU (the loader then closes it): its message names
			// the file it opened.
			icd := entry + "/share/vulkan/icd.d/../../../lib/libGLX_nvidia.so.0"
			for _, want := range []string{
				"obj " + filepath.Join(entry, "lib", "libEGL_nvidia.so.0") + "\n",
				"obj " + filepath.Join(entry, "lib", "libnvidia-eglcore.so."+corpus) + "\n",
				"Could not get 'vkCreateInstance' via 'vk_icdGetInstanceProcAddr' for ICD " + icd + "\n",
			} {
				if !strings.Contains(string(cout), want) {
					t.Errorf("the real arm64 loaders' output lacks %q:\n%s", want, cout)
				}
			}

			// The doctor agrees with the launch.
			r := jetsonDoctor(t, root, probe)
			if r.Module.Kind != tt.gpu || r.Module.Version != version || r.Module.Display != tt.display {
				t.Errorf("module = %+v, want %s %s (display module %q)", r.Module, tt.gpu, version, tt.display)
			}
			if r.Blocking != 0 {
				t.Errorf("the doctor blocks on a Jetson: %+v", r.Findings)
			}
			for _, f := range r.Findings {
				if f.Topic == "module" {
					t.Errorf("module finding on a Jetson: %+v", f)
				}
			}

			// A cuda_compat libcuda given with -d goes first.
			compat := "/usr/local/cuda/compat"
			fixtures.CompatLibFor(t, filepath.Join(root, compat), tt.compat, tt.note, "arm64")
			args := []string{"--driver-root", root, "-d", compat, "-d", tt.lib}
			if tt.cuda != tt.lib {
				args = append(args, "-d", tt.cuda)
			}
			if tt.gpu == hostdrivers.KernelNVGPU {
				args = append(args, "-d", "/usr/lib/aarch64-linux-gnu/tegra-egl")
			}
			cache := t.TempDir()
			vars = printEnvJSON(t, baseEnv(t), append(append([]string{"--cache-dir", cache}, args...), probe)...)
			centry := entryOf(t, cache)
			checkEntry(t, centry)
			if l, err := os.Readlink(filepath.Join(centry, "lib", "libcuda.so.1")); err != nil || l != "libcuda.so."+tt.compat {
				t.Errorf("lib/libcuda.so.1 -> %q (%v), want the cuda_compat libcuda.so.%s", l, err, tt.compat)
			}
			if l, err := os.Readlink(filepath.Join(centry, "lib", "libcuda.so."+tt.compat)); err != nil || l != filepath.Join(root, compat, "libcuda.so."+tt.compat) {
				t.Errorf("lib/libcuda.so.%s -> %q (%v), want %s", tt.compat, l, err, compat)
			}
			rc := jetsonDoctor(t, root, probe, args[2:]...)
			if len(rc.Compat) != 1 || !rc.Compat[0].Usable || !rc.Compat[0].Chosen || rc.Blocking != 0 {
				t.Errorf("doctor with the cuda_compat libcuda: compat %+v, %d blocking: %+v", rc.Compat, rc.Blocking, rc.Findings)
			}
		})
	}
}

// jetsonDoctor runs --doctor --json for prog on root with args and returns
// its report.
func jetsonDoctor(t *testing.T, root, prog string, args ...string) doctor.Report {
	t.Helper()
	out, errOut, code := nixglhost(t, baseEnv(t), append(append([]string{"--driver-root", root}, args...), "--doctor", "--json", prog)...)
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--doctor --json (exit %d): %v\n%s\n%s", code, err, out, errOut)
	}
	return r
}
