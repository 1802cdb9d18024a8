package hostdrivers

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// foreignShapes plants, in the cache root, files and directories that are
// not nixglhost's but have the shapes of its names (a key-named directory
// without our manifest, one whose manifest names another key, one that is
// a link out of the root, scratch names of the wrong kind, a user's
// photos, our exact shapes with no proof inside), all old, where the name
// is free, and returns a function that snapshots them and the directory
// the link leads to, and their names, sorted.
func foreignShapes(t *testing.T, cache string) (func() map[string]string, []string) {
	t.Helper()
	outside := t.TempDir()
	fixtures.Write(t, filepath.Join(outside, "keep"), "outside\n")
	key := func(c string) string { return strings.Repeat(c, 32) }
	foreign := map[string]func(p string){
		key("0"): func(p string) { fixtures.Write(t, filepath.Join(p, "data"), "mine\n") },
		key("1"): func(p string) {
			fixtures.Write(t, filepath.Join(p, "manifest.json"), `{"format":1,"key":"`+key("2")+`"}`)
		},
		key("3"):                            func(p string) { fixtures.Must(t, os.Symlink(outside, p)) },
		key("4"):                            func(p string) { fixtures.Write(t, p, "a file\n") },
		".tmp-0123456789ab-host-1-2":        func(p string) { fixtures.Write(t, p, "a file\n") },
		".trash-" + key("5") + "-1":         func(p string) { fixtures.Must(t, os.Symlink(outside, p)) },
		".lock-" + key("6"):                 func(p string) { fixtures.Write(t, filepath.Join(p, "x"), "a dir\n") },
		".tmpidx-12":                        func(p string) { fixtures.Must(t, os.Symlink(filepath.Join(outside, "keep"), p)) },
		".index-" + strings.Repeat("7", 24): func(p string) { fixtures.Must(t, os.Mkdir(p, 0o700)) },
		".system-mode.linked":               func(p string) { fixtures.Must(t, os.Symlink(filepath.Join(outside, "keep"), p)) },
		"photos":                            func(p string) { fixtures.Write(t, filepath.Join(p, "a.jpg"), "x\n") },
		".tmp-notours":                      func(p string) { fixtures.Write(t, filepath.Join(p, "x"), "x\n") },
		".index-" + strings.Repeat("8", 24): func(p string) { fixtures.Write(t, p, "not an index\n") },
		// Our exact shapes, but no proof inside (no build mark, no
		// manifest of the key the name gives), and scratch files that
		// are not empty or not an index.
		".tmp-0123456789ab-" + hostName() + "-999999999-7": func(p string) { fixtures.Write(t, filepath.Join(p, "x"), "x\n") },
		".trash-" + key("8") + "-1":                        func(p string) { fixtures.Write(t, filepath.Join(p, "photos", "a.jpg"), "x\n") },
		".lock-" + key("9"):                                func(p string) { fixtures.Write(t, p, "my notes\n") },
		".tmpidx-99":                                       func(p string) { fixtures.Write(t, p, "my notes\n") },
	}
	for name, make := range foreign {
		if _, err := os.Lstat(filepath.Join(cache, name)); err == nil {
			delete(foreign, name)
			continue
		}
		make(filepath.Join(cache, name))
		age(t, filepath.Join(cache, name), 90*24*time.Hour)
	}
	var names []string
	for name := range foreign {
		names = append(names, name)
	}
	slices.Sort(names)
	return func() map[string]string {
		out := map[string]string{}
		for name := range foreign {
			for k, v := range fixtures.Snapshot(t, filepath.Join(cache, name)) {
				out[filepath.Join(name, k)] = v
			}
		}
		for k, v := range fixtures.Snapshot(t, outside) {
			out[filepath.Join("OUTSIDE", k)] = v
		}
		return out
	}, names
}

// prepared builds o's entry in cache and returns its directory.
func prepared(t *testing.T, o *Options, cache string) string {
	t.Helper()
	p, err := Prepare(o, cache)
	if err != nil || p == nil {
		t.Fatalf("Prepare = %v, %v", p, err)
	}
	return p.Dir
}

// setAtime sets p's access time alone, without following a link.
func setAtime(t *testing.T, p string, when time.Time) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(when.UnixNano()), {Nsec: unix.UTIME_OMIT}}
	fixtures.Must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
}

// atimeOf is p's access time, without following a link.
func atimeOf(t *testing.T, p string) time.Time {
	t.Helper()
	fi, err := os.Lstat(p)
	fixtures.Must(t, err)
	return time.Unix(fi.Sys().(*syscall.Stat_t).Atim.Unix())
}

// TestListCache: the listing names each entry with its driver, the mode
// that built it (unknown for an entry from before modes were recorded),
// its size, build time and state (current; stale once its driver
// changed), what uses it, whether the collector would take it; and the
// foreign names, which it leaves byte for byte.
func TestListCache(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	a, b := sharedHost(t), sharedHost(t)
	wrapper := prepared(t, a, cache)
	run := t.TempDir()
	sc := *b
	sc.SelfContained, sc.SeenAt = true, filepath.Join(run, "opengl-driver")
	self := prepared(t, &sc, cache)
	fixtures.Must(t, os.Symlink(self, sc.SeenAt))
	// An entry of before modes were recorded: its manifest without them.
	old := prepared(t, b, cache)
	m, err := ReadManifest(old)
	fixtures.Must(t, err)
	m.Mode, m.SeenAt = "", ""
	raw, err := json.Marshal(m)
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(filepath.Join(old, "manifest.json"), raw, 0o644))
	// b's driver is upgraded: its two entries are stale, and old enough
	// for the collector.
	lib := filepath.Join(b.Root, "drv", "libcuda.so.535.261.03")
	fixtures.Must(t, os.Chtimes(lib, time.Now(), time.Now().Add(time.Hour)))
	age(t, old, 48*time.Hour)
	snap, foreign := foreignShapes(t, cache)
	before := snap()

	l, err := ListCache(cache, Outside{Links: []string{filepath.Join(run, "nothing-here")}}, discardLog)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Path        string
		Mode        EntryMode
		SeenAt      string
		State       EntryState
		InUse       []string
		Collectable bool
	}
	var got []row
	for _, e := range l.Entries {
		got = append(got, row{e.Path, e.Mode, e.SeenAt, e.State, e.InUse, e.Collectable != ""})
		if e.DriverVersion != "535.261.03" || e.Size <= 0 || e.Files == 0 || e.Symlinks == 0 || time.Since(e.Built) > time.Hour {
			t.Errorf("%s: driver %q, size %d, %d files, %d links, built %v", e.Key, e.DriverVersion, e.Size, e.Files, e.Symlinks, e.Built)
		}
		if (e.LastUsed == nil) != (l.Atime == AtimeNone) {
			t.Errorf("%s: last used %v under %s", e.Key, e.LastUsed, l.Atime)
		}
	}
	want := []row{
		{wrapper, EntryWrapper, "", StateCurrent, nil, false},
		{self, EntrySelfContained, sc.SeenAt, StateStale, []string{sc.SeenAt + " points to it"}, false},
		{old, EntryModeUnknown, "", StateStale, nil, true},
	}
	sortRows := func(rs []row) {
		for i := range rs {
			for j := i + 1; j < len(rs); j++ {
				if rs[j].Path < rs[i].Path {
					rs[i], rs[j] = rs[j], rs[i]
				}
			}
		}
	}
	sortRows(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	var others []string
	for _, o := range l.Others {
		others = append(others, filepath.Base(o.Path))
	}
	if diff := cmp.Diff(foreign, others); diff != "" {
		t.Errorf("others (-want +got):\n%s", diff)
	}
	if !l.Marked {
		t.Errorf("%s not marked", cache)
	}
	if diff := cmp.Diff(before, snap()); diff != "" {
		t.Errorf("listing changed foreign paths (-before +after):\n%s", diff)
	}
	if missing, err := ListCache(filepath.Join(cache, "nope"), Outside{}, nil); err != nil || missing.Exists {
		t.Errorf("missing root: %+v, %v", missing, err)
	}
}

// TestLastUsedFromAtime: an entry's last use is the latest access time of
// its files, its links and the indexes that name it, which the launch
// never writes; the listing itself reads the index with O_NOATIME and
// counts neither the manifest nor the directories it reads, so listing
// is not a use. Reading a library through the entry is.
func TestLastUsedFromAtime(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	o := sharedHost(t)
	entry := prepared(t, o, cache)
	if atimePolicy(cache) == AtimeNone {
		fixtures.Unavailable(t, "%s is mounted noatime", cache)
	}
	t0 := time.Now().Add(-10 * 24 * time.Hour).Truncate(time.Second)
	fixtures.Must(t, filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() != CacheTagName {
			setAtime(t, p, t0)
		}
		return err
	}))
	idx, _ := filepath.Glob(filepath.Join(cache, ".index-*"))
	if len(idx) != 1 {
		t.Fatalf("indexes %v", idx)
	}
	list := func() time.Time {
		t.Helper()
		l, err := ListCache(cache, Outside{}, nil)
		if err != nil || len(l.Entries) != 1 || l.Entries[0].LastUsed == nil {
			t.Fatalf("ListCache = %+v, %v", l, err)
		}
		return *l.Entries[0].LastUsed
	}
	steps := []struct {
		name  string
		touch func() time.Time // what was used, and when
	}{
		{"nothing used since", func() time.Time { return t0 }},
		{"a link followed", func() time.Time {
			t1 := t0.Add(24 * time.Hour)
			setAtime(t, filepath.Join(entry, "lib", "libcuda.so.1"), t1)
			return t1
		}},
		{"the index read by a hot launch", func() time.Time {
			t2 := t0.Add(5 * 24 * time.Hour)
			setAtime(t, idx[0], t2)
			return t2
		}},
		{"the manifest read (not a use)", func() time.Time {
			setAtime(t, filepath.Join(entry, "manifest.json"), time.Now())
			return t0.Add(5 * 24 * time.Hour)
		}},
	}
	for _, s := range steps {
		want := s.touch()
		if got := list(); !got.Equal(want) {
			t.Errorf("%s: last used %v, want %v", s.name, got, want)
		}
	}
	// The listings above read the index, days old under relatime: with
	// O_NOATIME its access time is as the test set it.
	if got := atimeOf(t, idx[0]); !got.Equal(t0.Add(5 * 24 * time.Hour)) {
		t.Errorf("listing moved the index's access time to %v", got)
	}
	if _, err := os.ReadFile(filepath.Join(entry, "lib", "libcuda.so.1")); err != nil {
		t.Fatal(err)
	}
	if got := list(); time.Since(got) > time.Minute {
		t.Errorf("after reading libcuda through the entry: last used %v, want now", got)
	}
}

// TestCollectGarbageNow: --cache-gc's collector reports, in a dry run,
// and removes, in a real one, exactly the stale entry and the abandoned
// build; every foreign path with our name shapes survives byte for byte;
// a root without our tag is refused unchanged, a missing one is
// fs.ErrNotExist.
func TestCollectGarbageNow(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	a, b := sharedHost(t), sharedHost(t)
	keep := prepared(t, a, cache)
	stale := prepared(t, b, cache)
	lib := filepath.Join(b.Root, "drv", "libcuda.so.535.261.03")
	fixtures.Must(t, os.Chtimes(lib, time.Now(), time.Now().Add(time.Hour)))
	age(t, stale, 48*time.Hour)
	tmp := filepath.Join(cache, ".tmp-0123456789ab-"+hostName()+"-999999999-5")
	fixtures.Write(t, filepath.Join(tmp, buildMark), "")
	fixtures.Write(t, filepath.Join(tmp, "lib", "x"), "")
	age(t, tmp, 2*time.Hour)
	snap, _ := foreignShapes(t, cache)
	before := snap()

	for _, dry := range []bool{true, false} {
		removed, err := CollectGarbage(cache, dry, discardLog)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range removed {
			got = append(got, r.Path)
			if r.Why == "" {
				t.Errorf("%s removed without a reason", r.Path)
			}
		}
		if diff := cmp.Diff([]string{tmp, stale}, got); diff != "" {
			t.Errorf("dry run %v: removed (-want +got):\n%s", dry, diff)
		}
		_, err = os.Lstat(stale)
		if dry != (err == nil) {
			t.Errorf("dry run %v: the stale entry: %v", dry, err)
		}
	}
	if _, err := os.Lstat(keep); err != nil {
		t.Errorf("current entry: %v", err)
	}
	if diff := cmp.Diff(before, snap()); diff != "" {
		t.Errorf("foreign paths changed (-before +after):\n%s", diff)
	}

	untagged := t.TempDir()
	fixtures.Must(t, os.Chmod(untagged, 0o700))
	plant(t, a, untagged)
	fixtures.Write(t, filepath.Join(untagged, "notes"), "mine\n")
	snapU := fixtures.Snapshot(t, untagged)
	var nc *NotCacheError
	if _, err := CollectGarbage(untagged, false, nil); !errors.As(err, &nc) || !strings.Contains(err.Error(), untagged) {
		t.Errorf("untagged root: %v, want a *NotCacheError naming it", err)
	}
	if diff := cmp.Diff(snapU, fixtures.Snapshot(t, untagged)); diff != "" {
		t.Errorf("untagged root changed (-before +after):\n%s", diff)
	}
	if _, err := CollectGarbage(filepath.Join(cache, "nope"), false, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing root: %v", err)
	}
}

// TestClearCache: --cache-clear removes every entry of ours and our
// scratch files, and keeps what is in use, each with the reason: an entry
// its SeenAt link points to, one a link in system mode's record points
// to, one an older record names when the entry does not say where it is
// seen, one a CDI spec mounts, one a
// process has in its environment, one bind-mounted in another mount
// namespace, one another machine built; a lock a launch holds; a live
// build. Every foreign path with
// our name shapes survives byte for byte, CACHEDIR.TAG and system mode's
// record stay, and an untagged root is refused unchanged.
func TestClearCache(t *testing.T) {
	tests := []struct {
		name string
		// setup makes the case in cache around the entry, returning what
		// ClearCache should keep (path and a word of its reason) and the
		// Outside to give it.
		setup func(t *testing.T, cache, entry string, o *Options) (kept map[string]string, out Outside)
	}{
		{"nothing in use", func(t *testing.T, cache, entry string, o *Options) (map[string]string, Outside) {
			return nil, Outside{Proc: "/proc"}
		}},
		{"linked where it is seen", func(t *testing.T, cache, entry string, o *Options) (map[string]string, Outside) {
			sc := *o
			sc.SelfContained, sc.SeenAt = true, filepath.Join(t.TempDir(), "opengl-driver")
			self := prepared(t, &sc, cache)
			fixtures.Must(t, os.Symlink(self, sc.SeenAt))
			return map[string]string{self: sc.SeenAt + " points to it"}, Outside{}
		}},
		{"recorded as linked, seen nowhere recorded", func(t *testing.T, cache, entry string, o *Options) (map[string]string, Outside) {
			m, err := ReadManifest(entry)
			fixtures.Must(t, err)
			m.Mode, m.SeenAt = "", ""
			raw, err := json.Marshal(m)
			fixtures.Must(t, err)
			fixtures.Must(t, os.WriteFile(filepath.Join(entry, "manifest.json"), raw, 0o644))
			fixtures.Write(t, filepath.Join(cache, systemHistory), filepath.Base(entry)+"\n")
			fixtures.Write(t, filepath.Join(cache, systemLock), "")
			return map[string]string{entry: systemHistory}, Outside{}
		}},
		{"linked from another run directory, as the record says", func(t *testing.T, cache, entry string, o *Options) (map[string]string, Outside) {
			link := filepath.Join(t.TempDir(), "opengl-driver")
			fixtures.Must(t, os.Symlink(entry, link))
			fixtures.Write(t, filepath.Join(cache, systemHistory), `{"version": 2, "linked": [{"link": "`+link+`", "entry": "`+filepath.Base(entry)+`"}]}`+"\n")
			return map[string]string{entry: link + " points to it"}, Outside{}
		}},
		{"mounted by a CDI spec", func(t *testing.T, cache, entry string, o *Options) (map[string]string, Outside) {
			return map[string]string{entry: "the CDI spec"}, Outside{Refs: map[string]string{entry: "the CDI spec /x mounts it"}}
		}},
		{"in a process's environment", func(t *testing.T, cache, entry string, o *Options) (map[string]string, Outside) {
			cmd := exec.Command("sleep", "60")
			cmd.Env = []string{"LD_LIBRARY_PATH=/opt/lib:" + filepath.Join(entry, "lib")}
			fixtures.Must(t, cmd.Start())
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			return map[string]string{entry: "process " + strconv.Itoa(cmd.Process.Pid) + " (sleep)"}, Outside{Proc: "/proc"}
		}},
		{"bound in another mount namespace", func(t *testing.T, cache, entry string, o *Options) (map[string]string, Outside) {
			if os.Geteuid() != 0 {
				fixtures.Unavailable(t, "a mount namespace needs root")
			}
			at := t.TempDir()
			cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", `mount --bind "$1" "$2" && echo ready && exec sleep 60`, "sh", entry, at)
			stdout, err := cmd.StdoutPipe()
			fixtures.Must(t, err)
			if err := cmd.Start(); err != nil {
				fixtures.Unavailable(t, "unshare: %v", err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			buf := make([]byte, 6)
			if n, _ := stdout.Read(buf); string(buf[:n]) != "ready\n" {
				fixtures.Unavailable(t, "unshare --mount: no bind mount (%q)", buf[:n])
			}
			return map[string]string{entry: "mounted at " + at}, Outside{Proc: "/proc"}
		}},
		{"built by another machine", func(t *testing.T, cache, entry string, o *Options) (map[string]string, Outside) {
			m, err := ReadManifest(entry)
			fixtures.Must(t, err)
			m.Host = "othernode"
			raw, err := json.Marshal(m)
			fixtures.Must(t, err)
			fixtures.Must(t, os.WriteFile(filepath.Join(entry, "manifest.json"), raw, 0o644))
			return map[string]string{entry: "another machine (othernode)"}, Outside{}
		}},
		{"lock held, build running", func(t *testing.T, cache, entry string, o *Options) (map[string]string, Outside) {
			lock := filepath.Join(cache, ".lock-"+filepath.Base(entry))
			f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE, 0o600)
			fixtures.Must(t, err)
			t.Cleanup(func() { f.Close() })
			fixtures.Must(t, unix.Flock(int(f.Fd()), unix.LOCK_EX))
			tmp := filepath.Join(cache, ".tmp-"+filepath.Base(entry)[:12]+"-"+hostName()+"-"+strconv.Itoa(os.Getpid())+"-7")
			fixtures.Write(t, filepath.Join(tmp, buildMark), "")
			return map[string]string{lock: "lock", tmp: "build in progress"}, Outside{}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "cache")
			o := sharedHost(t)
			entry := prepared(t, o, cache)
			stale := filepath.Join(cache, ".tmp-0123456789ab-"+hostName()+"-999999999-5")
			fixtures.Write(t, filepath.Join(stale, buildMark), "")
			fixtures.Write(t, filepath.Join(stale, "lib", "x"), "")
			kept, out := tt.setup(t, cache, entry, o)
			snap, foreign := foreignShapes(t, cache)
			before := snap()
			l, err := ListCache(cache, out, nil)
			fixtures.Must(t, err)
			system := map[string]string{}
			for _, n := range []string{systemHistory, systemLock} {
				if fi, err := os.Lstat(filepath.Join(cache, n)); err == nil && fi.Mode().IsRegular() {
					system[n] = fixtures.Describe(t, filepath.Join(cache, n))
				}
			}
			tag := fixtures.Describe(t, filepath.Join(cache, CacheTagName))

			res, err := ClearCache(cache, out, discardLog)
			if err != nil {
				t.Fatal(err)
			}
			gotKept := map[string]string{}
			for _, k := range res.Kept {
				gotKept[k.Path] = k.Why
			}
			if len(gotKept) != len(kept) {
				t.Errorf("kept %v, want %v", gotKept, kept)
			}
			for p, why := range kept {
				if !strings.Contains(gotKept[p], why) {
					t.Errorf("%s kept because %q, want a reason saying %q", p, gotKept[p], why)
				}
				if _, err := os.Lstat(p); err != nil {
					t.Errorf("kept %s: %v", p, err)
				}
			}
			// Everything else of ours is gone: what remains is the
			// foreign paths, the kept ones, the tag and system mode's.
			ents, err := os.ReadDir(cache)
			fixtures.Must(t, err)
			for _, e := range ents {
				p := filepath.Join(cache, e.Name())
				_, isKept := kept[p]
				_, isForeign := before[e.Name()]
				_, isSystem := system[e.Name()]
				if !isKept && !isForeign && !isSystem && e.Name() != CacheTagName {
					t.Errorf("%s is still there", p)
				}
			}
			// The listing said the same of every entry: in use
			// (kept) or not (removed).
			removed := 0
			for _, e := range l.Entries {
				if _, isKept := kept[e.Path]; isKept != (len(e.InUse) > 0) {
					t.Errorf("listed %s in use by %q; kept: %v", e.Path, e.InUse, isKept)
				} else if !isKept {
					removed++
				}
			}
			if res.Entries != removed || removed > 0 && res.Freed <= 0 {
				t.Errorf("removed %d entries, %d bytes; want %d entries", res.Entries, res.Freed, removed)
			}
			var others []string
			for _, o := range res.Others {
				others = append(others, filepath.Base(o.Path))
			}
			if diff := cmp.Diff(foreign, others); diff != "" {
				t.Errorf("foreign paths named (-planted +named):\n%s", diff)
			}
			if diff := cmp.Diff(before, snap()); diff != "" {
				t.Errorf("foreign paths changed (-before +after):\n%s", diff)
			}
			if got := fixtures.Describe(t, filepath.Join(cache, CacheTagName)); got != tag || !IsMarkedRoot(cache) {
				t.Errorf("CACHEDIR.TAG: %s, was %s", got, tag)
			}
			for n, d := range system {
				if got := fixtures.Describe(t, filepath.Join(cache, n)); got != d {
					t.Errorf("%s: %s, was %s", n, got, d)
				}
			}
		})
	}
}

// TestClearRefusesUntagged: --cache-clear on a directory without our tag
// (a user's directory, a cache of before tags) removes nothing there and
// says so, naming it.
func TestClearRefusesUntagged(t *testing.T) {
	o := sharedHost(t)
	dir := t.TempDir()
	fixtures.Must(t, os.Chmod(dir, 0o700))
	plant(t, o, dir)
	fixtures.Write(t, filepath.Join(dir, "photos", "a.jpg"), "x\n")
	before := fixtures.Snapshot(t, dir)
	res, err := ClearCache(dir, Outside{}, nil)
	var nc *NotCacheError
	if !errors.As(err, &nc) || nc.Dir != dir || res != nil {
		t.Errorf("ClearCache = %+v, %v; want a *NotCacheError for %s", res, err, dir)
	}
	if diff := cmp.Diff(before, fixtures.Snapshot(t, dir)); diff != "" {
		t.Errorf("refused directory changed (-before +after):\n%s", diff)
	}
}
