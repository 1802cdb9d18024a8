package elfscan

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// corpusResult is what TestPatchCorpus found for one file.
type corpusResult struct {
	name          string
	size, patched int64
	origLoads, ok bool
	viaRunpath    []string // libraries the patched file got from deps/
	loadErr       string
}

// TestPatchCorpus patches every ELF file of the real NVIDIA driver corpus
// and checks each result with the oracles and the real loader: the patched
// copy, with no LD_LIBRARY_PATH, must load exactly when the original loads
// with deps/ on LD_LIBRARY_PATH, and whatever it needs from the corpus it
// must find in deps/ through its new runpath.
func TestPatchCorpus(t *testing.T) {
	fixtures.SkipShort(t, "patching every file of the driver corpus")
	for _, c := range []compiler{compilerAMD64, compilerARM64} {
		t.Run(c.name, func(t *testing.T) {
			files := corpusFiles(t, c.name)
			c.need(t)
			testPatchCorpus(t, c, files)
		})
	}
}

// testPatchCorpus patches files for c's machine.
func testPatchCorpus(t *testing.T, c compiler, files []string) {
	const runpath = "$ORIGIN/../deps"
	top := t.TempDir()
	deps, lib := filepath.Join(top, "deps"), filepath.Join(top, "lib")
	for _, d := range []string{deps, lib} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// deps/ holds a copy of every corpus library patched with runpath
	// $ORIGIN, as the cache's deps/ does, under its file name and soname,
	// the current driver's first: a library found there finds its own
	// dependencies beside it.
	sort.SliceStable(files, func(i, j int) bool {
		return !strings.Contains(files[i], "/old/") && strings.Contains(files[j], "/old/")
	})
	for _, p := range files {
		in, err := Read(p)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		base := filepath.Base(p)
		if _, err := os.Lstat(filepath.Join(deps, base)); err == nil {
			continue
		}
		if err := PatchRunpath(p, filepath.Join(deps, base), "$ORIGIN"); err != nil {
			t.Fatalf("PatchRunpath: %v", err)
		}
		if in.Soname != "" && in.Soname != base {
			// The first one wins.
			if err := os.Symlink(base, filepath.Join(deps, in.Soname)); err != nil && !errors.Is(err, fs.ErrExist) {
				t.Fatal(err)
			}
		}
	}

	var mu sync.Mutex
	var results []corpusResult
	t.Cleanup(func() {
		sort.Slice(results, func(i, j int) bool { return results[i].name < results[j].name })
		var loaded, both int
		for _, r := range results {
			t.Logf("%-62s %10d -> %10d (+%d) original loads: %-5v patched loads: %-5v from deps: %s %s",
				r.name, r.size, r.patched, r.patched-r.size, r.origLoads, r.ok, strings.Join(r.viaRunpath, ","), r.loadErr)
			if r.ok {
				loaded++
			}
			if r.ok == r.origLoads {
				both++
			}
		}
		t.Logf("%s: %d files patched, %d load after patching, %d load exactly as the original", c.name, len(results), loaded, both)
	})
	for _, orig := range files {
		name := corpusName(orig)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			patched := filepath.Join(lib, strings.ReplaceAll(name, "/", "_"))
			if err := PatchRunpath(orig, patched, runpath); err != nil {
				t.Fatalf("PatchRunpath: %v", err)
			}
			defer os.Remove(patched)
			checkPatched(t, orig, patched, runpath)
			if size(t, orig) < 3<<20 {
				checkStrip(t, c, patched, runpath)
				if err := os.Remove(patched + ".stripped"); err != nil && !errors.Is(err, fs.ErrNotExist) {
					t.Fatal(err)
				}
			}
			r := corpusResult{name: name, size: size(t, orig), patched: size(t, patched)}
			r.origLoads, _, _ = c.dlopen(t, orig, "LD_LIBRARY_PATH="+deps)
			var out string
			var loaded []string
			r.ok, out, loaded = c.dlopen(t, patched)
			if !r.ok {
				r.loadErr = strings.TrimSpace(strings.TrimPrefix(out, "FAIL "))
			}
			for _, l := range loaded {
				if filepath.Dir(l) == deps || strings.HasPrefix(l, lib+"/../deps/") {
					r.viaRunpath = append(r.viaRunpath, filepath.Base(l))
				}
			}
			if r.ok != r.origLoads {
				t.Errorf("original loads: %v, patched loads: %v\n%s", r.origLoads, r.ok, out)
			}
			// What the file needs from the corpus must come from deps/.
			if r.ok {
				in, _ := Read(orig)
				for _, n := range in.Needed {
					if _, err := os.Lstat(filepath.Join(deps, n)); err == nil && !contains(r.viaRunpath, n) {
						t.Errorf("NEEDED %s is in deps/ but was not loaded from there: loaded %q", n, loaded)
					}
				}
			}
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestPatchSystemLibraries patches the libraries of this machine's
// multiarch directory (every one under 8 MB: glibc's libnss_*, systemd's,
// X's...) with a runpath too long for any slot, so that each one
// gets the new segment, and checks that every note the program headers
// reached still is (the GNU build-id, the ABI tag, the GNU property note)
// and that the result reads back. A review found 1 108 of 2 078 such files
// losing their notes when a PT_NOTE entry was taken for the new segment.
func TestPatchSystemLibraries(t *testing.T) {
	fixtures.SkipShort(t, "patching the system's libraries")
	dir := "/usr/lib/x86_64-linux-gnu"
	ents, err := os.ReadDir(dir)
	if err != nil {
		fixtures.Unavailable(t, "no %s: %v", dir, err)
	}
	out := t.TempDir()
	n := 0
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() > 8<<20 || !strings.Contains(e.Name(), ".so") || !isELF(p) {
			continue
		}
		if _, err := Read(p); err != nil {
			continue // not a dynamic ELF file we patch
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			patched := filepath.Join(out, e.Name())
			if err := PatchRunpath(p, patched, longPath); err != nil {
				t.Fatalf("PatchRunpath: %v", err)
			}
			defer os.Remove(patched)
			if _, err := Read(patched); err != nil {
				t.Fatalf("Read patched: %v", err)
			}
			if diff := cmp.Diff(phdrNotes(t, p), phdrNotes(t, patched)); diff != "" {
				t.Errorf("notes reachable through the program headers (-original +patched):\n%s", diff)
			}
		})
	}
	if n < 50 {
		fixtures.Unavailable(t, "only %d libraries in %s", n, dir)
	}
	t.Logf("%d system libraries patched", n)
}
