package sysentry

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// otherUID owns what the tests plant as another user's.
const otherUID = 64103

// key returns a name with an entry's shape, made of c.
func key(c byte) string { return strings.Repeat(string(c), 32) }

// makeEntry makes an entry of cache named name, as nixglhost leaves one: a
// manifest naming its key, a 0700 lib/ holding a 0600 file.
func makeEntry(t *testing.T, cache, name string) string {
	t.Helper()
	dir := filepath.Join(cache, name)
	fixtures.Write(t, filepath.Join(dir, "manifest.json"), `{"format":1,"key":"`+name+`"}`)
	fixtures.Must(t, os.MkdirAll(filepath.Join(dir, "lib"), 0o700))
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "lib", "libx.so"), []byte("x"), 0o600))
	fixtures.Must(t, os.Chmod(dir, 0o700))
	return dir
}

// needRoot makes a table row that gives files to another user need root.
func needRoot(t *testing.T, asRoot bool) {
	t.Helper()
	if asRoot && os.Geteuid() != 0 {
		fixtures.Unavailable(t, "giving files to another user needs root")
	}
}

// openCache holds dir open as system mode holds its cache.
func openCache(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.Open(dir)
	fixtures.Must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// discard is a logger that writes nowhere.
var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestOpenRunDir: a run directory others could use to replace the link is
// refused, naming the directory to fix; a sticky one is not.
func TestOpenRunDir(t *testing.T) {
	tests := []struct {
		name   string
		asRoot bool
		// setup returns the run directory and the path a refusal names
		// ("" when it is accepted).
		setup   func(t *testing.T, base string) (string, string)
		wantErr string
	}{
		{"0755", false, func(t *testing.T, base string) (string, string) {
			return fixtures.MkdirMode(t, filepath.Join(base, "run"), 0o755), ""
		}, ""},
		{"1777", false, func(t *testing.T, base string) (string, string) {
			return fixtures.MkdirMode(t, filepath.Join(base, "run"), 0o777|os.ModeSticky), ""
		}, ""},
		{"0777", false, func(t *testing.T, base string) (string, string) {
			d := fixtures.MkdirMode(t, filepath.Join(base, "run"), 0o777)
			return d, d
		}, "is writable by others (mode 0777) and not sticky"},
		{"0770", false, func(t *testing.T, base string) (string, string) {
			d := fixtures.MkdirMode(t, filepath.Join(base, "run"), 0o770)
			return d, d
		}, "is writable by others (mode 0770) and not sticky"},
		{"a link", false, func(t *testing.T, base string) (string, string) {
			real := fixtures.MkdirMode(t, filepath.Join(base, "real"), 0o755)
			l := filepath.Join(base, "run")
			fixtures.Must(t, os.Symlink(real, l))
			return l, l
		}, "is a symbolic link"},
		{"missing", false, func(t *testing.T, base string) (string, string) {
			return filepath.Join(base, "run"), filepath.Join(base, "run")
		}, "no such file"},
		{"below a 0777 parent", false, func(t *testing.T, base string) (string, string) {
			p := fixtures.MkdirMode(t, filepath.Join(base, "open"), 0o777)
			return fixtures.MkdirMode(t, filepath.Join(p, "run"), 0o755), p
		}, "writable by others"},
		{"another user's", true, func(t *testing.T, base string) (string, string) {
			d := fixtures.MkdirMode(t, filepath.Join(base, "run"), 0o755)
			fixtures.Must(t, os.Chown(d, otherUID, otherUID))
			return d, d
		}, "belongs to uid 64103"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needRoot(t, tt.asRoot)
			dir, named := tt.setup(t, t.TempDir())
			r, err := OpenRunDir(dir)
			if named == "" {
				if err != nil {
					t.Fatalf("OpenRunDir(%s): %v", dir, err)
				}
				r.Close()
				return
			}
			if err == nil {
				r.Close()
				t.Fatalf("OpenRunDir(%s) accepted it", dir)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), named) {
				t.Errorf("OpenRunDir(%s): %v; want %q naming %s", dir, err, tt.wantErr, named)
			}
		})
	}
}

// foreignLinks are names another user or program may have left where
// system mode puts its link: OwnTarget, SwapLink and Unlink refuse each,
// naming it, and leave it byte for byte.
var foreignLinks = []struct {
	name   string
	asRoot bool
	plant  func(t *testing.T, link, cache, outside string)
	msg    string
}{
	{"NixOS's store path", false, func(t *testing.T, link, cache, outside string) {
		fixtures.Must(t, os.Symlink("/nix/store/x-graphics-drivers", link))
	}, "NixOS's own graphics drivers"},
	{"a link outside the cache", false, func(t *testing.T, link, cache, outside string) {
		fixtures.Must(t, os.Symlink(outside, link))
	}, "outside nixglhost's system cache"},
	{"a hidden name in the cache", false, func(t *testing.T, link, cache, outside string) {
		fixtures.Must(t, os.Symlink(filepath.Join(cache, ".tmp-x"), link))
	}, "not an entry of nixglhost's system cache"},
	{"a name in the cache without an entry's shape", false, func(t *testing.T, link, cache, outside string) {
		fixtures.Must(t, os.Symlink(filepath.Join(cache, "photos"), link))
	}, "not an entry of nixglhost's system cache"},
	{"a directory", false, func(t *testing.T, link, cache, outside string) {
		fixtures.Write(t, filepath.Join(link, "lib", "libGL.so"), "x")
	}, "is a directory, not a link nixglhost made"},
	{"a regular file", false, func(t *testing.T, link, cache, outside string) {
		fixtures.Write(t, link, "x")
	}, "is a regular file, not a link nixglhost made"},
	{"another user's link to an entry", true, func(t *testing.T, link, cache, outside string) {
		fixtures.Must(t, os.Symlink(filepath.Join(cache, key('a')), link))
		fixtures.Must(t, os.Lchown(link, otherUID, otherUID))
	}, "belongs to uid 64103"},
}

// linkFixture is a run directory, a system cache and a directory outside
// both, for the link tests.
type linkFixture struct {
	run              *RunDir
	base, cache, out string
	link             string
}

func newLinkFixture(t *testing.T) *linkFixture {
	t.Helper()
	base := t.TempDir()
	f := &linkFixture{base: base, cache: filepath.Join(base, "cache"), out: filepath.Join(base, "outside")}
	fixtures.Must(t, os.Mkdir(f.cache, 0o755))
	fixtures.Write(t, filepath.Join(f.out, "libcuda.so.1"), "the host's\n")
	run := fixtures.MkdirMode(t, filepath.Join(base, "run"), 0o755)
	r, err := OpenRunDir(run)
	fixtures.Must(t, err)
	t.Cleanup(func() { r.Close() })
	f.run, f.link = r, filepath.Join(run, "opengl-driver")
	return f
}

func TestOwnTarget(t *testing.T) {
	f := newLinkFixture(t)
	if got, err := f.run.OwnTarget("opengl-driver", f.cache); got != "" || err != nil {
		t.Errorf("no link: %q, %v; want \"\", nil", got, err)
	}
	for _, target := range []string{filepath.Join(f.cache, key('a')), "../cache/" + key('a')} {
		fixtures.Must(t, os.Symlink(target, f.link))
		got, err := f.run.OwnTarget("opengl-driver", f.cache)
		if want := filepath.Join(f.cache, key('a')); got != want || err != nil {
			t.Errorf("link to %s: %q, %v; want %s", target, got, err, want)
		}
		fixtures.Must(t, os.Remove(f.link))
	}
	for _, tt := range foreignLinks {
		t.Run(tt.name, func(t *testing.T) {
			needRoot(t, tt.asRoot)
			f := newLinkFixture(t)
			tt.plant(t, f.link, f.cache, f.out)
			got, err := f.run.OwnTarget("opengl-driver", f.cache)
			if got != "" || err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), f.link) {
				t.Errorf("OwnTarget = %q, %v; want an error naming %s saying %q", got, err, f.link, tt.msg)
			}
		})
	}
}

// TestSwapLinkForeign: SwapLink and Unlink refuse every foreign name
// where the link goes, and change nothing in the run directory nor where
// a link there points.
func TestSwapLinkForeign(t *testing.T) {
	for _, tt := range foreignLinks {
		t.Run(tt.name, func(t *testing.T) {
			needRoot(t, tt.asRoot)
			f := newLinkFixture(t)
			entry := makeEntry(t, f.cache, key('b'))
			tt.plant(t, f.link, f.cache, f.out)
			before := fixtures.Snapshot(t, f.base)
			if err := f.run.SwapLink("opengl-driver", entry, f.cache); err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("SwapLink: %v; want %q", err, tt.msg)
			}
			if got, err := f.run.Unlink("opengl-driver", f.cache); got != "" || err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Unlink: %q, %v; want %q", got, err, tt.msg)
			}
			if d := cmp.Diff(before, fixtures.Snapshot(t, f.base)); d != "" {
				t.Errorf("changed (-before +after):\n%s", d)
			}
		})
	}
}

// TestSwapLink: the link is made, then moved by a rename, leaving no
// temporary name; names beside it of a temporary's shape are not its own
// and stay; a target that is not an entry of the cache is refused.
func TestSwapLink(t *testing.T) {
	f := newLinkFixture(t)
	run := filepath.Dir(f.link)
	planted := filepath.Join(run, ".opengl-driver.nixglhost-1-0000000000000000")
	fixtures.Write(t, planted, "someone's\n")
	plantedBefore := fixtures.Describe(t, planted)
	for _, c := range []byte{'a', 'b'} {
		entry := makeEntry(t, f.cache, key(c))
		fixtures.Must(t, f.run.SwapLink("opengl-driver", entry, f.cache))
		if got, err := os.Readlink(f.link); err != nil || got != entry {
			t.Errorf("link -> %q, %v; want %s", got, err, entry)
		}
	}
	ents, err := os.ReadDir(run)
	fixtures.Must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if d := cmp.Diff([]string{filepath.Base(planted), "opengl-driver"}, names); d != "" {
		t.Errorf("the run directory holds (-want +got):\n%s", d)
	}
	if got := fixtures.Describe(t, planted); got != plantedBefore {
		t.Errorf("%s changed: %s, was %s", planted, got, plantedBefore)
	}
	for _, target := range []string{filepath.Join(f.cache, "photos"), f.out} {
		if err := f.run.SwapLink("opengl-driver", target, f.cache); err == nil {
			t.Errorf("SwapLink to %s: accepted", target)
		}
	}
	if got, err := os.Readlink(f.link); err != nil || got != filepath.Join(f.cache, key('b')) {
		t.Errorf("a refused SwapLink moved the link: %q, %v", got, err)
	}
}

// TestRemoveOwnLink: a temporary link is cleaned up only while it is
// still the link made: not once it points elsewhere or is another file.
func TestRemoveOwnLink(t *testing.T) {
	f := newLinkFixture(t)
	target := filepath.Join(f.cache, key('a'))
	run := filepath.Dir(f.link)
	tests := []struct {
		name     string
		plant    func(p string)
		wantGone bool
	}{
		{"ours", func(p string) { fixtures.Must(t, os.Symlink(target, p)) }, true},
		{"pointing elsewhere", func(p string) { fixtures.Must(t, os.Symlink(f.out, p)) }, false},
		{"a regular file", func(p string) { fixtures.Write(t, p, "x") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(run, ".tmp-"+strings.ReplaceAll(tt.name, " ", "-"))
			tt.plant(p)
			before := fixtures.Describe(t, p)
			f.run.removeOwnLink(filepath.Base(p), target)
			_, err := os.Lstat(p)
			if gone := os.IsNotExist(err); gone != tt.wantGone {
				t.Errorf("removed: %t, want %t", gone, tt.wantGone)
			}
			if !tt.wantGone && fixtures.Describe(t, p) != before {
				t.Errorf("%s changed", p)
			}
		})
	}
}

// TestUnlink removes our link, and only it, saying where it pointed.
func TestUnlink(t *testing.T) {
	f := newLinkFixture(t)
	entry := makeEntry(t, f.cache, key('a'))
	fixtures.Must(t, f.run.SwapLink("opengl-driver", entry, f.cache))
	if got, err := f.run.Unlink("opengl-driver", f.cache); got != entry || err != nil {
		t.Errorf("Unlink = %q, %v; want %s", got, err, entry)
	}
	if _, err := os.Lstat(f.link); !os.IsNotExist(err) {
		t.Errorf("the link is still there: %v", err)
	}
	if got, err := f.run.Unlink("opengl-driver", f.cache); got != "" || err != nil {
		t.Errorf("Unlink with no link = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(entry, "manifest.json")); err != nil {
		t.Errorf("Unlink touched the entry: %v", err)
	}
}

// TestPrune: only entries system mode made, linked before and named by no
// recorded link now, go. Everything else planted in the cache, all with
// an entry's name shape and listed in the record, stays byte for byte: a
// directory with no manifest, one whose manifest names another key, a
// link to a directory outside, a regular file, another user's entry; so
// do entries never recorded, the one another run directory's link still
// names, and names with no entry's shape. An older record, entry names
// without their links, removes nothing: any of them may be another run
// directory's.
func TestPrune(t *testing.T) {
	for _, format := range []string{"names", "links"} {
		t.Run(format, func(t *testing.T) {
			base := t.TempDir()
			cache := filepath.Join(base, "cache")
			outside := filepath.Join(base, "outside")
			fixtures.Write(t, filepath.Join(outside, "precious"), "keep\n")
			fixtures.Must(t, os.Mkdir(cache, 0o755))
			old, prev, cur, other, hooks := key('1'), key('2'), key('3'), key('4'), key('5')
			for _, e := range []string{old, prev, cur, other, hooks} {
				makeEntry(t, cache, e)
			}
			noManifest, otherKey, aLink, aFile, theirs := key('a'), key('b'), key('c'), key('d'), key('e')
			fixtures.Write(t, filepath.Join(cache, noManifest, "lib", "data"), "not ours\n")
			fixtures.Write(t, filepath.Join(cache, otherKey, "manifest.json"), `{"format":1,"key":"`+key('f')+`"}`)
			fixtures.Must(t, os.Symlink(outside, filepath.Join(cache, aLink)))
			fixtures.Write(t, filepath.Join(cache, aFile), "a file\n")
			fixtures.Write(t, filepath.Join(cache, "photos", "a.jpg"), "jpeg\n")
			recorded := []string{old, noManifest, otherKey, aLink, aFile, "photos", "../escape", ".hidden", prev, other}
			if os.Geteuid() == 0 {
				makeEntry(t, cache, theirs)
				fixtures.Must(t, os.Chown(filepath.Join(cache, theirs), otherUID, otherUID))
				recorded = append(recorded, theirs)
			}
			// Another run directory's link, still pointing at its entry.
			run2 := t.TempDir()
			link2 := filepath.Join(run2, "opengl-driver")
			fixtures.Must(t, os.Symlink(filepath.Join(cache, other), link2))
			link := filepath.Join(base, "run", "opengl-driver")
			var hist []byte
			if format == "names" {
				hist = []byte(strings.Join(recorded, "\n") + "\n")
			} else {
				var h history
				h.Version = historyVersion
				for _, name := range recorded {
					l := link
					if name == other {
						l = link2
					}
					h.Linked = append(h.Linked, Linked{Link: l, Entry: name})
				}
				var err error
				hist, err = json.Marshal(h)
				fixtures.Must(t, err)
			}
			fixtures.Must(t, os.WriteFile(filepath.Join(cache, HistoryBase), hist, 0o644))

			before := fixtures.Snapshot(t, base)
			keep := []Linked{{Link: link, Entry: prev}, {Link: link, Entry: cur}}
			removed := Prune(openCache(t, cache), keep, discard)
			var wantRemoved []string
			if format == "links" {
				wantRemoved = []string{filepath.Join(cache, old)}
			}
			if d := cmp.Diff(wantRemoved, removed); d != "" {
				t.Errorf("removed (-want +got):\n%s", d)
			}
			after := fixtures.Snapshot(t, base)
			for k := range before {
				if k == filepath.Join("cache", HistoryBase) || len(wantRemoved) > 0 && (k == filepath.Join("cache", old) || strings.HasPrefix(k, filepath.Join("cache", old)+"/")) {
					delete(before, k)
				}
			}
			delete(after, filepath.Join("cache", HistoryBase))
			if d := cmp.Diff(before, after); d != "" {
				t.Errorf("Prune changed what it should have left (-before +after):\n%s", d)
			}
			want := []Linked{{link, prev}, {link, cur}}
			if format == "links" {
				want = append(want, Linked{link2, other})
			}
			if d := cmp.Diff(want, readRecord(t, cache)); d != "" {
				t.Errorf("record (-want +got):\n%s", d)
			}
		})
	}
}

// readRecord returns the record Prune wrote.
func readRecord(t *testing.T, cache string) []Linked {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cache, HistoryBase))
	fixtures.Must(t, err)
	var h history
	fixtures.Must(t, json.Unmarshal(b, &h))
	if h.Version != historyVersion {
		t.Errorf("record version %d", h.Version)
	}
	return h.Linked
}

// TestPruneTwoRunDirs: an entry another run directory's recorded link
// names stays while the link names it, and goes once it is removed.
func TestPruneTwoRunDirs(t *testing.T) {
	cache := t.TempDir()
	a, b, c := key('a'), key('b'), key('c')
	for _, e := range []string{a, b, c} {
		makeEntry(t, cache, e)
	}
	link1 := filepath.Join(t.TempDir(), "opengl-driver")
	link2 := filepath.Join(t.TempDir(), "opengl-driver")
	fixtures.Must(t, os.Symlink(filepath.Join(cache, a), link2))
	root := openCache(t, cache)
	// Run 2 linked a; run 1 links a, then b, then c.
	steps := []struct {
		keep []Linked
		want []string
	}{
		{[]Linked{{link2, a}}, nil},
		{[]Linked{{link1, a}}, nil},
		{[]Linked{{link1, a}, {link1, b}}, nil},
		{[]Linked{{link1, b}, {link1, c}}, nil},
	}
	for i, s := range steps {
		if got := Prune(root, s.keep, discard); len(got) != 0 {
			t.Fatalf("step %d removed %v", i, got)
		}
	}
	if _, err := os.Stat(filepath.Join(link2, "manifest.json")); err != nil {
		t.Fatalf("the other run directory's link no longer resolves: %v", err)
	}
	fixtures.Must(t, os.Remove(link2))
	if got := Prune(root, []Linked{{link1, b}, {link1, c}}, discard); !cmp.Equal(got, []string{filepath.Join(cache, a)}) {
		t.Errorf("once its link was removed, Prune removed %v; want %s", got, filepath.Join(cache, a))
	}
}

// TestPruneRecordNotOurs: a record that is a link is neither read nor
// written through; what it points to stays byte for byte.
func TestPruneRecordNotOurs(t *testing.T) {
	base := t.TempDir()
	cache := filepath.Join(base, "cache")
	fixtures.Must(t, os.Mkdir(cache, 0o755))
	makeEntry(t, cache, key('a'))
	target := fixtures.Write(t, filepath.Join(base, "elsewhere"), key('a')+"\n")
	fixtures.Must(t, os.Symlink(target, filepath.Join(cache, HistoryBase)))
	before := fixtures.Snapshot(t, base)
	if got := Prune(openCache(t, cache), []Linked{{"/run/opengl-driver", key('b')}}, discard); len(got) != 0 {
		t.Errorf("removed %v", got)
	}
	if d := cmp.Diff(before, fixtures.Snapshot(t, base)); d != "" {
		t.Errorf("changed (-before +after):\n%s", d)
	}
}

// TestShareTree: an entry of ours gets 0755 directories and readable
// files; the links in it and what they lead to are left alone. A name that
// is not provably an entry of ours is refused and left byte for byte.
func TestShareTree(t *testing.T) {
	base := t.TempDir()
	cache := filepath.Join(base, "cache")
	fixtures.Must(t, os.Mkdir(cache, 0o755))
	outside := filepath.Join(base, "outside")
	secret := fixtures.Write(t, filepath.Join(outside, "secret"), "x")
	fixtures.Must(t, os.Chmod(secret, 0o600))
	fixtures.Must(t, os.Chmod(outside, 0o700))
	entry := makeEntry(t, cache, key('a'))
	fixtures.Must(t, os.Symlink(secret, filepath.Join(entry, "lib", "libsecret.so")))
	fixtures.Must(t, os.Symlink(outside, filepath.Join(entry, "lib", "dir")))
	fixtures.Must(t, syscall.Mkfifo(filepath.Join(entry, "lib", "fifo"), 0o600))
	outBefore := fixtures.Snapshot(t, outside)
	root := openCache(t, cache)
	fixtures.Must(t, ShareTree(root, key('a')))
	for p, want := range map[string]os.FileMode{
		entry:                                 os.ModeDir | 0o755,
		filepath.Join(entry, "lib"):           os.ModeDir | 0o755,
		filepath.Join(entry, "lib/libx.so"):   0o644,
		filepath.Join(entry, "manifest.json"): 0o644,
		filepath.Join(entry, "lib/fifo"):      os.ModeNamedPipe | 0o600,
	} {
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&(os.ModeType|os.ModePerm) != want {
			t.Errorf("%s: %v, %v; want %v", p, fi.Mode(), err, want)
		}
	}
	if d := cmp.Diff(outBefore, fixtures.Snapshot(t, outside)); d != "" {
		t.Errorf("ShareTree changed what the entry's links lead to (-before +after):\n%s", d)
	}

	tests := []struct {
		name  string
		plant func(t *testing.T, p string)
	}{
		{"no manifest", func(t *testing.T, p string) {
			fixtures.Write(t, filepath.Join(p, "lib", "data"), "x")
			fixtures.Must(t, os.Chmod(filepath.Join(p, "lib", "data"), 0o600))
			fixtures.Must(t, os.Chmod(p, 0o700))
		}},
		{"a manifest naming another key", func(t *testing.T, p string) {
			fixtures.Write(t, filepath.Join(p, "manifest.json"), `{"format":1,"key":"`+key('f')+`"}`)
			fixtures.Must(t, os.Chmod(p, 0o700))
		}},
		{"a link to a directory outside", func(t *testing.T, p string) {
			fixtures.Must(t, os.Symlink(outside, p))
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := key(byte('b' + i))
			tt.plant(t, filepath.Join(cache, name))
			before := fixtures.Snapshot(t, base)
			if err := ShareTree(root, name); err == nil || !strings.Contains(err.Error(), filepath.Join(cache, name)) {
				t.Errorf("ShareTree(%s): %v; want a refusal naming it", name, err)
			}
			if d := cmp.Diff(before, fixtures.Snapshot(t, base)); d != "" {
				t.Errorf("changed (-before +after):\n%s", d)
			}
		})
	}
}
