package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// foreignTree plants, under dir, a random tree of files nixglhost did not
// make and returns the top-level names it planted. Names are chosen to
// look like ours: key-shaped directories without our manifest or with one
// naming another key, scratch names of the wrong kind or a near miss,
// links to outside, alongside ordinary names, with old and new mtimes.
// Exact temporary-directory shapes are planted too: a name is never proof
// alone (docs/DESIGN.md, invariant 4).
func foreignTree(t *testing.T, rng *rand.Rand, dir, outside string) []string {
	t.Helper()
	hex := func(n int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, n)
		for i := range b {
			b[i] = digits[rng.IntN(16)]
		}
		return string(b)
	}
	names := []func() string{
		func() string { return hex(32) },
		func() string { return ".lock-" + hex(32) },
		func() string { return ".index-" + hex(24) },
		func() string { return ".tmpidx-" + strconv.Itoa(rng.IntN(1e6)) },
		func() string { return ".trash-" + hex(32) + "-" + strconv.Itoa(rng.IntN(1e5)) },
		func() string { return ".tmp-" + hex(12) + "-" + hostNameForTest() + "-1-x" },
		func() string {
			return ".tmp-" + hex(12) + "-" + hostNameForTest() + "-999999999-" + strconv.Itoa(rng.IntN(1e6))
		},
		func() string { return ".tmp-" + hex(8) },
		func() string { return ".system-mode.linked.tmp-" + strconv.Itoa(rng.IntN(1e5)) },
		func() string { return "photos-" + hex(4) },
		func() string { return ".config-" + hex(4) },
	}
	kinds := []func(p, name string){
		func(p, name string) { fixtures.Write(t, p, "foreign file "+name+"\n") },
		func(p, name string) { fixtures.Write(t, filepath.Join(p, "data"), "foreign dir "+name+"\n") },
		func(p, name string) {
			fixtures.Write(t, filepath.Join(p, "manifest.json"), `{"format":1,"key":"`+hex(32)+`"}`)
			fixtures.Write(t, filepath.Join(p, "lib", "libcuda.so.1"), "not a library\n")
		},
		func(p, name string) { fixtures.Must(t, os.Symlink(outside, p)) },
		func(p, name string) { fixtures.Must(t, os.Symlink(filepath.Join(outside, "file"), p)) },
		func(p, name string) {
			fixtures.Write(t, filepath.Join(p, "deep", "er", "file"), "nested\n")
			fixtures.Must(t, os.Symlink("../..", filepath.Join(p, "deep", "loop")))
		},
	}
	var planted []string
	n := 8 + rng.IntN(10)
	for len(planted) < n {
		name := names[rng.IntN(len(names))]()
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		kinds[rng.IntN(len(kinds))](p, name)
		if rng.IntN(2) == 0 {
			setBack(t, p, time.Duration(1+rng.IntN(90))*24*time.Hour)
		}
		planted = append(planted, name)
	}
	return planted
}

// hostNameForTest is the host part of our temporary directories' names.
func hostNameForTest() string {
	h, _ := os.Hostname()
	return strings.NewReplacer("-", "_", "/", "_").Replace(h)
}

// setBack moves p's mtime (not following a link) d into the past: the
// clock's effect, for the collector, without waiting.
func setBack(t *testing.T, p string, d time.Duration) {
	t.Helper()
	fi, err := os.Lstat(p)
	fixtures.Must(t, err)
	ts := unix.NsecToTimespec(fi.ModTime().Add(-d).UnixNano())
	fixtures.Must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
}

// snapshotOf records the planted paths under dir (each whole tree).
func snapshotOf(t *testing.T, dir string, names []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			for k, v := range fixtures.Snapshot(t, p) {
				out[filepath.Join(name, k)] = v
			}
			continue
		}
		out[name] = fixtures.Describe(t, p)
	}
	return out
}

// TestOwnershipProperty: a user cache, a system cache and a run directory
// seeded with random foreign trees survive a long random run of cold and
// hot launches, driver upgrades, system-mode link and unlink cycles and
// collector passes, --cache-gc, --cache-list and --cache-clear (with the
// clock simulated by setting mtimes back):
// after every step each foreign path is byte for byte what it was, and so
// is everything outside the cache that a planted link points at. The seed
// is printed; NIXGLHOST_PROPERTY_SEED replays one, NIXGLHOST_PROPERTY_STEPS
// lengthens the run.
func TestOwnershipProperty(t *testing.T) {
	fixtures.SkipShort(t, "the ownership property run")
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("NIXGLHOST_PROPERTY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		fixtures.Must(t, err)
		seed = v
	}
	steps := 60
	if s := os.Getenv("NIXGLHOST_PROPERTY_STEPS"); s != "" {
		v, err := strconv.Atoi(s)
		fixtures.Must(t, err)
		steps = v
	}
	t.Logf("seed %d (replay: NIXGLHOST_PROPERTY_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	sys := newSysRoot(t)
	drv := filepath.Join(sys.root, "drv")
	fixtures.FakeDriver(t, drv, "535.261.03", "amd64")
	user := filepath.Join(t.TempDir(), "cache")
	outside := t.TempDir()
	fixtures.Write(t, filepath.Join(outside, "file"), "outside\n")
	env := baseEnv(t)
	launch := func() {
		out, errOut, code := nixglhost(t, env, "--cache-dir", user, "-d", drv, "-p")
		if code != 0 || !strings.HasPrefix(out, user+"/") {
			t.Fatalf("seed %d: launch: exit %d %q\n%s", seed, code, out, errOut)
		}
	}
	link := func() {
		out, errOut, code := nixglhost(t, env, sys.args("-d", "/drv", "--link-run-opengl-driver")...)
		if code != 0 {
			t.Fatalf("seed %d: link: exit %d\n%s%s", seed, code, out, errOut)
		}
	}
	unlink := func() {
		out, errOut, code := nixglhost(t, env, sys.args("--unlink-run-opengl-driver")...)
		if code != 0 {
			t.Fatalf("seed %d: unlink: exit %d\n%s%s", seed, code, out, errOut)
		}
	}
	// The roots are made (and tagged) first: a foreign file in an
	// untagged root makes it refused, which TestForeignCacheDirKept shows.
	launch()
	link()
	planted := map[string][]string{
		user:      foreignTree(t, rng, user, outside),
		sys.cache: foreignTree(t, rng, sys.cache, outside),
		sys.run:   foreignTree(t, rng, sys.run, outside),
	}
	want := map[string]map[string]string{}
	for dir, names := range planted {
		want[dir] = snapshotOf(t, dir, names)
	}
	wantOutside := fixtures.Snapshot(t, outside)
	version := 0
	ops := map[string]int{}
	for i := 0; i < steps; i++ {
		var op string
		switch r := rng.IntN(10); {
		case r < 3:
			op = "launch"
			launch()
		case r < 4:
			op = "upgrade"
			// A driver upgrade: a new file identity, a new key; the
			// old entries become stale.
			version++
			lib := filepath.Join(drv, "libcuda.so.535.261.03")
			b, err := os.ReadFile(lib)
			fixtures.Must(t, err)
			fixtures.Must(t, os.Remove(lib))
			fixtures.Must(t, os.WriteFile(lib, b, 0o755))
		case r < 6:
			op = "link"
			link()
		case r < 7:
			op = "unlink"
			unlink()
		case r < 9:
			op = "age"
			// Two days pass for everything in the caches: ours become
			// collectable, and so would the foreign files if the rule
			// did not hold.
			for _, dir := range []string{user, sys.cache} {
				ents, err := os.ReadDir(dir)
				fixtures.Must(t, err)
				for _, e := range ents {
					setBack(t, filepath.Join(dir, e.Name()), 48*time.Hour)
				}
			}
			for dir, names := range planted {
				want[dir] = snapshotOf(t, dir, names)
			}
		default:
			op = "gc"
			// A cold launch collects: make it cold with a new file
			// identity of the same driver.
			version++
			lib := filepath.Join(drv, "libnvidia-ml.so.535.261.03")
			now := time.Now().Add(time.Duration(version) * time.Second)
			fixtures.Must(t, os.Chtimes(lib, now, now))
			out, errOut, code := nixglhost(t, env, "--cache-dir", user, "-d", drv, "-p")
			if code != 0 {
				t.Fatalf("seed %d: gc launch: exit %d %s%s", seed, code, out, errOut)
			}
			// And the commands a user runs: collect now, list.
			cmds := [][]string{{"--cache-gc"}, {"--cache-list"}}
			if rng.IntN(3) == 0 {
				cmds = append(cmds, []string{"--cache-clear"})
			}
			for _, cmdArgs := range cmds {
				for _, dir := range []string{user, sys.cache} {
					out, errOut, code := nixglhost(t, env, append([]string{"--cache-dir", dir}, cmdArgs...)...)
					if code != 0 {
						t.Fatalf("seed %d: %s %s: exit %d %s%s", seed, cmdArgs[0], dir, code, out, errOut)
					}
				}
			}
		}
		ops[op]++
		for dir, names := range planted {
			if diff := cmp.Diff(want[dir], snapshotOf(t, dir, names)); diff != "" {
				t.Fatalf("seed %d, step %d (%s): foreign paths in %s changed (-before +after):\n%s", seed, i, op, dir, diff)
			}
		}
		if diff := cmp.Diff(wantOutside, fixtures.Snapshot(t, outside)); diff != "" {
			t.Fatalf("seed %d, step %d (%s): a directory outside the caches changed:\n%s", seed, i, op, diff)
		}
	}
	// Last, a deterministic collection, so the run shows the collector
	// at work: an upgrade, a launch, two days, a cold launch. The
	// entries of the old driver go; the foreign paths stay.
	ours := func() map[string]bool {
		m := map[string]bool{}
		ents, err := os.ReadDir(user)
		fixtures.Must(t, err)
		for _, e := range ents {
			if hostdrivers.IsKeyName(e.Name()) {
				if _, err := hostdrivers.OwnedEntry(user, e.Name()); err == nil {
					m[e.Name()] = true
				}
			}
		}
		return m
	}
	lib := filepath.Join(drv, "libcuda.so.535.261.03")
	b, err := os.ReadFile(lib)
	fixtures.Must(t, err)
	fixtures.Must(t, os.Remove(lib))
	fixtures.Must(t, os.WriteFile(lib, b, 0o755))
	launch()
	before := ours()
	ents, err := os.ReadDir(user)
	fixtures.Must(t, err)
	for _, e := range ents {
		setBack(t, filepath.Join(user, e.Name()), 48*time.Hour)
	}
	want[user] = snapshotOf(t, user, planted[user])
	fixtures.Must(t, os.Chtimes(lib, time.Now().Add(time.Hour), time.Now().Add(time.Hour)))
	launch()
	after := ours()
	removed := 0
	for k := range before {
		if !after[k] {
			removed++
		}
	}
	if removed == 0 {
		t.Errorf("seed %d: the final collection removed none of our %d stale entries", seed, len(before))
	}
	if diff := cmp.Diff(want[user], snapshotOf(t, user, planted[user])); diff != "" {
		t.Fatalf("seed %d, final collection: foreign paths changed (-before +after):\n%s", seed, diff)
	}
	n := 0
	for _, names := range planted {
		n += len(names)
	}
	t.Logf("seed %d: %d steps %v, %d driver versions, %d foreign top-level paths (%d paths in all) kept byte for byte; the final collection removed %d of our entries",
		seed, steps, fmt.Sprint(ops), version+1, n, len(want[user])+len(want[sys.cache])+len(want[sys.run]), removed)
}
