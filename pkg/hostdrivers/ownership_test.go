package hostdrivers

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

var discardLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// age sets p's modification time d into the past (without following a
// link).
func age(t *testing.T, p string, d time.Duration) {
	t.Helper()
	when := time.Now().Add(-d)
	fixtures.Must(t, lutimes(p, when))
}

// TestForeignRootRefused: a directory holding a user's files, old enough
// for the old collector to take them, is refused as a cache root before
// anything is written there, with a message naming it and the fix; the
// files stay byte for byte (the reproduction of issue 22).
func TestForeignRootRefused(t *testing.T) {
	o := sharedHost(t)
	scratch := t.TempDir()
	fixtures.Write(t, filepath.Join(scratch, "photos", "a.jpg"), "x\n")
	fixtures.Must(t, os.MkdirAll(filepath.Join(scratch, "projects"), 0o700))
	for _, d := range []string{"photos", "projects"} {
		age(t, filepath.Join(scratch, d), 72*time.Hour)
	}
	fixtures.Must(t, os.Chmod(scratch, 0o700))
	before := fixtures.Snapshot(t, scratch)
	p, err := Prepare(o, scratch)
	var notOurs *NotOursError
	if err == nil || !errors.As(err, &notOurs) {
		t.Fatalf("Prepare = %v, %v; want a *NotOursError", p, err)
	}
	for _, want := range []string{scratch, "did not make", filepath.Join(scratch, "nixglhost")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if diff := cmp.Diff(before, fixtures.Snapshot(t, scratch)); diff != "" {
		t.Errorf("the refused directory changed (-before +after):\n%s", diff)
	}
}

// TestRootTaggedAndAdopted: a new or empty root is tagged; an untagged one
// holding only what nixglhost makes (a cache from before tags) is adopted
// with its entries; one with anything else, or another tool's tag, is not.
func TestRootTaggedAndAdopted(t *testing.T) {
	o := sharedHost(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		ours  bool
	}{
		{"new", func(t *testing.T, dir string) {}, true},
		{"empty", func(t *testing.T, dir string) { fixtures.Must(t, os.Mkdir(dir, 0o700)) }, true},
		{"old cache of ours", func(t *testing.T, dir string) {
			plant(t, o, dir)
			fixtures.Write(t, filepath.Join(dir, ".lock-"+strings.Repeat("ab", 16)), "")
		}, true},
		{"old cache and a foreign file", func(t *testing.T, dir string) {
			plant(t, o, dir)
			fixtures.Write(t, filepath.Join(dir, "notes.txt"), "mine\n")
		}, false},
		{"a key-named directory without our manifest", func(t *testing.T, dir string) {
			fixtures.Write(t, filepath.Join(dir, strings.Repeat("0", 32), "data"), "mine\n")
		}, false},
		{"a lock-named directory", func(t *testing.T, dir string) {
			fixtures.Must(t, os.MkdirAll(filepath.Join(dir, ".lock-"+strings.Repeat("ab", 16)), 0o700))
		}, false},
		{"another tool's tag", func(t *testing.T, dir string) {
			fixtures.Write(t, filepath.Join(dir, CacheTagName), cacheTagSignature+"\n# cargo\n")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			tt.setup(t, dir)
			if _, err := os.Stat(dir); err == nil {
				fixtures.Must(t, os.Chmod(dir, 0o700))
			}
			var before map[string]string
			if !tt.ours {
				before = fixtures.Snapshot(t, dir)
			}
			p, err := Prepare(o, dir)
			if !tt.ours {
				if !errors.As(err, new(*NotOursError)) {
					t.Fatalf("Prepare = %v, %v; want a refusal", p, err)
				}
				if diff := cmp.Diff(before, fixtures.Snapshot(t, dir)); diff != "" {
					t.Errorf("refused directory changed (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if !IsMarkedRoot(dir) {
				t.Errorf("%s carries no tag of ours after a build", dir)
			}
			b, err := os.ReadFile(filepath.Join(dir, CacheTagName))
			fixtures.Must(t, err)
			if !strings.HasPrefix(string(b), "Signature: 8a477f597d28d172789f06886806bc55\n") {
				t.Errorf("tag %q lacks the standard signature", b)
			}
		})
	}
}

// TestCollectorLeavesForeign: in a tagged root, the collector removes our
// stale entry and our abandoned scratch, and leaves every foreign path
// with the same name shapes (foreignShapes) byte for byte, however old,
// and the directory outside the root that planted links lead to.
func TestCollectorLeavesForeign(t *testing.T) {
	o := sharedHost(t)
	cache := filepath.Join(t.TempDir(), "cache")
	p, err := Prepare(o, cache)
	if err != nil {
		t.Fatal(err)
	}
	ours := p.Dir
	snapshot, _ := foreignShapes(t, cache)
	// Ours: an abandoned temporary directory and a stale entry (its
	// driver was upgraded), both old.
	tmp := filepath.Join(cache, ".tmp-0123456789ab-"+hostName()+"-999999999-5")
	fixtures.Write(t, filepath.Join(tmp, "lib", "x"), "")
	fixtures.Write(t, filepath.Join(tmp, buildMark), "")
	age(t, tmp, 2*time.Hour)
	lib := filepath.Join(o.Root, "drv", "libcuda.so.535.261.03")
	fixtures.Must(t, os.Chtimes(lib, time.Now(), time.Now().Add(time.Hour)))
	age(t, ours, 48*time.Hour)

	before := snapshot()
	removed := collectGarbage(cache, "", discardLog)
	var got []string
	for _, r := range removed {
		got = append(got, filepath.Base(r.Path))
	}
	want := []string{filepath.Base(tmp), filepath.Base(ours)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, snapshot()); diff != "" {
		t.Errorf("foreign paths, or the directory outside they lead to, changed (-before +after):\n%s", diff)
	}
}

// TestIndexNotRenamedOverForeign: a file with an index's name that is not
// an index of ours is not replaced when the cold path writes its index.
func TestIndexNotRenamedOverForeign(t *testing.T) {
	o := sharedHost(t)
	cache := filepath.Join(t.TempDir(), "cache")
	fixtures.Must(t, os.Mkdir(cache, 0o700))
	idx := filepath.Join(cache, inputsName(o))
	fixtures.Write(t, idx, "my notes\n")
	// Adoption refuses a root with a foreign file, so tag it first: the
	// index's own check is what is under test.
	f, err := openRoot(cache, 0o700)
	fixtures.Must(t, err)
	fixtures.Must(t, writeTag(int(f.Fd()), cache))
	f.Close()
	if _, err := Prepare(o, cache); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(idx); string(b) != "my notes\n" {
		t.Errorf("%s now holds %q", idx, b)
	}
}

// TestSystemRootRefusedFirst: system mode's root that exists but is not
// acceptable is refused before anything is made, with its real mode (1777,
// not 0777); one whose parents are missing is made, parents 0755.
func TestSystemRootRefusedFirst(t *testing.T) {
	base := t.TempDir()
	sticky := filepath.Join(base, "sticky")
	fixtures.Must(t, os.Mkdir(sticky, 0o755))
	fixtures.Must(t, os.Chmod(sticky, 0o777|os.ModeSticky))
	before := fixtures.Snapshot(t, base)
	_, err := OpenSystemRoot(sticky)
	if err == nil || !strings.Contains(err.Error(), "1777") {
		t.Errorf("OpenSystemRoot(1777 dir) = %v; want a refusal saying 1777", err)
	}
	if diff := cmp.Diff(before, fixtures.Snapshot(t, base)); diff != "" {
		t.Errorf("a refused root changed something (-before +after):\n%s", diff)
	}
	deep := filepath.Join(base, "var", "cache", "nix-gl-host")
	f, err := OpenSystemRoot(deep)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, d := range []string{filepath.Join(base, "var"), filepath.Join(base, "var", "cache"), deep} {
		fi, err := os.Lstat(d)
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, %v; want a 0755 directory", d, fi, err)
		}
	}
	if !IsMarkedRoot(deep) {
		t.Errorf("%s not tagged", deep)
	}
}

// lutimes sets p's access and modification times to when, without
// following a link.
func lutimes(p string, when time.Time) error {
	ts := unix.NsecToTimespec(when.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// TestRunJobsOneError: when every job fails the same way (a full disk), the
// error says so once, not once per file (before: one line per job).
func TestRunJobsOneError(t *testing.T) {
	err := runJobs(20, func(i int) error {
		return fmt.Errorf("copy lib%d.so: %w", i, unix.ENOSPC)
	})
	if !isNoSpace(err) || strings.Count(err.Error(), "no space left") != 1 {
		t.Errorf("runJobs = %q; want one ENOSPC", err)
	}
}

// TestNameShapes: the hand-written matchers accept exactly the names
// nixglhost gives.
func TestNameShapes(t *testing.T) {
	k := strings.Repeat("a1", 16)
	tests := []struct {
		name string
		m    shape
		want bool
	}{
		{k, keyShape, true},
		{strings.ToUpper(k), keyShape, false},
		{k + "0", keyShape, false},
		{".tmp-" + k[:12] + "-host_1-123-456", tmpShape, true},
		{".tmp-" + k[:12] + "-host-1-123-456", tmpShape, false},
		{".tmp-" + k[:12] + "-host-123-x", tmpShape, false},
		{".trash-" + k + "-77", trashShape, true},
		{".trash-" + k + "-", trashShape, false},
		{".lock-" + k, lockShape, true},
		{".lock-" + k[:30], lockShape, false},
		{".index-" + k[:24], indexShape, true},
		{".tmpidx-123", tmpIdxShape, true},
		{".tmpidx-", tmpIdxShape, false},
		{".system-mode.lock", systemShapes, true},
		{".system-mode.linked.tmp-42", systemShapes, true},
		{".system-mode.linked.tmp-", systemShapes, false},
	}
	for _, tt := range tests {
		if got := tt.m.MatchString(tt.name); got != tt.want {
			t.Errorf("%q: %v, want %v", tt.name, got, tt.want)
		}
	}
}
