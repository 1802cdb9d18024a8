package doctor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/doctor")

const (
	v535 = "535.261.03"
	v525 = "525.147.05"
	v470 = "470.256.02"
	v550 = "550.54.14"
)

// multiarch is where the fake roots keep their driver, as Debian does.
const multiarch = "/usr/lib/x86_64-linux-gnu"

// doctorRoot returns a fake host root with a gcc-built driver of version in
// its multiarch directory and, unless module is "", a loaded kernel module
// of version module.
func doctorRoot(t *testing.T, version, module string) string {
	t.Helper()
	root := t.TempDir()
	fixtures.FakeDriver(t, filepath.Join(root, multiarch), version, "amd64")
	if module != "" {
		fixtures.SetModuleVersion(t, root, module)
	}
	return root
}

// normalize replaces the test's temporary paths in s with stable names.
func normalize(s string, names map[string]string) string {
	var keys []string
	for k := range names {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return len(b) - len(a) })
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, names[k])
	}
	return s
}

// doctorCase is one setup for the doctor.
type doctorCase struct {
	name string
	// setup returns the options and the paths to normalise.
	setup func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string)
	// blocking are the topics of the blocking findings wanted, in order.
	blocking []string
	// warnings are the topics of the warnings wanted, in order.
	warnings []string
	// check looks at the report further.
	check func(t *testing.T, r *Report)
}

func doctorCases() []doctorCase {
	return []doctorCase{
		{
			// A program that links its own libgbm (nixpkgs' Mesa) on a
			// Mesa host whose libEGL_mesa needs the host's: the program's
			// copy would serve it.
			name: "mesa-own-libgbm",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := t.TempDir()
				lib := filepath.Join(root, multiarch)
				fixtures.Must(t, os.MkdirAll(lib, 0o755))
				empty := fixtures.Write(t, filepath.Join(t.TempDir(), "e.c"), "int gbm_create_device(int fd) { return fd; }\n")
				fixtures.CC(t, "gcc", "-shared", "-fPIC", "-o", filepath.Join(lib, "libgbm.so.1"), "-Wl,-soname,libgbm.so.1", empty)
				fixtures.CC(t, "gcc", "-shared", "-fPIC", "-o", filepath.Join(lib, "libEGL_mesa.so.0"), "-Wl,-soname,libEGL_mesa.so.0", empty, "-L"+lib, "-Wl,--no-as-needed", "-l:libgbm.so.1")
				own := t.TempDir()
				fixtures.CC(t, "gcc", "-shared", "-fPIC", "-o", filepath.Join(own, "libgbm.so.1"), "-Wl,-soname,libgbm.so.1", empty)
				prog := filepath.Join(own, "prog")
				main := fixtures.Write(t, filepath.Join(t.TempDir(), "m.c"), "int gbm_create_device(int);\nint main(void) { return gbm_create_device(0); }\n")
				fixtures.CC(t, "gcc", "-o", prog, main, "-L"+own, "-l:libgbm.so.1", "-Wl,-rpath,"+own)
				return &hostdrivers.Options{Root: root}, DoctorOptions{ProgramPath: prog, Program: prog}, map[string]string{root: "$ROOT", own: "$OWN"}
			},
			warnings: []string{"mesa"},
			check: func(t *testing.T, r *Report) {
				var f *Finding
				for i := range r.Findings {
					if r.Findings[i].Topic == "mesa" {
						f = &r.Findings[i]
					}
				}
				if f == nil || !strings.Contains(f.Message, "libgbm.so.1") || !strings.Contains(f.Message, "libEGL_mesa.so.0") {
					t.Errorf("mesa finding %+v, want one naming libgbm.so.1 and libEGL_mesa.so.0", f)
				}
			},
		},
		{
			// An NVIDIA GPU driving the display beside an Intel one whose
			// Mesa drivers are there but left out without --mesa: the
			// doctor names the GPU and the fix. (Where the Intel GPU drives
			// the display, Mesa is taken: cmd/nixglhost's
			// TestMesaGLXByRole.) A connector and a render node are not
			// cards.
			name: "hybrid-gpus",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := doctorRoot(t, v535, v535)
				fixtures.Must(t, os.MkdirAll(filepath.Join(root, multiarch, "dri"), 0o755))
				fixtures.FakeStub(t, filepath.Join(root, multiarch, "dri"), "iris_dri.so", "amd64")
				for card, dev := range map[string][3]string{"card0": {"0x8086", "i915", "0"}, "card1": {"0x10de", "nvidia", "1"}} {
					d := filepath.Join(root, "sys/class/drm", card, "device")
					fixtures.Write(t, filepath.Join(d, "vendor"), dev[0]+"\n")
					fixtures.Write(t, filepath.Join(d, "boot_vga"), dev[2]+"\n")
					fixtures.Must(t, os.Symlink("../../../bus/pci/drivers/"+dev[1], filepath.Join(d, "driver")))
				}
				fixtures.Must(t, os.MkdirAll(filepath.Join(root, "sys/class/drm/card0-eDP-1"), 0o755))
				fixtures.Must(t, os.MkdirAll(filepath.Join(root, "sys/class/drm/renderD128"), 0o755))
				return &hostdrivers.Options{Root: root}, DoctorOptions{}, map[string]string{root: "$ROOT"}
			},
			warnings: []string{"gpu"},
			check: func(t *testing.T, r *Report) {
				want := []GPUReport{
					{Card: "card0", Vendor: "0x8086", VendorName: "Intel", Kernel: "i915",
						Wants:   []string{"iris_dri.so|crocus_dri.so|i915_dri.so", "libvulkan_intel.so|libvulkan_intel_hasvk.so"},
						Missing: []string{"iris_dri.so|crocus_dri.so|i915_dri.so", "libvulkan_intel.so|libvulkan_intel_hasvk.so"}},
					{Card: "card1", Vendor: "0x10de", VendorName: "NVIDIA", Kernel: "nvidia",
						Wants: []string{"libGLX_nvidia.so.0|libEGL_nvidia.so.0|libcuda.so.1"}, Missing: []string{}},
				}
				if d := cmp.Diff(want, r.GPUs); d != "" {
					t.Errorf("GPUs (-want +got):\n%s", d)
				}
				if f := r.Findings[0]; !strings.Contains(f.Fix, "--mesa") {
					t.Errorf("the GPU finding's fix %q does not name --mesa", f.Fix)
				}
			},
		},
		{
			name: "clean",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := doctorRoot(t, v535, v535)
				cache := t.TempDir()
				return &hostdrivers.Options{Root: root}, DoctorOptions{CacheDir: cache}, map[string]string{root: "$ROOT", cache: "$CACHE"}
			},
			check: func(t *testing.T, r *Report) {
				if r.Driver.Version != v535 || r.Module.Version != v535 || r.Module.Source != "/sys/module/nvidia/version" {
					t.Errorf("driver %q, module %+v", r.Driver.Version, r.Module)
				}
				want := map[catalog.API]bool{catalog.APICUDA: true, catalog.APINVML: true, catalog.APIGLX: true, catalog.APIEGL: true, catalog.APIGBM: true, catalog.APICore: true, catalog.APIOptiX: false}
				for _, a := range r.APIs {
					if w, ok := want[a.API]; ok && (a.Available != w) {
						t.Errorf("API %s available = %t, want %t (%v)", a.API, a.Available, w, a.Files)
					}
				}
				if r.APIs[0].API != catalog.APICUDA || r.APIs[0].Files[0] != multiarch+"/libcuda.so."+v535 {
					t.Errorf("first API %+v, want cuda from libcuda", r.APIs[0])
				}
				if !r.Cache.Exists || r.Cache.Entries != 0 || !r.Cache.Writable || r.Cache.Built || r.Cache.Entry == "" {
					t.Errorf("cache %+v", r.Cache)
				}
			},
		},
		{
			// WSL2: the driver is the Windows one's, in /usr/lib/wsl/lib,
			// served through dxgkrnl and /dev/dxg; no module warning.
			name: "wsl",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := t.TempDir()
				fixtures.FakeDriver(t, filepath.Join(root, "usr/lib/wsl/lib"), v535, "amd64")
				fixtures.Must(t, os.MkdirAll(filepath.Join(root, "dev"), 0o755))
				fixtures.Must(t, os.WriteFile(filepath.Join(root, "dev/dxg"), nil, 0o644))
				return &hostdrivers.Options{Root: root}, DoctorOptions{}, map[string]string{root: "$ROOT"}
			},
			check: func(t *testing.T, r *Report) {
				if r.Module.Kind != "dxgkrnl" || r.Module.Source != "/dev/dxg" {
					t.Errorf("module %+v, want WSL2's dxgkrnl", r.Module)
				}
			},
		},
		{
			name: "module-newer",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := doctorRoot(t, v535, v550)
				return &hostdrivers.Options{Root: root}, DoctorOptions{}, map[string]string{root: "$ROOT"}
			},
			blocking: []string{"module"},
			check: func(t *testing.T, r *Report) {
				m := r.Findings[0].Message + r.Findings[0].Fix
				for _, s := range []string{v550, v535, "point -d at the directory of the " + v550} {
					if !strings.Contains(m, s) {
						t.Errorf("finding %q lacks %q", m, s)
					}
				}
			},
		},
		{
			name: "module-older-proc",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := doctorRoot(t, v535, v470)
				fixtures.Must(t, os.Remove(filepath.Join(root, "sys/module/nvidia/version")))
				return &hostdrivers.Options{Root: root}, DoctorOptions{}, map[string]string{root: "$ROOT"}
			},
			blocking: []string{"module"},
			check: func(t *testing.T, r *Report) {
				if r.Module.Source != "/proc/driver/nvidia/version" || r.Module.Version != v470 {
					t.Errorf("module %+v, want %s from /proc", r.Module, v470)
				}
				if !strings.Contains(r.Findings[0].Fix, "reboot") {
					t.Errorf("fix %q does not say to reboot after an upgrade", r.Findings[0].Fix)
				}
			},
		},
		{
			name: "no-module",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := doctorRoot(t, v535, "")
				return &hostdrivers.Options{Root: root}, DoctorOptions{}, map[string]string{root: "$ROOT"}
			},
			warnings: []string{"module"},
		},
		{
			name: "several-versions",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := t.TempDir()
				for _, v := range []string{v535, v525, v470} {
					fixtures.FakeDriver(t, filepath.Join(root, "opt/nvidia", v), v, "amd64")
				}
				fixtures.SetModuleVersion(t, root, v525)
				o := &hostdrivers.Options{Root: root, Dirs: []string{"/opt/nvidia/" + v535, "/opt/nvidia/" + v525, "/opt/nvidia/" + v470, "/opt/none"}}
				return o, DoctorOptions{}, map[string]string{root: "$ROOT"}
			},
			check: func(t *testing.T, r *Report) {
				var got []VersionSeen
				got = append(got, r.Driver.Versions...)
				want := []VersionSeen{
					{Version: v535, Dirs: []string{"/opt/nvidia/" + v535}},
					{Version: v525, Dirs: []string{"/opt/nvidia/" + v525}, Chosen: true},
					{Version: v470, Dirs: []string{"/opt/nvidia/" + v470}},
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("versions (-want +got):\n%s", diff)
				}
				if r.Driver.Version != v525 || !strings.Contains(r.Driver.Reason, "matches the kernel module") {
					t.Errorf("chosen %s: %s", r.Driver.Version, r.Driver.Reason)
				}
				if r.Dirs[0].Used != 0 || r.Dirs[1].Used == 0 || !strings.Contains(r.Dirs[0].Note, "driver version "+v535+" not chosen") {
					t.Errorf("dirs %+v", r.Dirs)
				}
				if !slices.Contains(r.Skipped, hostdrivers.Skipped{Path: "/opt/none", Reason: "missing", Code: hostdrivers.SkipMissing}) {
					t.Errorf("skipped %v lacks the missing -d directory", r.Skipped)
				}
			},
		},
		{
			name: "wrong-architecture",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := t.TempDir()
				fixtures.Must(t, os.MkdirAll(filepath.Join(root, "opt/arm"), 0o755))
				fixtures.Must(t, os.MkdirAll(filepath.Join(root, "opt/empty"), 0o755))
				fixtures.FakeStub(t, filepath.Join(root, "/opt/arm"), "libcuda.so.1", "arm64")
				fixtures.FakeStub(t, filepath.Join(root, "/opt/empty"), "libfoo.so.1", "amd64")
				fixtures.SetModuleVersion(t, root, v535)
				fixtures.Write(t, filepath.Join(root, "opt/file"), "")
				return &hostdrivers.Options{Root: root, Dirs: []string{"/opt/arm", "/opt/empty", "/opt/file"}}, DoctorOptions{}, map[string]string{root: "$ROOT"}
			},
			blocking: []string{"architecture"},
			check: func(t *testing.T, r *Report) {
				if !strings.HasPrefix(r.Dirs[0].Note, "wrong architecture") || r.Dirs[1].Note != "no driver files" {
					t.Errorf("dirs %+v", r.Dirs)
				}
				if !slices.Contains(r.Skipped, hostdrivers.Skipped{Path: "/opt/file", Reason: "not a directory", Code: hostdrivers.SkipNotDir}) {
					t.Errorf("skipped %v lacks /opt/file", r.Skipped)
				}
			},
		},
		{
			name: "fhs-interpreter-missing",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := doctorRoot(t, v535, v535)
				c := fixtures.Write(t, filepath.Join(t.TempDir(), "prog.c"), "int main(void) { return 0; }\n")
				prog := filepath.Join(t.TempDir(), "prog")
				fixtures.CC(t, "gcc", "-o", prog, c, "-Wl,--dynamic-linker=/lib64/ld-nonexistent-x86-64.so.2")
				return &hostdrivers.Options{Root: root}, DoctorOptions{ProgramPath: prog, Program: prog}, map[string]string{root: "$ROOT", prog: "$PROG"}
			},
			blocking: []string{"interpreter"},
			check: func(t *testing.T, r *Report) {
				if r.Program.InterpKind != "fhs" || r.Program.NixLD {
					t.Errorf("program %+v", r.Program)
				}
			},
		},
		{
			name: "jetson",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := t.TempDir()
				dir := filepath.Join(root, multiarch, "tegra")
				fixtures.Must(t, os.MkdirAll(dir, 0o755))
				for _, n := range []string{"libcuda.so.1", "libnvrm_gpu.so", "libnvos.so"} {
					fixtures.FakeStub(t, dir, n, "amd64")
				}
				fixtures.Write(t, filepath.Join(root, "sys/module/nvgpu/version"), "36.3.0\n")
				fixtures.Write(t, filepath.Join(root, "etc/nv_tegra_release"), fixtures.NvTegraRelease)
				return &hostdrivers.Options{Root: root, Dirs: []string{multiarch + "/tegra"}}, DoctorOptions{}, map[string]string{root: "$ROOT"}
			},
			check: func(t *testing.T, r *Report) {
				want := ModuleReport{Kind: "nvgpu", Version: "36.3.0", Source: "/sys/module/nvgpu/version", Release: "R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024"}
				if diff := cmp.Diff(want, r.Module); diff != "" {
					t.Errorf("module (-want +got):\n%s", diff)
				}
				if r.Driver.Version != "" || r.Driver.Files != 3 {
					t.Errorf("driver %+v", r.Driver)
				}
			},
		},
		{
			name: "cuda-compat",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := doctorRoot(t, v535, v535)
				fixtures.CompatLib(t, filepath.Join(root, "usr/local/cuda/compat"), "550.54.15", `{"Format": 1, "CUDA Version": "12.4", "Driver": [470, 535], "Device": [7, 8, 9]}`)
				fixtures.CompatLib(t, filepath.Join(root, "opt/compat-old"), "545.23.08", `{"Format": 1, "CUDA Version": "12.3", "Driver": [525], "Device": [7]}`)
				o := &hostdrivers.Options{Root: root, Dirs: []string{"/usr/local/cuda/compat", "/opt/compat-old", multiarch}}
				return o, DoctorOptions{}, map[string]string{root: "$ROOT"}
			},
			check: func(t *testing.T, r *Report) {
				want := []CompatReport{
					{Path: "/usr/local/cuda/compat/libcuda.so.550.54.15", Version: "550.54.15", CUDA: "12.4", Branches: []int{470, 535}, Usable: true, Chosen: true, Reason: "kernel module branch 535 is supported"},
					{Path: "/opt/compat-old/libcuda.so.545.23.08", Version: "545.23.08", CUDA: "12.3", Branches: []int{525}, Reason: "kernel module branch 535 is not among the supported branches [525]"},
				}
				if diff := cmp.Diff(want, r.Compat); diff != "" {
					t.Errorf("cuda_compat (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "environment",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := doctorRoot(t, v535, v535)
				glibc := t.TempDir()
				fixtures.Write(t, filepath.Join(glibc, "libc.so.6"), "")
				fixtures.Write(t, filepath.Join(glibc, "libm.so.6"), "")
				env := []string{"LD_LIBRARY_PATH=/nonexistent:" + glibc, "LD_PRELOAD=" + glibc + "/libm.so.6",
					"__GLX_VENDOR_LIBRARY_NAME=mesa", "__EGL_VENDOR_LIBRARY_FILENAMES=/etc/mesa.json", "VK_ICD_FILENAMES=/etc/lvp.json",
					"__GLX_VENDOR_LIBRARY_NAME=mesa"}
				return &hostdrivers.Options{Root: root}, DoctorOptions{Environ: env}, map[string]string{root: "$ROOT", glibc: "$GLIBC"}
			},
			warnings: []string{"environment", "environment", "environment", "environment", "environment"},
		},
		{
			name: "program-glibc-too-old",
			setup: func(t *testing.T) (*hostdrivers.Options, DoctorOptions, map[string]string) {
				root := doctorRoot(t, v535, v535)
				store, prog := fixtures.OldStore(t)
				do := DoctorOptions{ProgramPath: prog, Program: prog, StoreDir: store}
				return &hostdrivers.Options{Root: root}, do, map[string]string{root: "$ROOT", store: "$STORE", prog: "$PROG"}
			},
			blocking: []string{"glibc"},
			check: func(t *testing.T, r *Report) {
				pr := r.Program
				if pr.Glibc != "2.17" || pr.InterpKind != "nix-store" || pr.Class != "ELFCLASS64" {
					t.Errorf("program %+v", pr)
				}
				var cuda *VersionProblem
				for i, g := range pr.GlibcTooNew {
					if g.File == multiarch+"/libcuda.so."+v535 {
						cuda = &pr.GlibcTooNew[i]
					}
				}
				if cuda == nil || cuda.Library != "libc.so.6" || len(cuda.Symbols) == 0 {
					t.Fatalf("no usable glibc problem for libcuda in %+v", pr.GlibcTooNew)
				}
				if !strings.Contains(r.Findings[0].Message, "2.17") || !strings.Contains(r.Findings[0].Message, pr.GlibcTooNew[0].Version) {
					t.Errorf("finding %q names neither the program's glibc nor the version needed", r.Findings[0].Message)
				}
			},
		},
	}
}

// TestDoctor sets up each cause, checks the findings it produces, and
// compares the human report with testdata/doctor/<name>.txt (go test
// -update rewrites them).
func TestDoctor(t *testing.T) {
	for _, tc := range doctorCases() {
		t.Run(tc.name, func(t *testing.T) {
			o, do, names := tc.setup(t)
			r, err := Doctor(o, do)
			if err != nil {
				t.Fatal(err)
			}
			var blocking, warnings []string
			for _, f := range r.Findings {
				if f.Severity == SeverityBlocking {
					blocking = append(blocking, string(f.Topic))
				} else {
					warnings = append(warnings, string(f.Topic))
				}
			}
			if diff := cmp.Diff(tc.blocking, blocking); diff != "" {
				t.Errorf("blocking findings (-want +got):\n%s\n%s", diff, r.Text())
			}
			if diff := cmp.Diff(tc.warnings, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s\n%s", diff, r.Text())
			}
			if r.Blocking != len(tc.blocking) {
				t.Errorf("Blocking = %d, want %d", r.Blocking, len(tc.blocking))
			}
			if tc.check != nil {
				tc.check(t, r)
			}
			// The JSON contract: every finding has a known severity and
			// topic.
			known := map[Topic]bool{TopicDriver: true, TopicModule: true, TopicCompat: true, TopicArchitecture: true, TopicInterpreter: true,
				TopicGlibc: true, TopicLibstdcxx: true, TopicGPU: true, TopicMesa: true, TopicEnvironment: true, TopicCache: true}
			for _, f := range r.Findings {
				if !known[f.Topic] || f.Severity != SeverityBlocking && f.Severity != SeverityWarning {
					t.Errorf("finding %+v: severity or topic outside the contract", f)
				}
			}
			got := normalize(r.Text(), names)
			golden := filepath.Join("testdata", "doctor", tc.name+".txt")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestDoctor -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("report differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// TestDoctorCXX: a driver file needing a GLIBCXX_ version newer than the
// libstdc++ the program loads itself is blocking, with the C++ symbol
// named in its demangled form.
func TestDoctorCXX(t *testing.T) {
	root := doctorRoot(t, v535, v535)
	store, _ := fixtures.OldStore(t)
	// GCC 4.8's libstdc++ (CentOS 7).
	fixtures.VersionedLib(t, store, "libstdc++.so.6", []string{"GLIBCXX_3.4", "GLIBCXX_3.4.1", "GLIBCXX_3.4.19", "CXXABI_1.3", "CXXABI_1.3.7"})
	// A driver file (glvkspirv is C++ in real drivers) built with this
	// machine's g++: it needs GLIBCXX_3.4.21 for std::__cxx11::basic_string.
	src := fixtures.Write(t, filepath.Join(t.TempDir(), "spirv.cc"), "#include <string>\nstd::string spirv(const char *s) { return std::string(s) + \"!\"; }\n")
	fixtures.CC(t, "g++", "-shared", "-fPIC", "-O1", "-o", filepath.Join(root, multiarch, "libnvidia-glvkspirv.so."+v535), "-Wl,-soname,libnvidia-glvkspirv.so."+v535, src)
	c := fixtures.Write(t, filepath.Join(t.TempDir(), "prog.c"), "int main(void) { return 0; }\n")
	prog := filepath.Join(t.TempDir(), "prog")
	fixtures.CC(t, "gcc", "-o", prog, c, "-Wl,--dynamic-linker="+filepath.Join(store, "ld-linux-x86-64.so.2"),
		"-Wl,-rpath,"+store, "-Wl,--enable-new-dtags", "-L"+store, "-Wl,--no-as-needed", "-l:libstdc++.so.6")
	r, err := Doctor(&hostdrivers.Options{Root: root}, DoctorOptions{ProgramPath: prog, Program: prog, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	pr := r.Program
	if pr.Libstdcxx != filepath.Join(store, "libstdc++.so.6") || pr.Glibcxx != "3.4.19" {
		t.Fatalf("program's libstdc++ %q %q", pr.Libstdcxx, pr.Glibcxx)
	}
	if len(pr.CXXTooNew) != 1 {
		t.Fatalf("cxx problems %+v, want one for glvkspirv\n%s", pr.CXXTooNew, r.Text())
	}
	p := pr.CXXTooNew[0]
	if p.File != multiarch+"/libnvidia-glvkspirv.so."+v535 || !strings.HasPrefix(p.Version, "GLIBCXX_3.4.") {
		t.Errorf("problem %+v", p)
	}
	demangled := false
	for _, s := range p.Symbols {
		if strings.Contains(s, "std::") && !strings.HasPrefix(s, "_Z") {
			demangled = true
		}
	}
	if !demangled {
		t.Errorf("symbols %q are not demangled C++ names", p.Symbols)
	}
	found := false
	for _, f := range r.Findings {
		if f.Topic == "libstdc++" && f.Severity == SeverityBlocking && strings.Contains(f.Message, "std::") {
			found = true
		}
	}
	if !found {
		t.Errorf("no blocking libstdc++ finding naming the symbol:\n%s", r.Text())
	}
}

// TestDoctorJSONSchema checks the JSON form: it decodes into Report with
// no unknown field, and every documented required field is present.
func TestDoctorJSONSchema(t *testing.T) {
	root := doctorRoot(t, v535, v550)
	store, prog := fixtures.OldStore(t)
	r, err := Doctor(&hostdrivers.Options{Root: root}, DoctorOptions{ProgramPath: prog, Program: prog, StoreDir: store, CacheDir: t.TempDir(),
		Environ: []string{"VK_ICD_FILENAMES=/x.json"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var back Report
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("decoding the report strictly: %v", err)
	}
	if diff := cmp.Diff(r, &back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	required := map[string][]string{
		"":              {"root", "blocking", "findings", "dirs", "skipped", "module", "driver", "cuda_compat", "apis", "program", "environment", "cache"},
		"findings":      {"severity", "topic", "message"},
		"dirs":          {"dir", "origin", "driver_files", "used"},
		"module":        {"kind", "version"},
		"driver":        {"version", "reason", "versions", "files", "missing"},
		"apis":          {"api", "available", "files", "data"},
		"program":       {"path", "elf", "interp_kind", "nix_ld", "glibc_too_new", "cxx_too_new"},
		"environment":   {"name", "value"},
		"cache":         {"dir", "exists", "entries", "bytes", "writable", "built"},
		"glibc_too_new": {"file", "dependency", "library", "version", "symbols"},
	}
	check := func(where string, raw json.RawMessage) {
		var o map[string]json.RawMessage
		if raw[0] == '[' {
			var arr []json.RawMessage
			if err := json.Unmarshal(raw, &arr); err != nil || len(arr) == 0 {
				t.Errorf("%s: want a non-empty array in this setup: %s", where, raw)
				return
			}
			raw = arr[0]
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		for _, k := range required[where] {
			if _, ok := o[k]; !ok {
				t.Errorf("%s: required field %q missing in %s", where, k, raw)
			}
		}
		if where == "program" {
			obj["glibc_too_new"] = o["glibc_too_new"]
		}
	}
	check("", b)
	for _, k := range []string{"findings", "dirs", "module", "driver", "apis", "program", "environment", "cache", "glibc_too_new"} {
		check(k, obj[k])
	}
}

// TestGlibcNeedsInManifest: a built entry records each file's highest
// GLIBC_ need, so the launch path need not read the driver.
func TestGlibcNeedsInManifest(t *testing.T) {
	root := doctorRoot(t, v535, v535)
	cache := t.TempDir()
	p, err := hostdrivers.Prepare(&hostdrivers.Options{Root: root}, cache)
	if err != nil || p == nil {
		t.Fatalf("Prepare: %v, %v", p, err)
	}
	// The doctor finds the entry Prepare built: same key.
	r, err := Doctor(&hostdrivers.Options{Root: root}, DoctorOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Cache.Built || r.Cache.Entry != p.Dir || r.Cache.Entries != 1 || r.Cache.Bytes == 0 {
		t.Errorf("doctor's cache report %+v, want the entry %s built", r.Cache, p.Dir)
	}
	var cuda string
	for _, g := range p.Manifest.GlibcNeeds {
		if g.File == "libcuda.so."+v535 {
			cuda = g.Version
		}
	}
	if !strings.HasPrefix(cuda, "GLIBC_2.") {
		t.Errorf("manifest glibc needs %+v lack libcuda's", p.Manifest.GlibcNeeds)
	}
	m, err := hostdrivers.ReadManifest(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p.Manifest.GlibcNeeds, m.GlibcNeeds); diff != "" {
		t.Errorf("glibc needs lost in manifest.json (-want +got):\n%s", diff)
	}
}

// TestDoctorRealDrivers runs the doctor on the real Debian drivers: 535
// (Debian's root), 525 and 470 side by side, with the kernel module at each
// version in turn, and the three setups of the closing note.
func TestDoctorRealDrivers(t *testing.T) {
	root := fixtures.DebianRoot(t, "amd64")
	fixtures.LinkTree(t, fixtures.NvidiaOld(t, "amd64"), root)
	nv := multiarch + "/nvidia/"
	dirs := []string{nv + "current", nv + "tesla", nv + "tesla-470"}
	for _, tt := range []struct {
		module, chosen string
		blocking       []string
	}{
		{v525, v525, nil},
		{v470, v470, nil},
		{v535, v535, nil},
		{"", v535, nil},
		{v550, v535, []string{"module"}},
	} {
		t.Run("module="+tt.module, func(t *testing.T) {
			fixtures.Must(t, os.RemoveAll(filepath.Join(root, "sys")))
			fixtures.Must(t, os.RemoveAll(filepath.Join(root, "proc")))
			if tt.module != "" {
				fixtures.SetModuleVersion(t, root, tt.module)
			}
			r, err := Doctor(&hostdrivers.Options{Root: root, Dirs: dirs}, DoctorOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var vs []string
			for _, v := range r.Driver.Versions {
				vs = append(vs, v.Version)
			}
			if diff := cmp.Diff([]string{v535, v525, v470}, vs); diff != "" {
				t.Errorf("versions seen (-want +got):\n%s", diff)
			}
			var blocking []string
			for _, f := range r.Findings {
				if f.Severity == SeverityBlocking {
					blocking = append(blocking, string(f.Topic))
				}
			}
			if r.Driver.Version != tt.chosen || !cmp.Equal(tt.blocking, blocking) {
				t.Errorf("chosen %s (%s), blocking %v; want %s, %v\n%s", r.Driver.Version, r.Driver.Reason, blocking, tt.chosen, tt.blocking, r.Text())
			}
		})
	}

	// The closing note's setups: discovery on the Debian root.
	fixtures.Must(t, os.RemoveAll(filepath.Join(root, multiarch, "nvidia", "tesla")))
	fixtures.Must(t, os.RemoveAll(filepath.Join(root, multiarch, "nvidia", "tesla-470")))
	store, prog := fixtures.OldStore(t)
	for _, tt := range []struct {
		name, module string
		do           DoctorOptions
		blocking     []string
	}{
		{"clean", v535, DoctorOptions{}, nil},
		{"version mismatch", v550, DoctorOptions{}, []string{"module"}},
		{"too-old program glibc", v535, DoctorOptions{ProgramPath: prog, Program: prog, StoreDir: store}, []string{"glibc"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fixtures.SetModuleVersion(t, root, tt.module)
			tt.do.CacheDir = t.TempDir()
			r, err := Doctor(&hostdrivers.Options{Root: root}, tt.do)
			if err != nil {
				t.Fatal(err)
			}
			var blocking []string
			for _, f := range r.Findings {
				if f.Severity == SeverityBlocking {
					blocking = append(blocking, string(f.Topic))
				}
			}
			if !cmp.Equal(tt.blocking, blocking) {
				t.Errorf("blocking %v, want %v", blocking, tt.blocking)
			}
			t.Logf("report:\n%s", normalize(r.Text(), map[string]string{root: "$ROOT", store: "$STORE", prog: "$PROG", tt.do.CacheDir: "$CACHE"}))
		})
	}
}

// TestMesaOnlyReport: on a host whose only driver is Mesa's, the doctor
// reports Mesa, not a list of NVIDIA misses: no NVIDIA rows in the per-API
// table, no finding about NVIDIA, and the driver is not called "an
// unversioned driver, as on WSL or Jetson".
func TestMesaOnlyReport(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, "usr/lib/x86_64-linux-gnu")
	fixtures.Must(t, os.MkdirAll(filepath.Join(lib, "dri"), 0o755))
	fixtures.FakeStub(t, lib, "libEGL_mesa.so.0", "amd64")
	fixtures.FakeStub(t, lib, "libGLX_mesa.so.0", "amd64")
	fixtures.FakeStub(t, filepath.Join(lib, "dri"), "swrast_dri.so", "amd64")
	r, err := Doctor(&hostdrivers.Options{Root: root}, DoctorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, c := range r.Capabilities {
		rows = append(rows, c.Name)
	}
	if want := []string{"egl-mesa", "glx-mesa", "dri", "vulkan-mesa"}; !cmp.Equal(rows, want) {
		t.Errorf("per-API rows %q, want Mesa's %q", rows, want)
	}
	for _, f := range r.Findings {
		if strings.Contains(f.Message, "NVIDIA") || strings.Contains(f.Message, "cuda") {
			t.Errorf("an NVIDIA finding on a Mesa host: %+v", f)
		}
	}
	if strings.Contains(r.Driver.Reason, "WSL") || !strings.Contains(r.Driver.Reason, "Mesa") {
		t.Errorf("driver reason %q, want it to say Mesa", r.Driver.Reason)
	}
	if r.Blocking != 0 {
		t.Errorf("%d blocking findings on a working Mesa host:\n%s", r.Blocking, r.Text())
	}
}
