package ldpath

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

func TestResolveFrom(t *testing.T) {
	root := t.TempDir()
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ln := func(target, p string) {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	mk("usr/lib/x86_64-linux-gnu/nvidia/current")
	mk("etc/alternatives")
	fixtures.Must(t, os.WriteFile(filepath.Join(root, "usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.535.1"), nil, 0o644))
	ln("libcuda.so.535.1", "usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.1")
	ln("/etc/alternatives/libcuda.so.1", "usr/lib/x86_64-linux-gnu/libcuda.so.1")
	ln("/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.1", "etc/alternatives/libcuda.so.1")
	ln("../../../../etc/../../x", "usr/lib/x86_64-linux-gnu/escape")
	tests := []struct {
		name, dir, rel, want string
		links                []string
	}{
		{"plain file", "/usr/lib/x86_64-linux-gnu/nvidia/current", "libcuda.so.535.1", "/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.535.1", nil},
		{"relative link", "/usr/lib/x86_64-linux-gnu/nvidia/current", "libcuda.so.1", "/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.535.1",
			[]string{"/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.1"}},
		{"alternatives chain", "/usr/lib/x86_64-linux-gnu", "libcuda.so.1", "/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.535.1",
			[]string{"/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/etc/alternatives/libcuda.so.1", "/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.1"}},
		{"absolute rel ignores dir", "/etc", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.535.1",
			[]string{"/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/etc/alternatives/libcuda.so.1", "/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var links []string
			got, err := ResolveFrom(root, tt.dir, tt.rel, func(l string) { links = append(links, l) })
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ResolveFrom = %s, want %s", got, tt.want)
			}
			if diff := cmp.Diff(tt.links, links); diff != "" {
				t.Errorf("links visited (-want +got):\n%s", diff)
			}
			// The same answer as Resolve on the joined path.
			abs := tt.rel
			if !filepath.IsAbs(abs) {
				abs = filepath.Join(tt.dir, tt.rel)
			}
			if r, err := Resolve(root, abs); err != nil || r != got {
				t.Errorf("Resolve(%s) = %s, %v; ResolveFrom gave %s", abs, r, err, got)
			}
		})
	}
	if _, err := ResolveFrom(root, "/usr/lib/x86_64-linux-gnu", "escape", nil); err == nil {
		t.Error("a link climbing above the root to a missing file resolved")
	}
}

func TestDedupIndexed(t *testing.T) {
	root := t.TempDir()
	fixtures.Must(t, os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755))
	fixtures.Must(t, os.Symlink("usr/lib", filepath.Join(root, "lib")))
	kept, dropped := DedupIndexed(root, []string{"/missing", "/lib", "relative", "/usr/lib", "/usr"})
	want := []Kept{{Dir: "/usr/lib", Index: 1}, {Dir: "/usr", Index: 4}}
	if diff := cmp.Diff(want, kept); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	if len(dropped) != 3 || dropped[2].Reason != "same directory as /lib" {
		t.Errorf("dropped = %+v", dropped)
	}
}
