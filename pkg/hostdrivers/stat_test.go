package hostdrivers

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestSessionStat: a watch stat'ed through a directory handle sees what
// os.Stat and os.Lstat see (identity, absence, error) for every kind of
// path, shared directory or not.
func TestSessionStat(t *testing.T) {
	dir := t.TempDir()
	file := fixtures.Write(t, filepath.Join(dir, "d", "lib.so"), "x")
	fixtures.Write(t, filepath.Join(dir, "d", "other.so"), "yy")
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

// TestAbsentWatchesCollapse: a vendor directory looked for and missing is
// watched through its first missing component (while /etc/vulkan is
// absent, so is /etc/vulkan/icd.d), which several candidates share; a
// vendor file created deep under it later still makes a new entry.
func TestAbsentWatchesCollapse(t *testing.T) {
	root := t.TempDir()
	fixtures.FakeDriver(t, filepath.Join(root, "drv"), "535.261.03", "amd64")
	fixtures.Must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	cache := t.TempDir()
	o := &Options{Root: root, Dirs: []string{"/drv"}}
	p1, err := Prepare(o, cache)
	fixtures.Must(t, err)
	idx := readIndex(filepath.Join(cache, inputsName(o)))
	if idx == nil {
		t.Fatal("no index written")
	}
	var absent []string
	for _, w := range idx.Watches {
		if !w.Absent {
			continue
		}
		absent = append(absent, w.Path)
		if _, err := os.Stat(filepath.Dir(w.Path)); err != nil {
			t.Errorf("absent watch %s: its parent is missing too (%v): watch the parent", w.Path, err)
		}
	}
	if !slices.Contains(absent, filepath.Join(root, "etc", "vulkan")) {
		t.Errorf("absent watches %q: want %s/etc/vulkan for its icd.d and implicit_layer.d", absent, root)
	}
	if p, err := Prepare(o, cache); err != nil || !p.Hot || p.Dir != p1.Dir {
		t.Fatalf("second launch: %+v, %v; want the same entry, hot", p, err)
	}
	icd := filepath.Join(root, "etc", "vulkan", "icd.d", "nvidia_icd.json")
	fixtures.Write(t, icd, `{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3.242"}}`)
	p3, err := Prepare(o, cache)
	fixtures.Must(t, err)
	if p3.Hot || p3.Dir == p1.Dir {
		t.Fatalf("after %s appeared: %+v; want a new entry", icd, p3)
	}
	b, err := os.ReadFile(filepath.Join(p3.Dir, "share", "vulkan", "icd.d", "nvidia_icd.json"))
	if err != nil || !strings.Contains(string(b), "1.3.242") {
		t.Errorf("the new entry's ICD file: %q, %v; want the host's", b, err)
	}
}
