package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestSandboxPathsChains: a symlink in the entry whose host target is
// itself a link (a soname link) gets every link of the chain and the
// resolved file; relative links inside the entry get nothing.
func TestSandboxPathsChains(t *testing.T) {
	host := t.TempDir()
	entry := filepath.Join(t.TempDir(), "entry")
	for _, d := range []string{"lib", "deps", "x/y"} {
		fixtures.Must(t, os.MkdirAll(filepath.Join(entry, d), 0o755))
	}
	fixtures.Must(t, os.MkdirAll(filepath.Join(host, "real"), 0o755))
	fixtures.Must(t, os.WriteFile(filepath.Join(host, "real/libfoo.so.1.2.3"), nil, 0o644))
	fixtures.Must(t, os.Symlink("libfoo.so.1.2.3", filepath.Join(host, "real/libfoo.so.1")))
	fixtures.Must(t, os.Symlink("real", filepath.Join(host, "lib")))
	fixtures.Must(t, os.Symlink(filepath.Join(host, "lib/libfoo.so.1"), filepath.Join(entry, "deps/libfoo.so.1")))
	fixtures.Must(t, os.Symlink("../deps/libfoo.so.1", filepath.Join(entry, "lib/libfoo.so.1")))
	got, err := Paths(host, entry)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/run/opengl-driver=" + entry,
		filepath.Join(host, "lib/libfoo.so.1"),
		filepath.Join(host, "lib/libfoo.so.1.2.3"),
		filepath.Join(host, "real/libfoo.so.1.2.3"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestSandboxPathsUncarriable: a path Nix would split wrongly is an error,
// not a wrong mount.
func TestSandboxPathsUncarriable(t *testing.T) {
	for _, tc := range []struct{ name, hostName, entryName string }{
		{"host path with =", "a=b", "entry"},
		{"host path with a newline", "a\nb", "entry"},
		{"entry with =", "host", "x=y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := filepath.Join(t.TempDir(), tc.hostName)
			entry := filepath.Join(t.TempDir(), tc.entryName)
			if err := os.MkdirAll(filepath.Join(entry, "deps"), 0o755); err != nil {
				t.Fatal(err)
			}
			fixtures.Must(t, os.MkdirAll(host, 0o755))
			fixtures.Must(t, os.WriteFile(filepath.Join(host, "libfoo.so.1"), nil, 0o644))
			fixtures.Must(t, os.Symlink(filepath.Join(host, "libfoo.so.1"), filepath.Join(entry, "deps/libfoo.so.1")))
			if got, err := Paths("/nonexistent-root", entry); err == nil || !strings.Contains(err.Error(), "cannot carry") {
				t.Errorf("Paths = %q, %v; want an error", got, err)
			}
		})
	}
}
