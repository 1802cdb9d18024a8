package sysentry

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

func TestOwnTarget(t *testing.T) {
	run, cache := t.TempDir(), t.TempDir()
	link := filepath.Join(run, "opengl-driver")
	tests := []struct {
		name    string
		setup   func(t *testing.T)
		want    string
		wantErr string
	}{
		{"missing", func(t *testing.T) {}, "", ""},
		{"ours", func(t *testing.T) { fixtures.Must(t, os.Symlink(filepath.Join(cache, "abc"), link)) }, filepath.Join(cache, "abc"), ""},
		{"NixOS's store path", func(t *testing.T) { fixtures.Must(t, os.Symlink("/nix/store/x-graphics-drivers", link)) }, "", "NixOS's own graphics drivers"},
		{"a hidden name in the cache", func(t *testing.T) { fixtures.Must(t, os.Symlink(filepath.Join(cache, ".tmp-x"), link)) }, "", "outside nixglhost's system cache"},
		{"a directory", func(t *testing.T) { fixtures.Must(t, os.Mkdir(link, 0o755)) }, "", "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fixtures.Must(t, os.RemoveAll(link))
			tt.setup(t)
			got, err := OwnTarget(link, cache)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("OwnTarget = %q, %v; want %q, an error saying %q", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSwapLink(t *testing.T) {
	run := t.TempDir()
	link := filepath.Join(run, "opengl-driver")
	for _, target := range []string{"/a", "/b"} {
		if err := SwapLink(link, target); err != nil {
			t.Fatal(err)
		}
		if got, err := os.Readlink(link); err != nil || got != target {
			t.Errorf("link -> %q, %v; want %s", got, err, target)
		}
	}
	ents, err := os.ReadDir(run)
	fixtures.Must(t, err)
	if len(ents) != 1 {
		t.Errorf("the run directory holds %d names, want only the link", len(ents))
	}
}

// TestPrune: only entries system mode linked before go, never the previous
// and current ones, nor anything it did not link, nor a name with a slash.
func TestPrune(t *testing.T) {
	cache := t.TempDir()
	for _, e := range []string{"old1", "old2", "prev", "cur", "hooks-own"} {
		fixtures.Must(t, os.Mkdir(filepath.Join(cache, e), 0o755))
	}
	fixtures.Must(t, os.WriteFile(filepath.Join(cache, HistoryBase), []byte("old1\nold2\n../escape\n.hidden\nprev\n"), 0o644))
	removed := Prune(cache, []string{"prev", "cur"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	want := []string{filepath.Join(cache, "old1"), filepath.Join(cache, "old2")}
	if d := cmp.Diff(want, removed); d != "" {
		t.Errorf("removed (-want +got):\n%s", d)
	}
	for _, e := range []string{"prev", "cur", "hooks-own"} {
		if _, err := os.Stat(filepath.Join(cache, e)); err != nil {
			t.Errorf("%s was removed: %v", e, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(cache, HistoryBase))
	if err != nil || string(b) != "prev\ncur\n" {
		t.Errorf("history %q, %v; want prev and cur", b, err)
	}
}

func TestShareTree(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "lib")
	fixtures.Must(t, os.Mkdir(sub, 0o700))
	f := filepath.Join(sub, "libx.so")
	fixtures.Must(t, os.WriteFile(f, nil, 0o600))
	fixtures.Must(t, os.Symlink("libx.so", filepath.Join(sub, "liby.so")))
	fixtures.Must(t, ShareTree(dir))
	for p, want := range map[string]os.FileMode{sub: 0o755, f: 0o644} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", p, fi.Mode().Perm(), err, want)
		}
	}
}

func TestIsEntryLib(t *testing.T) {
	root := t.TempDir()
	fixtures.Must(t, os.MkdirAll(filepath.Join(root, "e/lib"), 0o755))
	fixtures.Must(t, os.MkdirAll(filepath.Join(root, "plain/lib"), 0o755))
	fixtures.Must(t, os.WriteFile(filepath.Join(root, "e/manifest.json"), []byte("{}"), 0o644))
	if !IsEntryLib(root, "/e/lib") || IsEntryLib(root, "/plain/lib") || IsEntryLib(root, "/e") {
		t.Error("IsEntryLib does not tell an entry's lib/ from other directories")
	}
}
