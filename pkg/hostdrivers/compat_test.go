package hostdrivers

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestCudaCompat: a cuda_compat libcuda given with -d goes before the
// host's, whatever the order of the flags, when the kernel module's branch
// is one its note names; otherwise it is skipped with a reason.
func TestCudaCompat(t *testing.T) {
	root := t.TempDir()
	fixtures.FakeDriver(t, filepath.Join(root, "host"), "535.261.03", "amd64")
	fixtures.CompatLib(t, filepath.Join(root, "compat"), "550.54.14", `{"Format":1,"CUDA Version":"12.4","Driver":[470,535],"Device":[]}`)
	tests := []struct {
		name, module string
		dirs         []string
		wantCompat   bool
	}{
		{"compat after host, branch supported", "535.261.03", []string{"/host", "/compat"}, true},
		{"compat first, branch supported", "535.261.03", []string{"/compat", "/host"}, true},
		{"branch not supported", "525.147.05", []string{"/compat", "/host"}, false},
		{"no module known", "", []string{"/compat", "/host"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &Options{Root: root, Dirs: tt.dirs}
			src, err := sourcesOf(o)
			if err != nil {
				t.Fatal(err)
			}
			cands, _ := scan(root, src, nil)
			sel, err := selectDriver(root, cands, o.target(), tt.module, kernelFor(root, tt.module))
			if err != nil {
				t.Fatal(err)
			}
			var cuda []string
			for _, f := range sel.Files {
				if strings.HasPrefix(f.Base, "libcuda.so.") {
					cuda = append(cuda, f.Base)
				}
			}
			want := "libcuda.so.535.261.03"
			if tt.wantCompat {
				want = "libcuda.so.550.54.14"
			}
			if len(cuda) != 1 || cuda[0] != want {
				t.Errorf("libcuda files %v, want only %s (reason %q, skipped %v)", cuda, want, sel.Reason, sel.Skipped)
			}
			// libcuda.so.1 names the chosen one.
			for _, f := range sel.Files {
				for _, l := range f.Links {
					if l == "libcuda.so.1" && f.Base != want {
						t.Errorf("libcuda.so.1 links to %s, want %s", f.Base, want)
					}
				}
			}
			if !tt.wantCompat {
				found := false
				for _, s := range sel.Skipped {
					found = found || strings.Contains(s.Reason, "cuda_compat libcuda 550.54.14 not used")
				}
				if !found {
					t.Errorf("no reason given for skipping the compat libcuda: %v", sel.Skipped)
				}
			}
			// The rest of the driver is the host's.
			for _, f := range sel.Files {
				if strings.HasPrefix(f.Base, "libnvidia-ml.so.") && f.Version != "535.261.03" {
					t.Errorf("NVML from %s", f.Version)
				}
			}
		})
	}
}

// TestCacheKeyFollowsSelection: the same files reached as LD_LIBRARY_PATH
// (where a compat libcuda is not preferred) and as -d (where it is) make
// two entries with two libcudas, in whichever order they are built in one
// shared cache. Keyed on the inputs, the second launch got the first one's
// entry: the wrong libcuda, while --doctor said otherwise.
func TestCacheKeyFollowsSelection(t *testing.T) {
	root := t.TempDir()
	fixtures.FakeDriver(t, filepath.Join(root, "host"), "535.261.03", "amd64")
	fixtures.CompatLib(t, filepath.Join(root, "compat"), "550.54.14", `{"Format":1,"CUDA Version":"12.4","Driver":[470,535],"Device":[]}`)
	fixtures.Must(t, os.MkdirAll(filepath.Join(root, "sys/module/nvidia"), 0o755))
	fixtures.Must(t, os.WriteFile(filepath.Join(root, "sys/module/nvidia/version"), []byte("535.261.03\n"), 0o644))
	byPath := func() *Options { return &Options{Root: root, LibraryPath: "/compat:/host"} }
	byFlag := func() *Options { return &Options{Root: root, Dirs: []string{"/compat", "/host"}} }
	want := map[string]string{"LD_LIBRARY_PATH": "libcuda.so.535.261.03", "-d": "libcuda.so.550.54.14"}
	for _, order := range [][]string{{"LD_LIBRARY_PATH", "-d"}, {"-d", "LD_LIBRARY_PATH"}} {
		t.Run(strings.Join(order, " then "), func(t *testing.T) {
			cache := t.TempDir()
			dirs := map[string]string{}
			for _, how := range order {
				o := byPath()
				if how == "-d" {
					o = byFlag()
				}
				p, err := Prepare(o, cache)
				if err != nil || p == nil {
					t.Fatalf("%s: Prepare = %v, %v", how, p, err)
				}
				got, err := os.Readlink(filepath.Join(p.Dir, "lib", "libcuda.so.1"))
				if err != nil || got != want[how] {
					t.Errorf("%s: lib/libcuda.so.1 -> %q (%v), want %s", how, got, err, want[how])
				}
				dirs[how] = p.Dir
			}
			if dirs["-d"] == dirs["LD_LIBRARY_PATH"] {
				t.Errorf("both launches used the entry %s", dirs["-d"])
			}
		})
	}
}

// TestCudaCompatByKernel: the cuda_compat rule follows the kernel driver.
// On a Jetson (nvgpu) the host's and the compat libcuda are both
// libcuda.so.1.1, unversioned; the compat one goes first from L4T R34
// (JetPack 5) on, and is refused, with the reason, on older L4T, an unknown
// release and WSL2. Before, an unversioned compat libcuda was never even
// looked at, and the doctor said "no kernel module version known" on every
// Jetson.
func TestCudaCompatByKernel(t *testing.T) {
	const note = `{"Format":1,"CUDA Version":"12.6","Driver":[540,580],"Device":[]}`
	tests := []struct {
		name    string
		files   map[string]string
		want    bool
		because string
	}{
		{"Jetson L4T R36", map[string]string{"sys/module/nvgpu/version": "36.3.0\n", "etc/nv_tegra_release": "# R36 (release), REVISION: 3.0, GCID: 36191598\n"}, true, "L4T R36"},
		{"Jetson L4T R35, module without a version file", map[string]string{"sys/module/nvgpu/parameters/x": "", "etc/nv_tegra_release": "# R35 (release), REVISION: 5.0\n"}, true, "L4T R35"},
		{"Jetson L4T R32 (JetPack 4)", map[string]string{"sys/module/nvgpu/version": "4.9.337\n", "etc/nv_tegra_release": "# R32 (release), REVISION: 7.4\n"}, false, "L4T R32 predates"},
		{"Jetson without a release file", map[string]string{"sys/module/nvgpu/version": "36.3.0\n"}, false, "L4T release is unknown"},
		// Orin on JetPack 5 and 6 loads an nvidia module for its display,
		// whose version is the L4T release: it was taken for branch 35.
		{"Orin L4T R35, display module loaded", map[string]string{"sys/module/nvgpu/parameters/x": "", "etc/nv_tegra_release": orinR35Release, "sys/module/nvidia/version": "35.3.1\n", "proc/driver/nvidia/version": orinDisplayProc}, true, "L4T R35"},
		{"Orin L4T R35, display module, no nvgpu in /sys", map[string]string{"etc/nv_tegra_release": orinR35Release, "proc/driver/nvidia/version": orinDisplayProc}, true, "L4T R35"},
		{"Orin L4T R36, display module loaded", map[string]string{"sys/module/nvgpu/version": "36.3.0\n", "etc/nv_tegra_release": orinR36Release, "sys/module/nvidia/version": "36.3.0\n"}, true, "L4T R36"},
		// Thor (R38) and Orin on JetPack 7.2 (R39): the OpenRM module is
		// the GPU's, and its branch is what the note must list.
		{"Thor L4T R38, OpenRM 580", map[string]string{"etc/nv_tegra_release": thorR38Release, "sys/module/nvidia/version": "580.00\n"}, true, "branch is one it supports"},
		{"Orin L4T R39, OpenRM 580", map[string]string{"etc/nv_tegra_release": orinR39Release, "proc/driver/nvidia/version": thorProc}, true, "branch is one it supports"},
		{"Orin L4T R39, OpenRM 575", map[string]string{"etc/nv_tegra_release": orinR39Release, "sys/module/nvidia/version": "575.64\n"}, false, "branch 575 is not among"},
		{"WSL2", map[string]string{"dev/dxg": ""}, false, "WSL2"},
		{"no kernel driver", nil, false, "no kernel module version known"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			host := filepath.Join(root, "tegra")
			fixtures.Must(t, os.MkdirAll(host, 0o755))
			fixtures.CC(t, "gcc", "-shared", "-fPIC", "-o", filepath.Join(host, "libcuda.so.1.1"), "-Wl,-soname,libcuda.so.1", "-x", "c", "/dev/null")
			fixtures.Must(t, os.Symlink("libcuda.so.1.1", filepath.Join(host, "libcuda.so.1")))
			fixtures.CompatLib(t, filepath.Join(root, "compat"), "1.1", note)
			for p, content := range tt.files {
				fixtures.Write(t, filepath.Join(root, p), content)
			}
			o := &Options{Root: root, Dirs: []string{"/tegra", "/compat"}}
			src, err := sourcesOf(o)
			fixtures.Must(t, err)
			cands, _ := scan(root, src, nil)
			sel, err := selectDriver(root, cands, o.target(), ModuleVersion(root), kernelFor(root, ModuleVersion(root)))
			fixtures.Must(t, err)
			var cuda []string
			for _, f := range sel.Files {
				if f.Base == "libcuda.so.1.1" {
					cuda = append(cuda, f.Real)
				}
			}
			want := "/tegra/libcuda.so.1.1"
			if tt.want {
				want = "/compat/libcuda.so.1.1"
			}
			if len(cuda) != 1 || cuda[0] != want {
				t.Errorf("libcuda chosen %v, want only %s (reason %q, skipped %v)", cuda, want, sel.Reason, sel.Skipped)
			}
			why := sel.Reason
			for _, s := range sel.Skipped {
				why += "\n" + s.Reason
			}
			if !strings.Contains(why, tt.because) {
				t.Errorf("the reasons do not say %q:\n%s", tt.because, why)
			}
			// The doctor's verdict is the launch's: one rule.
			n, err := ReadCompatNote(filepath.Join(root, "compat", "libcuda.so.1.1"))
			fixtures.Must(t, err)
			if ok, _ := CompatUsable(ReadKernel(root), n, ""); ok != tt.want {
				t.Errorf("CompatUsable = %t, the launch chose %t", ok, tt.want)
			}
		})
	}
}

// TestNoDriverIndex: a launch that finds no driver remembers it in an index
// under the same watches, so the next one answers without scanning (the
// 32-bit companion looks on every launch, and most hosts have none); a
// driver that appears in a directory looked at ends it.
func TestNoDriverIndex(t *testing.T) {
	root := t.TempDir()
	fixtures.Must(t, os.MkdirAll(filepath.Join(root, "drv"), 0o755))
	cache := t.TempDir()
	var log strings.Builder
	o := &Options{Root: root, Dirs: []string{"/drv"}, Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for i := range 2 {
		log.Reset()
		_, err := Prepare(o, cache)
		var nd *NoDriverError
		if !errors.As(err, &nd) {
			t.Fatalf("launch %d: Prepare = %v, want a NoDriverError", i, err)
		}
		if got := strings.Contains(log.String(), "no driver (index)"); got != (i == 1) {
			t.Errorf("launch %d answered from the index: %t\n%s", i, got, log.String())
		}
	}
	fixtures.FakeDriver(t, filepath.Join(root, "drv"), "535.261.03", "amd64")
	p, err := Prepare(o, cache)
	if err != nil || p == nil {
		t.Fatalf("after the driver appeared: Prepare = %v, %v", p, err)
	}
}

// TestTakeVendors: Mesa's files are taken when the host has no NVIDIA
// driver, or with Mesa set; beside an NVIDIA driver they are left out,
// with one reason per directory.
func TestTakeVendors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		nvidia   bool
		mesa     bool
		wantMesa bool
	}{
		{"Mesa alone", false, false, true},
		{"beside NVIDIA", true, false, false},
		{"beside NVIDIA, Mesa asked for", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			lib := filepath.Join(root, "lib")
			fixtures.Must(t, os.MkdirAll(filepath.Join(lib, "dri"), 0o755))
			fixtures.FakeStub(t, lib, "libEGL_mesa.so.0", "amd64")
			fixtures.FakeStub(t, filepath.Join(lib, "dri"), "swrast_dri.so", "amd64")
			if tc.nvidia {
				fixtures.FakeDriver(t, lib, "535.261.03", "amd64")
			}
			o := &Options{Root: root, Dirs: []string{"/lib"}, Mesa: tc.mesa}
			pl, err := Resolve(o)
			fixtures.Must(t, err)
			var got []string
			for _, f := range pl.Selection.Files {
				if f.CatalogEntry().Mesa {
					got = append(got, f.Base)
				}
			}
			if want := []string{"libEGL_mesa.so.0", "swrast_dri.so"}; tc.wantMesa != (len(got) == 2) || (tc.wantMesa && !slices.Equal(got, want)) {
				t.Errorf("Mesa files chosen %v, want them: %t", got, tc.wantMesa)
			}
			left := 0
			for _, s := range pl.Selection.Skipped {
				if s.Code == SkipMesaNotTaken {
					left++
				}
			}
			if want := map[bool]int{true: 0, false: 2}[tc.wantMesa]; left != want {
				t.Errorf("%d reasons given for leaving Mesa out, want %d (one per directory): %v", left, want, pl.Selection.Skipped)
			}
		})
	}
}

// TestMesaLeftOutUnwatched: beside an NVIDIA driver, the Mesa files left
// out are not watched by the index (a hot launch stats none of them), and
// the entry stays hot when one of them changes in place (their directory
// stays watched).
func TestMesaLeftOutUnwatched(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, "lib")
	fixtures.Must(t, os.MkdirAll(filepath.Join(lib, "dri"), 0o755))
	fixtures.FakeDriver(t, lib, "535.261.03", "amd64")
	for _, n := range []string{"swrast_dri.so", "iris_dri.so"} {
		fixtures.FakeStub(t, filepath.Join(lib, "dri"), n, "amd64")
	}
	o := &Options{Root: root, Dirs: []string{"/lib"}}
	cache := t.TempDir()
	p, err := Prepare(o, cache)
	fixtures.Must(t, err)
	idx := readIndex(filepath.Join(cache, inputsName(o)))
	if idx == nil {
		t.Fatal("no index")
	}
	for _, w := range idx.Watches {
		if strings.HasSuffix(w.Path, "_dri.so") {
			t.Errorf("the index watches %s, a Mesa file the plan left out", w.Path)
		}
	}
	// Changed in place: still hot.
	fixtures.Must(t, os.WriteFile(filepath.Join(lib, "dri", "iris_dri.so"), []byte("changed"), 0o644))
	if p2, err := Prepare(o, cache); err != nil || !p2.Hot || p2.Dir != p.Dir {
		t.Errorf("after a left-out file changed: %+v, %v; want the same entry, hot", p2, err)
	}
}

// TestSeenAtKeysEntry: self-contained entries seen at two places are two
// entries (their vendor files name different paths); the wrapper's entry
// ignores SeenAt.
func TestSeenAtKeysEntry(t *testing.T) {
	root := t.TempDir()
	fixtures.FakeDriver(t, filepath.Join(root, "drv"), "535.261.03", "amd64")
	cache := t.TempDir()
	dir := func(selfContained bool, seenAt string) string {
		p, err := Prepare(&Options{Root: root, Dirs: []string{"/drv"}, SelfContained: selfContained, SeenAt: seenAt}, cache)
		fixtures.Must(t, err)
		return p.Dir
	}
	if a, b := dir(true, "/run/opengl-driver"), dir(true, "/srv/run/opengl-driver"); a == b {
		t.Errorf("self-contained entries seen at two places share %s", a)
	}
	if a, b := dir(false, "/run/opengl-driver"), dir(false, ""); a != b {
		t.Errorf("the wrapper's entry depends on SeenAt: %s, %s", a, b)
	}
}

// kernelFor is the kernel driver a test's selection is judged against: the
// NVIDIA module of version module, or what the root says when that is "".
func kernelFor(root, module string) Kernel {
	if module != "" {
		return Kernel{Kind: KernelNVIDIA, Version: module}
	}
	return ReadKernel(root)
}
