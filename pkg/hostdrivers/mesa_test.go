package hostdrivers

import (
	"bytes"
	"debug/elf"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/google/go-cmp/cmp"
	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/elfscan"
)

// debianMesa returns the path of one of Debian's Mesa files on this
// machine, making the test unavailable without it.
func debianMesa(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("/usr/lib/x86_64-linux-gnu", name)
	if _, err := os.Stat(p); err != nil {
		fixtures.Unavailable(t, "Debian's Mesa is not installed here (packages libegl-mesa0, libgl1-mesa-dri): %v", err)
	}
	return p
}

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	fixtures.Must(t, err)
	fixtures.Must(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	fixtures.Must(t, os.WriteFile(dst, b, 0o755))
}

// TestDRIRewriteNeeded: Debian's libEGL_mesa has its DRI directory
// compiled in. Where the host's DRI drivers are in that directory the
// copy's path is rewritten to $ORIGIN; where they are elsewhere (a Mesa
// built for another prefix, or moved) the rewrite matches nothing, and the
// build fails naming the file instead of leaving the copy looking in the
// host's directory.
func TestDRIRewriteNeeded(t *testing.T) {
	egl := debianMesa(t, "libEGL_mesa.so.0")
	for _, tc := range []struct {
		name, dir string
		wantErr   bool
	}{
		{"the compiled-in directory", "/usr/lib/x86_64-linux-gnu", false},
		{"another directory", "/opt/mesa/lib", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			lib := filepath.Join(root, tc.dir)
			copyFile(t, egl, filepath.Join(lib, "libEGL_mesa.so.0"))
			fixtures.Must(t, os.MkdirAll(filepath.Join(lib, "dri"), 0o755))
			fixtures.FakeStub(t, filepath.Join(lib, "dri"), "swrast_dri.so", "amd64")
			// A dependency of libEGL_mesa on the host, so that its copy is
			// patched (and the rewrite needed).
			fixtures.Must(t, os.MkdirAll(filepath.Join(root, "usr/lib/x86_64-linux-gnu"), 0o755))
			fixtures.FakeStub(t, filepath.Join(root, "usr/lib/x86_64-linux-gnu"), "libexpat.so.1", "amd64")
			o := &Options{Root: root, Dirs: []string{tc.dir}, Mesa: true}
			p, err := Prepare(o, t.TempDir())
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), filepath.Join(tc.dir, "libEGL_mesa.so.0")) {
					t.Fatalf("Prepare = %v; want an error naming libEGL_mesa", err)
				}
				return
			}
			fixtures.Must(t, err)
			b, err := os.ReadFile(filepath.Join(p.Dir, "lib", "libEGL_mesa.so.0"))
			fixtures.Must(t, err)
			if bytes.Contains(b, []byte("/usr/lib/x86_64-linux-gnu/dri")) || !bytes.Contains(b, []byte("\x00$ORIGIN\x00")) {
				t.Errorf("the copy's DRI search path was not rewritten to $ORIGIN")
			}
		})
	}
}

// TestMarkChained: which files of an entry stay copies once the DT_RPATH
// chain is counted. Mesa's plug-ins become shims and the generic
// libraries under them links; a library with a DT_RUNPATH of its own
// (Debian's libLLVM) is linked only where shims alone reach it, which
// then preload what it loads (less what the plug-in loads itself, which is
// loaded first anyway). A copy stays a copy where a loader that is not a
// root (NVIDIA's DT_RUNPATH copy in a wrapper entry), an NVIDIA copy (whose
// dlopens are its own) or a dlopen the catalogue knows of (Dlopens,
// Optional) reaches it, and for libgbm (its DRI path is rewritten); MIPS gets no shim but a
// copy with a DT_RPATH, which serves the chain as well.
func TestMarkChained(t *testing.T) {
	x86 := elfscan.Ident{Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Machine: elf.EM_X86_64, Type: elf.ET_DYN}
	type lib struct {
		name    string
		needed  []string
		runpath bool
	}
	dri := catalog.Entry{Name: "swrast_dri", API: catalog.APIDRI, Mesa: true}
	icd := catalog.Entry{Name: "libvulkan_lvp", API: catalog.APIVulkan, Mesa: true}
	glx := catalog.Entry{Name: "libGLX_mesa", API: catalog.APIGLX, Mesa: true, DRILoader: true}
	nvglx := catalog.Entry{Name: "libGLX_nvidia", API: catalog.APIGLX, Dlopens: []string{"libxcb.so.1"}}
	nvcore := catalog.Entry{Name: "libnvidia-glcore", API: catalog.APICore, Optional: []string{"libz3.so.4"}}
	llvm := lib{"libLLVM.so.1", []string{"libz3.so.4", "libstdc++.so.6", "libc.so.6"}, true}
	z3 := lib{"libz3.so.4", []string{"libstdc++.so.6"}, false}
	stdcxx := lib{"libstdc++.so.6", []string{"libc.so.6"}, false}
	x11 := lib{"libX11.so.6", []string{"libxcb.so.1"}, false}
	xcb := lib{"libxcb.so.1", []string{"libXau.so.6"}, false}
	xau := lib{"libXau.so.6", nil, false}
	gbm := lib{"libgbm.so.1", []string{"libstdc++.so.6"}, false}
	type file struct {
		base    string
		entry   catalog.Entry
		needed  []string
		runpath bool
		machine elf.Machine
	}
	for _, tc := range []struct {
		name          string
		selfContained bool
		files         []file
		deps          []lib
		want          map[string]Mode
		preload       map[string][]string
	}{
		{
			name:    "a DRI driver: shim, its libraries linked, libLLVM's needs preloaded",
			files:   []file{{base: "swrast_dri.so", entry: dri, needed: []string{"libLLVM.so.1", "libstdc++.so.6"}}},
			deps:    []lib{llvm, z3, stdcxx},
			want:    map[string]Mode{"swrast_dri.so": ModeShim, "libLLVM.so.1": ModeLink, "libz3.so.4": ModeLink, "libstdc++.so.6": ModeLink},
			preload: map[string][]string{"swrast_dri.so": {"libz3.so.4"}},
		},
		{
			name: "libLLVM also under a DRI loader's copy: copied",
			files: []file{
				{base: "swrast_dri.so", entry: dri, needed: []string{"libLLVM.so.1"}},
				{base: "libGLX_mesa.so.0", entry: glx, needed: []string{"libLLVM.so.1", "libX11.so.6"}},
			},
			deps: []lib{llvm, z3, stdcxx, x11, xcb, xau},
			want: map[string]Mode{"swrast_dri.so": ModeShim, "libGLX_mesa.so.0": ModePatched, "libLLVM.so.1": ModePatched,
				"libz3.so.4": ModeLink, "libstdc++.so.6": ModeLink, "libX11.so.6": ModeLink, "libxcb.so.1": ModeLink, "libXau.so.6": ModeLink},
		},
		{
			name:  "a plug-in with a DT_RUNPATH of its own: its needs preloaded",
			files: []file{{base: "libvulkan_lvp.so", entry: icd, needed: []string{"libX11.so.6", "libstdc++.so.6"}, runpath: true}},
			deps:  []lib{x11, xcb, xau, stdcxx},
			want: map[string]Mode{"libvulkan_lvp.so": ModeShim, "libX11.so.6": ModeLink, "libxcb.so.1": ModeLink,
				"libXau.so.6": ModeLink, "libstdc++.so.6": ModeLink},
			preload: map[string][]string{"libvulkan_lvp.so": {"libX11.so.6", "libstdc++.so.6"}},
		},
		{
			name: "NVIDIA's wrapper copy (DT_RUNPATH) and its dlopen: copies stay",
			files: []file{
				{base: "libGLX_nvidia.so.0", entry: nvglx, needed: []string{"libX11.so.6"}},
			},
			deps: []lib{x11, xcb, xau},
			want: map[string]Mode{"libGLX_nvidia.so.0": ModePatched, "libX11.so.6": ModePatched, "libxcb.so.1": ModePatched, "libXau.so.6": ModeLink},
		},
		{
			name:          "NVIDIA's self-contained copy (DT_RPATH): copies stay",
			selfContained: true,
			files: []file{
				{base: "libGLX_nvidia.so.0", entry: nvglx, needed: []string{"libX11.so.6"}},
			},
			deps: []lib{x11, xcb, xau},
			want: map[string]Mode{"libGLX_nvidia.so.0": ModePatched, "libX11.so.6": ModePatched, "libxcb.so.1": ModePatched, "libXau.so.6": ModeLink},
		},
		{
			name:          "beside NVIDIA: what NVIDIA's copy reaches, or its core may dlopen, stays a copy",
			selfContained: true,
			files: []file{
				{base: "swrast_dri.so", entry: dri, needed: []string{"libX11.so.6", "libLLVM.so.1"}},
				{base: "libGLX_nvidia.so.0", entry: nvglx, needed: []string{"libX11.so.6"}},
				{base: "libnvidia-glcore.so.1", entry: nvcore},
			},
			deps: []lib{x11, xcb, xau, llvm, z3, stdcxx},
			want: map[string]Mode{"swrast_dri.so": ModeShim, "libGLX_nvidia.so.0": ModePatched, "libnvidia-glcore.so.1": ModeLink,
				"libX11.so.6": ModePatched, "libxcb.so.1": ModePatched, "libXau.so.6": ModeLink,
				"libLLVM.so.1": ModeLink, "libz3.so.4": ModePatched, "libstdc++.so.6": ModeLink},
			preload: map[string][]string{"swrast_dri.so": {"libz3.so.4", "libstdc++.so.6"}},
		},
		{
			name:  "libgbm beside DRI drivers: copied for its DRI path",
			files: []file{{base: "libGLX_mesa.so.0", entry: glx, needed: []string{"libgbm.so.1"}}, {base: "swrast_dri.so", entry: dri, needed: []string{"libstdc++.so.6"}}},
			deps:  []lib{gbm, stdcxx},
			want:  map[string]Mode{"libGLX_mesa.so.0": ModePatched, "swrast_dri.so": ModeShim, "libgbm.so.1": ModePatched, "libstdc++.so.6": ModeLink},
		},
		{
			name:  "MIPS: no shim, a copy with a DT_RPATH",
			files: []file{{base: "swrast_dri.so", entry: dri, needed: []string{"libX11.so.6"}, machine: elf.EM_MIPS}},
			deps:  []lib{x11, xcb, xau},
			want:  map[string]Mode{"swrast_dri.so": ModePatched, "libX11.so.6": ModeLink, "libxcb.so.1": ModeLink, "libXau.so.6": ModeLink},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel := &Selection{}
			for _, f := range tc.files {
				id := x86
				if f.machine != 0 {
					id.Machine = f.machine
				}
				sel.Files = append(sel.Files, &DriverFile{Base: f.base, Real: "/usr/lib/" + f.base, API: f.entry.API, Mode: ModeLink, entry: f.entry,
					info: &elfscan.Info{Ident: id, Needed: f.needed, HasRunpath: f.runpath}})
			}
			cl := &Closure{}
			for _, d := range tc.deps {
				cl.Deps = append(cl.Deps, &Dep{Name: d.name, Real: "/usr/lib/" + d.name, Mode: ModeLink,
					info: &elfscan.Info{Ident: x86, Needed: d.needed, HasRunpath: d.runpath}})
			}
			// Today's rule first: a copy for what loads a dependency.
			dep := map[string]bool{}
			for _, d := range cl.Deps {
				dep[d.Name] = true
			}
			for _, f := range sel.Files {
				if slices.ContainsFunc(loads(f.info, f.entry), func(n string) bool { return dep[n] }) {
					f.Mode = ModePatched
				}
			}
			for _, d := range cl.Deps {
				if slices.ContainsFunc(d.info.Needed, func(n string) bool { return dep[n] }) {
					d.Mode = ModePatched
				}
			}
			markChained(sel, cl, tc.selfContained, slog.New(slog.DiscardHandler))
			got := map[string]Mode{}
			preload := map[string][]string{}
			for _, f := range sel.Files {
				got[f.Base] = f.Mode
				if len(f.Preload) > 0 {
					preload[f.Base] = f.Preload
				}
			}
			for _, d := range cl.Deps {
				got[d.Name] = d.Mode
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("modes (-want +got):\n%s", d)
			}
			if tc.preload == nil {
				tc.preload = map[string][]string{}
			}
			if d := cmp.Diff(tc.preload, preload); d != "" {
				t.Errorf("preloads (-want +got):\n%s", d)
			}
		})
	}
}
