package hostdrivers

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
)

// Runpaths given to patched copies: a driver file finds the other driver
// files beside it and generic libraries in the hidden deps/; a generic
// library in deps/ finds its own dependencies beside it.
const (
	driverRunpath = "$ORIGIN:$ORIGIN/../deps"
	depRunpath    = "$ORIGIN"
	// A backend in a subdirectory of lib/ (gbm/, vdpau/) is loaded by a
	// path in that subdirectory, and the loader takes $ORIGIN from the
	// path as given, links unresolved: a patched backend there is a copy
	// of its own whose runpath reaches lib/ and deps/ from one level down.
	backendRunpath = "$ORIGIN/..:$ORIGIN/../../deps"
)

// Prepared is a cache entry ready to use.
type Prepared struct {
	// Dir is the entry's directory; Dir/lib goes on the library path.
	Dir string
	// Manifest describes it. On the hot path it is the summary the index
	// keeps (no Files, Deps, Missing or Skipped); ReadManifest(Dir) has
	// the whole.
	Manifest *Manifest
	// Hot is true when the entry already existed.
	Hot bool
	// Skipped lists what the scan left out (for DEBUG and --doctor).
	Skipped []Skipped
	// Warnings are problems the user should hear of even though the entry
	// is usable, such as a refused cache root that led to a fallback.
	Warnings []string
}

// Prepare finds the host driver for o and returns the cache entry for it,
// building it when it does not exist yet. The entry is looked up in
// cacheDir, then in each fallback (where an earlier launch built it when
// cacheDir was not writable), and built in the first of them that can be
// written. When no usable driver library is found the error is a
// *NoDriverError.
//
// Building happens in a temporary directory next to the final one and ends
// with a rename, the commit point: concurrent launchers (on one machine or
// sharing a home directory over NFS) never see a partial entry. A lock file
// only avoids duplicate work where flock works; when two build the same
// entry anyway, the first rename wins and the other uses it.
func Prepare(o *Options, cacheDir string, fallbacks ...string) (*Prepared, error) {
	return new(Session).Prepare(o, cacheDir, fallbacks...)
}

// Session lets the Prepare calls of one launch (the program's entry, then
// the 32-bit companion's) share their checks: the cache roots are checked
// once, and a host file that two indexes watch is stat'ed once. A Session
// lives for one launch; its zero value is ready to use.
type Session struct {
	rootsKey                 string
	dirs, existing, warnings []string
	stats                    map[string]statResult
	rootsChecked             bool
	module, moduleRoot       string
	moduleRead               bool
	// last is the index (and its path) the last Prepare used or wrote;
	// noneWatches, when it found no driver, the watches that answer holds
	// under.
	last        *index
	lastPath    string
	noneWatches []watch
	// owned caches owns' answers.
	owned map[string]bool
}

// owns reports whether the cache root cd is ours to write in (tagged, or
// adopted now: EnsureCacheRoot), once per session and root. Only the cold
// path asks: the hot path writes nothing.
func (s *Session) owns(cd string) bool {
	if s.owned == nil {
		s.owned = map[string]bool{}
	}
	ok, seen := s.owned[cd]
	if !seen {
		ok = EnsureCacheRoot(cd) == nil
		s.owned[cd] = ok
	}
	return ok
}

// statResult is a watched path's state as a session saw it.
type statResult struct {
	id     FileID
	absent bool
	err    bool
}

// Prepare is the package's Prepare, sharing the session's checks.
func (s *Session) Prepare(o *Options, cacheDir string, fallbacks ...string) (*Prepared, error) {
	log := o.logger()
	root := o.root()
	module := s.moduleVersion(root)
	dirs, existing, warnings := s.usableRoots(append([]string{cacheDir}, fallbacks...))
	// The hot path: an index whose watches all hold names the entry.
	idxName := inputsName(o)
	for _, cd := range existing {
		if !looksTagged(cd) {
			// Untagged (a cache from before tags): the cold path
			// adopts it, or refuses it, before anything is read.
			continue
		}
		idx := readIndex(filepath.Join(cd, idxName))
		if idx == nil || !idx.valid(module, s) {
			continue
		}
		// The entry was complete when it was renamed into place; that it
		// is still ours (a directory only this user can write, not a
		// link) is all that is checked.
		s.last, s.lastPath = idx, filepath.Join(cd, idxName)
		if idx.Key == noDriverKey {
			s.noneWatches = idx.Watches
			log.Debug("no driver (index)", "index", filepath.Join(cd, idxName))
			return nil, &NoDriverError{Target: o.target(), WrongArch: idx.WrongArch}
		}
		dir := filepath.Join(cd, idx.Key)
		if ownEntry(dir) == nil {
			log.Debug("cache hit (index)", "entry", dir)
			return &Prepared{Dir: dir, Manifest: idx.Summary, Hot: true, Warnings: warnings}, nil
		}
	}
	pl, err := s.resolve(o, true)
	var nd *NoDriverError
	if errors.As(err, &nd) {
		// No driver is remembered too, under the same watches.
		s.noneWatches = pl.watches
		if len(existing) > 0 && s.owns(existing[0]) {
			t := o.target()
			writeIndex(filepath.Join(existing[0], idxName), &index{Key: noDriverKey, Module: module, WrongArch: nd.WrongArch,
				Summary: &Manifest{Root: root, Class: t.Class.String(), Machine: t.Machine.String(), Reason: "no usable driver"}, Watches: pl.watches})
		}
		return nil, nd
	}
	if err != nil {
		return nil, err
	}
	key := pl.Key
	p, err := prepareKey(o, pl, existing, dirs, warnings)
	if err == nil {
		idx := &index{Key: key, Module: module, Summary: summary(p.Manifest), Watches: pl.watches}
		s.last, s.lastPath = idx, filepath.Join(filepath.Dir(p.Dir), idxName)
		if s.owns(filepath.Dir(p.Dir)) {
			writeIndex(s.lastPath, idx)
		}
	}
	return p, err
}

// PrepareCompanion prepares, after Prepare(o) gave the program its entry,
// the 32-bit companion entry for the 32-bit programs it may start (see
// Companion): o with the companion's target. It returns a *NoDriverError
// when there is no companion (not an x86-64 program, or no 32-bit driver).
// Most hosts have no 32-bit driver: the program's index then remembers
// that answer and takes on the watches it holds under (the 32-bit
// library directories, present or not), so the next launch reads no
// second index, and a 32-bit driver appearing invalidates both.
func (s *Session) PrepareCompanion(o *Options, cacheDir string, fallbacks ...string) (*Prepared, error) {
	o32, ok := CompanionOptions(o)
	if !ok {
		return nil, &NoDriverError{Target: o.target()}
	}
	main, mainPath := s.last, s.lastPath
	if main != nil && main.CompanionNone {
		o.logger().Debug("no 32-bit driver (the program's index)", "index", mainPath)
		return nil, &NoDriverError{Target: o32.Target}
	}
	if main != nil && main.Key != noDriverKey {
		o32.VDPAUPeer = VDPAUPeer(o32, filepath.Join(filepath.Dir(mainPath), main.Key))
	}
	s.noneWatches = nil
	p, err := s.Prepare(o32, cacheDir, fallbacks...)
	var nd *NoDriverError
	if errors.As(err, &nd) && main != nil && main.Key != noDriverKey && s.noneWatches != nil && s.owns(filepath.Dir(mainPath)) {
		m := *main
		m.CompanionNone = true
		m.Watches = unionWatches(main.Watches, s.noneWatches)
		writeIndex(mainPath, &m)
	}
	return p, err
}

// CompanionOptions returns the inputs of the 32-bit companion entry of
// o's entry: o for the companion's target (Companion), seen at
// CompanionSeenAt. Every mode that makes a companion (the launch, system
// mode) and the doctor take it from here. ok is false when o's target has
// no companion.
func CompanionOptions(o *Options) (*Options, bool) {
	t, ok := Companion(o.target())
	if !ok {
		return nil, false
	}
	o32 := *o
	o32.Target = t
	o32.SeenAt, o32.CompanionSeenAt = o.CompanionSeenAt, ""
	return &o32, true
}

// unionWatches returns ws followed by the watches of more it lacks. Two
// watches of one path that disagree (it changed between the two looks)
// are both kept: the index is then never valid, and the next launch scans.
func unionWatches(ws, more []watch) []watch {
	have := make(map[watch]bool, len(ws))
	for _, w := range ws {
		have[w] = true
	}
	out := append([]watch(nil), ws...)
	for _, w := range more {
		if !have[w] {
			have[w] = true
			out = append(out, w)
		}
	}
	return out
}

// moduleVersion is ModuleVersion, read once per session for the same root.
func (s *Session) moduleVersion(root string) string {
	if !s.moduleRead || s.moduleRoot != root {
		s.module, s.moduleRoot, s.moduleRead = ModuleVersion(root), root, true
	}
	return s.module
}

// usableRoots is usableRoots, once per session for the same candidates.
func (s *Session) usableRoots(candidates []string) (dirs, existing, warnings []string) {
	key := strings.Join(candidates, "\x00")
	if !s.rootsChecked || s.rootsKey != key {
		s.dirs, s.existing, s.warnings = usableRoots(candidates)
		s.rootsKey, s.rootsChecked = key, true
	}
	return s.dirs, s.existing, s.warnings
}

// usableRoots returns the cache roots to use, in order, those of them that
// existed when they were checked (the only ones read), and a warning for
// each one refused. A root is refused when another user could have planted
// it or can write into it or swap it (CheckCacheRoot, CheckAncestors); it is
// never read then. A fallback is used only when the roots before it are
// unusable: one that exists and is writable ends the list, so a later
// fallback (the per-user directory under /tmp, which another user may have
// squatted or be racing) is not even looked at. One that does not exist
// and can be created is where the entry will be built, but EnsureCacheRoot
// may still refuse it then (another user created its missing parent in
// between: TestMissingParentRace): the next usable fallback follows it, as
// a place to build only, never read.
func usableRoots(candidates []string) (dirs, existing, warnings []string) {
	buildOnly := false
	// Why each absent root cannot be made: said only when no root is
	// usable (the launch then fails), as a fallback that serves is not a
	// fault.
	var unmakeable []string
	for _, cd := range candidates {
		if err := CheckAncestors(cd); err != nil {
			if !buildOnly {
				warnings = append(warnings, err.Error())
			}
			continue
		}
		fi, err := os.Lstat(cd)
		switch {
		case err == nil:
			if err := CheckCacheRoot(cd, fi); err != nil {
				if !buildOnly {
					warnings = append(warnings, err.Error())
				}
				continue
			}
			dirs = append(dirs, cd)
			if !buildOnly {
				existing = append(existing, cd)
			}
			if unix.Access(cd, unix.W_OK|unix.X_OK) == nil {
				return dirs, existing, warnings
			}
		case errors.Is(err, fs.ErrNotExist):
			// Nothing to read there (whatever appears there later is
			// not read); it is a place to build if it can be made, and
			// EnsureCacheRoot checks it again when it is.
			err := creatable(cd)
			if err == nil {
				if buildOnly {
					return append(dirs, cd), existing, warnings
				}
				dirs = append(dirs, cd)
				buildOnly = true
				continue
			}
			unmakeable = append(unmakeable, err.Error())
		default:
			if !buildOnly {
				warnings = append(warnings, fmt.Sprintf("cache directory %s: %v", cd, err))
			}
		}
	}
	if len(dirs) == 0 {
		warnings = append(warnings, unmakeable...)
	}
	return dirs, existing, warnings
}

// creatable returns nil when dir's nearest existing ancestor is a
// directory this user can write, so that dir can be made, else why not.
func creatable(dir string) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("cache directory %s cannot be made: %s is not a directory", dir, p)
			}
			if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
				return fmt.Errorf("cache directory %s cannot be made in %s: %w", dir, p, err)
			}
			return nil
		}
		if p == filepath.Dir(p) {
			return fmt.Errorf("cache directory %s cannot be made: no ancestor of it exists", dir)
		}
	}
}

// ownEntry checks that dir is a complete cache entry this user owns: a
// real directory (not a link), writable by no one else, holding a regular
// manifest.json.
func ownEntry(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if err := CheckCacheRoot(dir, fi); err != nil {
		return fmt.Errorf("cache entry: %w", err)
	}
	mf, err := os.Lstat(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return err
	}
	if !mf.Mode().IsRegular() {
		return fmt.Errorf("cache entry %s: manifest.json is not a regular file", dir)
	}
	return nil
}

// NoDriverError says that no usable driver library was found for the
// program, and what was found for other architectures.
type NoDriverError struct {
	// Target is the program's architecture.
	Target elfscan.Ident
	// WrongArch are the driver files skipped for another architecture.
	WrongArch []Skipped
}

func (e *NoDriverError) Error() string {
	if len(e.WrongArch) == 0 {
		return "no NVIDIA driver found"
	}
	return fmt.Sprintf("no NVIDIA driver found for %s %s programs: %d driver files are for another architecture (%s: %s); point -d at the driver for the program's architecture (32-bit libraries live in i386-linux-gnu or lib32)",
		e.Target.Class, e.Target.Machine, len(e.WrongArch), e.WrongArch[0].Path, e.WrongArch[0].Reason)
}

// prepareKey returns the entry key from the first existing cache root that
// has it, or builds it in the first of dirs that can be written.
func prepareKey(o *Options, pl *Plan, existing, dirs, warnings []string) (*Prepared, error) {
	log := o.logger()
	key, skipped := pl.Key, pl.Scanned
	for _, cd := range existing {
		if !looksTagged(cd) {
			// Adopted (tagged) by buildIn, or refused, first.
			continue
		}
		dir := filepath.Join(cd, key)
		m, err := ReadManifest(dir)
		if err == nil && m.Key == key {
			// An entry this user does not own alone is not used.
			if err = ownEntry(dir); err == nil {
				log.Debug("cache hit", "entry", dir)
				return &Prepared{Dir: dir, Manifest: m, Hot: true, Skipped: skipped, Warnings: warnings}, nil
			}
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			if _, oerr := OwnedEntry(cd, key); oerr == nil {
				// Ours but spoiled (others can write it): a miss,
				// moved aside and built anew.
				log.Debug("cache entry unusable, rebuilding", "entry", dir, "err", err)
				discard(dir)
			} else {
				// Not provably ours (invariant 4): left alone, and
				// buildIn refuses to build over it.
				log.Debug("cache entry unusable", "entry", dir, "err", err)
			}
		}
	}
	var errs []error
	for _, cd := range dirs {
		p, err := buildIn(o, cd, pl)
		if err == nil {
			p.Warnings = warnings
			for _, e := range errs {
				// A root refused as not ours is the user's to fix:
				// say so even though a fallback served.
				if errors.As(e, new(*NotOursError)) {
					p.Warnings = append(p.Warnings, e.Error())
				}
			}
			return p, nil
		}
		var ue *unwritableError
		if !errors.As(err, &ue) {
			return nil, err
		}
		log.Debug("cache directory not usable, trying the next", "dir", cd, "err", err)
		errs = append(errs, err)
	}
	for _, w := range warnings {
		errs = append(errs, errors.New(w))
	}
	return nil, fmt.Errorf("no usable cache directory (pass --cache-dir DIR on a writable file system): %w", errors.Join(errs...))
}

// unwritableError marks a cache directory that cannot take a new entry
// (read-only, full, or refused by CheckCacheRoot), so the next is tried.
type unwritableError struct{ err error }

func (e *unwritableError) Error() string { return e.err.Error() }
func (e *unwritableError) Unwrap() error { return e.err }

// buildIn builds the entry key under the cache root cd.
func buildIn(o *Options, cd string, pl *Plan) (*Prepared, error) {
	log := o.logger()
	key, skipped := pl.Key, pl.Scanned
	if err := EnsureCacheRoot(cd); err != nil {
		return nil, &unwritableError{err}
	}
	dir := filepath.Join(cd, key)
	unlock := lockEntry(cd, key, log)
	defer unlock()
	// Someone may have finished it while we waited for the lock.
	if m, err := ReadManifest(dir); err == nil && m.Key == key && ownEntry(dir) == nil {
		log.Debug("cache entry built by another launcher meanwhile", "entry", dir)
		return &Prepared{Dir: dir, Manifest: m, Hot: true, Skipped: skipped}, nil
	}
	if _, err := os.Lstat(dir); err == nil {
		if _, err := OwnedEntry(cd, key); err != nil {
			return nil, fmt.Errorf("%s is in the way of the cache entry nixglhost would build there, and nixglhost cannot prove it made it (%v): it is left alone; move it away, or pass --cache-dir with another directory", dir, err)
		}
	}
	collectGarbage(cd, key, log)
	tmp, err := os.MkdirTemp(cd, tmpPrefix(key))
	if err != nil {
		return nil, &unwritableError{fmt.Errorf("cache directory %s: %w", cd, err)}
	}
	if err := os.WriteFile(filepath.Join(tmp, buildMark), nil, 0o600); err != nil {
		os.Remove(tmp)
		return nil, &unwritableError{fmt.Errorf("cache directory %s: %w", cd, err)}
	}
	o.hook("tmpdir")
	m, err := build(o, tmp, pl)
	if err == nil {
		// The manifest proves the directory ours from here on.
		err = os.Remove(filepath.Join(tmp, buildMark))
	}
	if err != nil {
		os.RemoveAll(tmp)
		if isNoSpace(err) {
			return nil, &unwritableError{fmt.Errorf("cache directory %s: %w", cd, err)}
		}
		return nil, err
	}
	m.Skipped = append(skipped, m.Skipped...)
	// Durable before it is visible: after a power cut the hot path must
	// not find a renamed entry whose patched files or manifest are empty.
	if err := syncTree(tmp); err != nil {
		os.RemoveAll(tmp)
		if isNoSpace(err) {
			return nil, &unwritableError{fmt.Errorf("cache directory %s: %w", cd, err)}
		}
		return nil, fmt.Errorf("cache entry %s: %w", tmp, err)
	}
	o.hook("rename")
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		// Another launcher renamed the same entry into place first.
		if m2, err2 := ReadManifest(dir); err2 == nil && m2.Key == key && ownEntry(dir) == nil {
			log.Debug("cache entry built concurrently by another launcher", "entry", dir)
			return &Prepared{Dir: dir, Manifest: m2, Hot: true, Skipped: skipped}, nil
		}
		return nil, fmt.Errorf("cache entry %s: %w", dir, err)
	}
	syncDir(cd)
	log.Debug("cache entry built", "entry", dir, "driver", m.DriverVersion, "files", len(m.Files), "deps", len(m.Deps))
	return &Prepared{Dir: dir, Manifest: m, Skipped: skipped}, nil
}

// discard moves a bad entry out of the way (a rename, so it is atomic for
// readers) and removes it.
// Only an entry proved ours (OwnedEntry) is discarded; its manifest goes
// last (removeOurs), so a discard that stops half way leaves a directory
// the collector can still prove ours.
func discard(dir string) {
	bad := filepath.Join(filepath.Dir(dir), ".trash-"+filepath.Base(dir)+"-"+fmt.Sprint(os.Getpid()))
	if err := unix.Renameat2(unix.AT_FDCWD, dir, unix.AT_FDCWD, bad, unix.RENAME_NOREPLACE); err == nil {
		removeOurs(bad)
	}
}

// shimDir is where a shim's host file is linked, under deps/: the shim
// in lib/ names it as $ORIGIN/../deps/plugins/NAME, so that the entry
// works wherever it is seen (/run/opengl-driver too), and the links that
// the pre-build hook and the CDI spec follow include it.
const shimDir = "plugins"

// writeShim makes lib/NAME (dst) a shim of the host file hp for f (see
// markChained): hp linked as deps/plugins/NAME, loaded by the shim's
// first DT_NEEDED, then f.Preload; the shim's DT_RPATH is a copy's.
func writeShim(deps, hp, dst string, f *DriverFile) error {
	dir := filepath.Join(deps, shimDir)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := os.Symlink(hp, filepath.Join(dir, f.Base)); err != nil {
		return err
	}
	needed := append([]string{"$ORIGIN/../deps/" + shimDir + "/" + f.Base}, f.Preload...)
	return elfscan.WriteShim(hp, dst, needed, driverRunpath)
}

// backendLinks are the backends NVIDIA's installer makes.
var backendLinks = []backendLink{
	{"gbm", "nvidia-drm_gbm.so", "libnvidia-allocator.so.1"},
	{"vdpau", "libvdpau_nvidia.so.1", "libvdpau_nvidia.so.1"},
}
