package hostdrivers

import (
	"os"
	"path/filepath"
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
			src, err := Sources(o)
			if err != nil {
				t.Fatal(err)
			}
			cands, _ := Scan(root, src)
			sel, err := Select(root, cands, o.target(), tt.module)
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
