package hostdrivers

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/google/go-cmp/cmp"
	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/elfscan"
)

// TestSelfContainedCopies: a self-contained entry of the real 535 driver
// copies only the libraries that load something and can be loaded other
// than through another driver file's DT_NEEDED; the rest (the leaves, and
// libnvidia-glcore, -glsi, -tls, which only libGLX_nvidia and
// libEGL_nvidia's DT_NEEDED load) are symlinks to the host. Every copy
// carries the DT_RPATH those symlinks inherit, never a DT_RUNPATH. The
// entry's copied bytes are logged against the driver's.
func TestSelfContainedCopies(t *testing.T) {
	root := fixtures.DebianRoot(t, "amd64")
	cache := t.TempDir()
	p, err := Prepare(&Options{Root: root, SelfContained: true, SeenAt: "/run/opengl-driver"}, cache)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var copies, links []string
	var copied, driver int64
	for _, f := range m.Files {
		fi, err := os.Stat(filepath.Join(root, f.Real))
		if err != nil {
			t.Fatal(err)
		}
		driver += fi.Size()
		fam := familyOf(f.Base)
		dst := filepath.Join(p.Dir, "lib", f.Base)
		switch f.Mode {
		case ModePatched:
			copies = append(copies, fam)
			copied += fi.Size()
			info, err := elfscan.Read(dst)
			if err != nil {
				t.Fatal(err)
			}
			if !info.HasRpath || info.Rpath != driverRunpath || info.HasRunpath {
				t.Errorf("%s: rpath %q (%v), runpath %q (%v); want only the DT_RPATH %q", dst, info.Rpath, info.HasRpath, info.Runpath, info.HasRunpath, driverRunpath)
			}
		case ModeLink:
			links = append(links, fam)
			if target, err := os.Readlink(dst); err != nil || target != filepath.Join(root, f.Real) {
				t.Errorf("%s: link to %q (%v), want the host file", dst, target, err)
			}
		}
	}
	sort.Strings(copies)
	sort.Strings(links)
	// Leaves and DT_NEEDED-only internals; everything else loads
	// something and is an entry point or dlopened.
	wantLinks := []string{"libnvidia-api", "libnvidia-glcore", "libnvidia-glsi", "libnvidia-glvkspirv", "libnvidia-nvvm", "libnvidia-ptxjitcompiler", "libnvidia-tls"}
	if d := cmp.Diff(wantLinks, links); d != "" {
		t.Errorf("symlinked driver files (-want +got):\n%s\ncopies: %q", d, copies)
	}
	for _, must := range []string{"libcuda", "libGLX_nvidia", "libEGL_nvidia", "libnvidia-eglcore", "libnvidia-rtcore", "libnvoptix", "libnvidia-opencl"} {
		if !slices.Contains(copies, must) {
			t.Errorf("%s is not a patched copy (it loads other libraries and is loaded by dlopen or by programs)", must)
		}
	}
	t.Logf("self-contained 535 entry: %d copies, %.1f MB of %.1f MB driver bytes (%.0f%%); %d links",
		len(copies), float64(copied)/1e6, float64(driver)/1e6, 100*float64(copied)/float64(driver), len(links))
}

func familyOf(base string) string {
	if e, ok := catalog.Classify(base); ok {
		return e.Name
	}
	return base
}

// TestMentions: the one-pass scan finds exactly the names a naive search
// finds, whatever the read size (names straddling reads included).
func TestMentions(t *testing.T) {
	names := []string{"libcuda", "libnvidia-ptxjitcompiler", "libnvidia-ml", "libGLX_nvidia"}
	tests := []struct {
		data string
		want []string
	}{
		{"", nil},
		{"libcuda", nil},
		{"libcuda.s", nil},
		{"xx\x00libcuda.so.1\x00", []string{"libcuda"}},
		{"libnvidia-ptxjitcompiler.so.1libGLX_nvidia.so", []string{"libGLX_nvidia", "libnvidia-ptxjitcompiler"}},
		{".so.so.solibcuda.so", []string{"libcuda"}},
		{"libnvidia-ml.so" + strings.Repeat("z", 100) + "libcuda.so", []string{"libcuda", "libnvidia-ml"}},
		{"libcudadebugger.so", nil},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 2, 3, 5, 7, 16, 1 << 20} {
			got, err := mentions(strings.NewReader(tt.data), names, chunk)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("mentions(%q, chunk %d) (-want +got):\n%s", tt.data, chunk, d)
			}
		}
	}
}

// FuzzMentions checks the scan against bytes.Contains on every input and
// read size.
func FuzzMentions(f *testing.F) {
	f.Add([]byte("\x00libcuda.so.1\x00libnvidia-ml.so"), uint8(3))
	f.Add([]byte("libGLX_nvidia.so.0"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		names := []string{"libcuda", "libnvidia-ml", "libGLX_nvidia", "a", "ab"}
		got, err := mentions(bytes.NewReader(data), names, int(chunk)+1)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, n := range names {
			if bytes.Contains(data, []byte(n+".so")) {
				want = append(want, n)
			}
		}
		sort.Strings(want)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("mentions(%q, %d) (-naive +got):\n%s", data, int(chunk)+1, d)
		}
	})
}
