package doctor

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"golang.org/x/sys/unix"
)

// cacheReport describes the cache directory dir.
func cacheReport(dir string) CacheReport {
	cr := CacheReport{Dir: dir}
	ents, err := os.ReadDir(dir)
	if err == nil {
		cr.Exists = true
		for _, e := range ents {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			cr.Entries++
			filepath.WalkDir(filepath.Join(dir, e.Name()), func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return nil
				}
				if fi, err := d.Info(); err == nil && !d.IsDir() {
					cr.Bytes += fi.Size()
				}
				return nil
			})
		}
	}
	// Prepare's own check: a refused root is neither read nor written.
	if fi, err := os.Lstat(dir); err == nil {
		if err := hostdrivers.CheckCacheRoot(dir, fi); err != nil {
			cr.Refused = err.Error()
			return cr
		}
	}
	// The nearest existing directory decides whether it can be made.
	p := dir
	for {
		if _, err := os.Stat(p); err == nil {
			cr.Writable = unix.Access(p, unix.W_OK|unix.X_OK) == nil
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	return cr
}
