package hostdrivers

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// Source is a directory searched for driver files, and why it was searched.
type Source struct {
	// Dir is the directory as a resolved path inside the root.
	Dir string
	// Origin names the discovery source (see the Origin constants).
	Origin Origin
}

// Well-known driver directories, in the order DESIGN.md gives.
var wellKnownDirs = []struct {
	dir    string
	origin Origin
}{
	{"/run/opengl-driver/lib", OriginNixOS},
	{"/usr/lib/wsl/lib", OriginWSL},
	{"/.singularity.d/libs", OriginApptainer},
	{"/usr/local/nvidia/lib64", OriginContainer},
	{"/usr/local/nvidia/lib", OriginContainer},
}

// sources returns the directories to scan for driver files, in priority
// order, each resolved inside the root and listed once (merged /usr and
// bind mounts count as one directory), and those it did not search, with
// the reason (missing, not a directory, the same directory as an earlier
// one, a nixglhost entry). With explicit Dirs, only those are returned,
// and one that is missing or not a directory is an error naming it. It
// records in w (nil: nowhere) every directory and configuration file it
// looked at.
//
// It is long because it lists the discovery sources in their priority order,
// one block each (DESIGN's order is the code's).
func sources(o *Options, w *watchSet) ([]Source, []Skipped, error) {
	root := o.root()
	log := o.logger()
	var cands []Source
	if len(o.Dirs) > 0 {
		for _, d := range o.Dirs {
			if !path.IsAbs(d) {
				return nil, nil, fmt.Errorf("driver directory %q: not an absolute path", d)
			}
			p, err := ldpath.Resolve(root, d)
			if err != nil {
				return nil, nil, fmt.Errorf("driver directory %s: %w", d, err)
			}
			fi, err := os.Stat(ldpath.HostPath(root, p))
			if err != nil {
				return nil, nil, fmt.Errorf("driver directory %s: %w", d, err)
			}
			if !fi.IsDir() {
				return nil, nil, fmt.Errorf("driver directory %s: not a directory", d)
			}
			cands = append(cands, Source{Dir: path.Clean(d), Origin: OriginFlag})
		}
	} else {
		for _, d := range ldpath.SplitLibraryPath(o.LibraryPath) {
			if d == "" || !path.IsAbs(d) {
				// An empty or relative entry means the current directory to
				// the loader; it is no place to look for a driver.
				continue
			}
			cands = append(cands, Source{Dir: d, Origin: OriginLibraryPath})
		}
		for _, w := range wellKnownDirs {
			cands = append(cands, Source{Dir: w.dir, Origin: w.origin})
		}
		// ldconfig rewrites the cache after any configuration change; the
		// configuration itself is watched for hosts that forget to.
		for _, f := range []string{"/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ld.so.cache"} {
			w.addNoFollow(ldpath.HostPath(root, f))
		}
		conf, err := ldpath.ParseConf(root, "/etc/ld.so.conf")
		if err != nil {
			log.Debug("ld.so.conf unreadable, skipped", "err", err)
		}
		for _, d := range conf {
			cands = append(cands, Source{Dir: d, Origin: OriginLdSoConf})
		}
		if c, err := ldpath.ReadCache(root, "/etc/ld.so.cache"); err != nil {
			log.Debug("ld.so.cache unreadable, skipped", "err", err)
		} else {
			t := o.target()
			for _, e := range c.Entries {
				if _, ok := catalog.Classify(e.Soname); !ok {
					continue
				}
				if e.Class != 0 && e.Class != t.Class || e.Machine != elf.EM_NONE && e.Machine != t.Machine {
					continue
				}
				cands = append(cands, Source{Dir: path.Dir(e.Path), Origin: OriginLdSoCache})
			}
		}
		t := o.target()
		for _, d := range ldpath.DefaultDirs(t.Class, t.Machine) {
			cands = append(cands, Source{Dir: d, Origin: OriginDefault})
		}
	}
	dirs := make([]string, len(cands))
	for i, c := range cands {
		dirs[i] = c.Dir
		w.addNoFollow(ldpath.HostPath(root, c.Dir))
	}
	kept, dropped := ldpath.DedupIndexed(root, dirs)
	var skipped []Skipped
	for _, d := range dropped {
		log.Debug("directory not searched", "dir", d.Dir, "reason", d.Reason)
		skipped = append(skipped, Skipped{d.Dir, d.Reason, dropCode(d)})
	}
	var out []Source
	for _, k := range kept {
		c := cands[k.Index]
		if c.Origin != OriginFlag && path.Base(k.Dir) == "lib" {
			// A nixglhost entry's lib/ (system mode's /run/opengl-driver,
			// however it is reached: the NixOS path, LD_LIBRARY_PATH, or
			// ld.so.conf and its cache on a host that registered it)
			// holds copies and links of the driver, not the driver
			// itself. Every mode skips it here, so none filters again.
			// Ours means a key-named directory whose manifest names that
			// key: a vendor's own lib/ beside some other manifest.json
			// stays a place to look.
			entry := path.Dir(k.Dir)
			w.addNoFollow(ldpath.HostPath(root, path.Join(entry, "manifest.json")))
			if isEntryDir(root, entry) {
				log.Debug("directory not searched", "dir", k.Dir, "reason", "a nixglhost cache entry, not the host's driver")
				skipped = append(skipped, Skipped{k.Dir, "a nixglhost cache entry, not the host's driver", SkipCacheEntry})
				continue
			}
		}
		out = append(out, Source{Dir: k.Dir, Origin: c.Origin})
		log.Debug("searching directory", "dir", k.Dir, "origin", c.Origin)
	}
	if len(o.Dirs) > 0 && len(out) == 0 {
		return nil, skipped, fmt.Errorf("driver directories %s: %w", strings.Join(o.Dirs, ", "), fs.ErrNotExist)
	}
	return out, skipped, nil
}

// isEntryDir reports whether dir (inside root) is a nixglhost cache entry:
// a key-named directory whose manifest names that key.
func isEntryDir(root, dir string) bool {
	if !IsKeyName(path.Base(dir)) {
		return false
	}
	m, err := ReadManifest(ldpath.HostPath(root, dir))
	return err == nil && m.Key == path.Base(dir)
}
