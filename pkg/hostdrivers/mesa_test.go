package hostdrivers

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
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
