package hostdrivers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// sharedHost is a fake root with a 535 driver in /drv and the Options that
// name it.
func sharedHost(t *testing.T) *Options {
	t.Helper()
	root := t.TempDir()
	fixtures.FakeDriver(t, filepath.Join(root, "drv"), "535.261.03", "amd64")
	return &Options{Root: root, Dirs: []string{"/drv"}}
}

// plant builds o's entry in a scratch cache and moves it, with its index,
// into dir: what an attacker who computed the key with their own launch
// would leave there.
func plant(t *testing.T, o *Options, dir string) string {
	t.Helper()
	scratch := t.TempDir()
	p, err := Prepare(o, scratch)
	if err != nil || p == nil {
		t.Fatalf("Prepare in scratch: %v, %v", p, err)
	}
	fixtures.Must(t, os.MkdirAll(dir, 0o700))
	ents, err := os.ReadDir(scratch)
	fixtures.Must(t, err)
	for _, e := range ents {
		if e.Name() == filepath.Base(p.Dir) || strings.HasPrefix(e.Name(), ".index-") {
			fixtures.Must(t, os.Rename(filepath.Join(scratch, e.Name()), filepath.Join(dir, e.Name())))
		}
	}
	return filepath.Join(dir, filepath.Base(p.Dir))
}

// TestFallbackOnlyWhenNeeded: with a usable cache root, a fallback (the
// per-user /tmp directory another user can race for) is never read, even
// when it holds the very entry the launch wants. Before, every cold
// launch looked there first.
func TestFallbackOnlyWhenNeeded(t *testing.T) {
	o := sharedHost(t)
	primary := filepath.Join(t.TempDir(), "home-cache")
	fallback := filepath.Join(t.TempDir(), "tmp-fallback")
	planted := plant(t, o, fallback)
	for _, run := range []string{"cold", "hot"} {
		p, err := Prepare(o, primary, fallback)
		if err != nil || p == nil {
			t.Fatalf("%s: Prepare = %v, %v", run, p, err)
		}
		if filepath.Dir(p.Dir) != primary || p.Dir == planted {
			t.Errorf("%s: entry %s, want one built in %s", run, p.Dir, primary)
		}
	}
}

// TestFallbackWhenPrimaryUnwritable: the fallback is used when the root
// before it cannot be made (here its parent is a file; a read-only home
// is the same case, but root writes into a mode-0555 directory anyway).
func TestFallbackWhenPrimaryUnwritable(t *testing.T) {
	o := sharedHost(t)
	notDir := filepath.Join(t.TempDir(), "file")
	fixtures.Must(t, os.WriteFile(notDir, nil, 0o644))
	fallback := filepath.Join(t.TempDir(), "fallback")
	p, err := Prepare(o, filepath.Join(notDir, "cache"), fallback)
	if err != nil || p == nil || filepath.Dir(p.Dir) != fallback {
		t.Fatalf("Prepare = %+v, %v; want an entry in %s", p, err, fallback)
	}
}

// TestEntryMustBeOwn: an entry that is a symbolic link, or that others can
// write, is not used, on the hot path or the cold one. Ours made writable
// is rebuilt; a link is not ours, so it is left alone and the launch says
// what is in the way.
func TestEntryMustBeOwn(t *testing.T) {
	tests := []struct {
		name    string
		spoil   func(t *testing.T, entry string)
		refused bool
	}{
		{"symbolic link", func(t *testing.T, entry string) {
			elsewhere := filepath.Join(t.TempDir(), "elsewhere")
			fixtures.Must(t, os.Rename(entry, elsewhere))
			fixtures.Must(t, os.Symlink(elsewhere, entry))
		}, true},
		{"mode 0777", func(t *testing.T, entry string) {
			fixtures.Must(t, os.Chmod(entry, 0o777))
		}, false},
	}
	for _, tt := range tests {
		for _, path := range []string{"hot", "cold"} {
			t.Run(tt.name+"/"+path, func(t *testing.T) {
				o := sharedHost(t)
				cache := t.TempDir()
				p, err := Prepare(o, cache)
				if err != nil || p == nil {
					t.Fatalf("Prepare = %v, %v", p, err)
				}
				if path == "cold" {
					idx, _ := filepath.Glob(filepath.Join(cache, ".index-*"))
					for _, f := range idx {
						fixtures.Must(t, os.Remove(f))
					}
				}
				tt.spoil(t, p.Dir)
				again, err := Prepare(o, cache)
				if tt.refused {
					target, lerr := os.Readlink(p.Dir)
					if err == nil || !strings.Contains(err.Error(), p.Dir) || lerr != nil || target == "" {
						t.Fatalf("second Prepare = %v, %v (link %q, %v); want a refusal naming %s, the link left", again, err, target, lerr, p.Dir)
					}
					return
				}
				if err != nil || again == nil {
					t.Fatalf("second Prepare = %v, %v", again, err)
				}
				fi, err := os.Lstat(again.Dir)
				if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
					t.Errorf("second launch used %s (%v, %v): a spoiled entry", again.Dir, fi.Mode(), err)
				}
			})
		}
	}
}

// TestAncestorsChecked: a cache root below a directory others can write
// (not sticky) is refused with a warning naming it; the next root is used.
func TestAncestorsChecked(t *testing.T) {
	o := sharedHost(t)
	open := filepath.Join(t.TempDir(), "open")
	fixtures.Must(t, os.Mkdir(open, 0o777))
	fixtures.Must(t, os.Chmod(open, 0o777))
	fallback := filepath.Join(t.TempDir(), "fallback")
	p, err := Prepare(o, filepath.Join(open, "cache"), fallback)
	if err != nil || p == nil {
		t.Fatalf("Prepare = %v, %v", p, err)
	}
	if filepath.Dir(p.Dir) != fallback {
		t.Errorf("entry %s, want it in %s", p.Dir, fallback)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], open) || !strings.Contains(p.Warnings[0], "writable by others") {
		t.Errorf("warnings %q, want one naming %s", p.Warnings, open)
	}
	// A sticky one (as /tmp) is fine.
	sticky := filepath.Join(t.TempDir(), "sticky")
	fixtures.Must(t, os.Mkdir(sticky, 0o777))
	fixtures.Must(t, os.Chmod(sticky, 0o777|os.ModeSticky))
	p, err = Prepare(o, filepath.Join(sticky, "cache"))
	if err != nil || p == nil || len(p.Warnings) != 0 {
		t.Errorf("under a sticky directory: %+v, %v", p, err)
	}
}

func TestCheckAncestors(t *testing.T) {
	base := t.TempDir()
	link := filepath.Join(base, "link")
	open := filepath.Join(base, "open")
	fixtures.Must(t, os.Mkdir(open, 0o755))
	fixtures.Must(t, os.Chmod(open, 0o757))
	fixtures.Must(t, os.Symlink(open, link))
	tests := []struct {
		dir, wantErr string
	}{
		{filepath.Join(base, "a", "b", "cache"), ""},
		{filepath.Join(open, "cache"), open},
		{filepath.Join(link, "cache"), open},
		{filepath.Join(link, "deeper", "cache"), open},
		{"relative/cache", "not an absolute path"},
	}
	for _, tt := range tests {
		err := CheckAncestors(tt.dir)
		if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("CheckAncestors(%s) = %v, want an error naming %q", tt.dir, err, tt.wantErr)
		}
	}
}

// TestIndexMustBeOwn: an index that others can write is not read (it names
// the entry a hot launch uses): the launch scans and builds instead.
func TestIndexMustBeOwn(t *testing.T) {
	o := sharedHost(t)
	cache := t.TempDir()
	p, err := Prepare(o, cache)
	if err != nil || p == nil || p.Hot {
		t.Fatalf("first Prepare = %+v, %v", p, err)
	}
	idx, err := filepath.Glob(filepath.Join(cache, ".index-*"))
	if err != nil || len(idx) != 1 {
		t.Fatalf("index files %v, %v", idx, err)
	}
	if r := readIndex(idx[0]); r == nil {
		t.Fatal("the launch's own index is not read")
	}
	fixtures.Must(t, os.Chmod(idx[0], 0o666))
	if r := readIndex(idx[0]); r != nil {
		t.Errorf("a mode-0666 index was read")
	}
}
