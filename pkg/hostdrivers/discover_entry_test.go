package hostdrivers

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestSourcesSkipOnlyOurEntries: discovery skips a directory that is the
// lib/ of one of our cache entries, whatever origin reaches it (here
// LD_LIBRARY_PATH and ld.so.conf), and nothing else: a vendor's lib/
// beside a manifest.json of its own is searched.
func TestSourcesSkipOnlyOurEntries(t *testing.T) {
	root := t.TempDir()
	fixtures.FakeDriver(t, filepath.Join(root, "opt/vendor/lib"), "535.261.03", "amd64")
	fixtures.Write(t, filepath.Join(root, "opt/vendor/manifest.json"), `{"name": "vendor bundle", "version": 3}`)
	cache := t.TempDir()
	p, err := Prepare(&Options{Root: root, Dirs: []string{"/opt/vendor/lib"}}, cache)
	fixtures.Must(t, err)
	// The entry, seen inside the root as /var/cache/ngh/KEY.
	inside := filepath.Join(root, "var/cache/ngh")
	fixtures.Must(t, os.MkdirAll(inside, 0o755))
	fixtures.Must(t, os.Rename(p.Dir, filepath.Join(inside, filepath.Base(p.Dir))))
	entryLib := "/var/cache/ngh/" + filepath.Base(p.Dir) + "/lib"
	fixtures.Write(t, filepath.Join(root, "etc/ld.so.conf"), entryLib+"\n/opt/vendor/lib\n")

	srcs, skipped, err := sources(&Options{Root: root, LibraryPath: entryLib}, nil)
	fixtures.Must(t, err)
	var dirs []string
	for _, s := range srcs {
		dirs = append(dirs, s.Dir)
	}
	if slices.Contains(dirs, entryLib) {
		t.Errorf("our entry's lib/ is searched: %v", dirs)
	}
	if !slices.Contains(dirs, "/opt/vendor/lib") {
		t.Errorf("the vendor's lib/ (beside a manifest.json not ours) is not searched: %v; skipped %v", dirs, skipped)
	}
	if !slices.ContainsFunc(skipped, func(s Skipped) bool { return s.Path == entryLib && s.Code == SkipCacheEntry }) {
		t.Errorf("no cache-entry skip for %s: %v", entryLib, skipped)
	}
}
