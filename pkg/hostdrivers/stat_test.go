package hostdrivers

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestSessionStat: a watch stat'ed through a directory handle sees what
// os.Stat and os.Lstat see (identity, absence, error) for every kind of
// path, shared directory or not.
func TestSessionStat(t *testing.T) {
	dir := t.TempDir()
	mk := func(rel, body string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := mk("d/lib.so", "x")
	mk("d/other.so", "yy")
	link := filepath.Join(dir, "d", "link.so")
	if err := os.Symlink("lib.so", link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "d", "dangling.so")
	if err := os.Symlink("nowhere.so", dangling); err != nil {
		t.Fatal(err)
	}
	dirLink := filepath.Join(dir, "dl")
	if err := os.Symlink("d", dirLink); err != nil {
		t.Fatal(err)
	}
	paths := []string{
		file, link, dangling, filepath.Join(dirLink, "lib.so"), filepath.Join(dir, "d"),
		filepath.Join(dir, "d", "missing.so"), filepath.Join(dir, "nodir", "x.so"),
		filepath.Join(file, "x.so"), // a file used as a directory: ENOTDIR
		"/",
	}
	want := func(p string, noFollow bool) statResult {
		stat := os.Stat
		if noFollow {
			stat = os.Lstat
		}
		fi, err := stat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return statResult{absent: true}
		case err != nil:
			return statResult{err: true}
		}
		return statResult{id: fileID(fi)}
	}
	for _, noFollow := range []bool{false, true} {
		for _, shared := range []bool{false, true} {
			var s Session
			var dirs dirHandles
			for _, p := range paths {
				if got, w := s.stat(p, noFollow, &dirs, shared), want(p, noFollow); got != w {
					t.Errorf("stat(%s, noFollow %v, shared %v) = %+v, want %+v", p, noFollow, shared, got, w)
				}
			}
			dirs.close()
		}
	}
}
