package main

// System mode: point RUN/opengl-driver at a self-contained cache entry, so
// that every Nix program finds the host's driver through the
// /run/opengl-driver/lib its DT_RUNPATH already names, with no wrapper and
// no environment (DESIGN.md, "A cache entry is a /run/opengl-driver").

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/cdi"
	"github.com/nixglhost/nixglhost/internal/sandbox"
	"github.com/nixglhost/nixglhost/internal/sysentry"
	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

const (
	// systemCacheDir is where system mode and the pre-build hook keep their
	// entries: owned by root, readable by every user (Nix build users too).
	systemCacheDir = "/var/cache/nix-gl-host"
	// linkBase is the name Nix programs look for in the run directory.
	linkBase = "opengl-driver"
	// link32Base is where NixOS keeps the 32-bit driver, for the 32-bit
	// programs of a 64-bit machine (Steam, Wine).
	link32Base = "opengl-driver-32"
	// lockBase serializes system-mode runs in the system cache.
	lockBase = ".system-mode.lock"
)

// systemSetup is what system mode and the hook share: the driver root, the
// system cache, and the logger.
type systemSetup struct {
	root     string
	cacheDir string
	log      *slog.Logger
	// rootDir is the system cache, opened and checked by mkCacheDir.
	rootDir *os.File
}

// newSystemSetup checks --driver-root and chooses the system cache
// (--cache-dir, else /var/cache/nix-gl-host).
func newSystemSetup(c *config, stderr io.Writer, environ []string) (*systemSetup, error) {
	s := &systemSetup{log: newLogger(c, stderr, environ)}
	root, err := driverRoot(c)
	if err != nil {
		return nil, err
	}
	s.root = root
	s.cacheDir = systemCacheDir
	if c.cacheDir != "" {
		if s.cacheDir, err = filepath.Abs(c.cacheDir); err != nil {
			return nil, fmt.Errorf("--cache-dir %s: %w", c.cacheDir, err)
		}
	}
	return s, nil
}

// prepare builds (or finds) the self-contained entry for the host's driver
// in the system cache and makes it readable by every user. The caller's
// LD_LIBRARY_PATH is not a discovery source here: the entry must not depend
// on who ran the command. A nil entry with a nil error is impossible: no
// driver is an error.
//
// target is the programs' identity, zero for this machine's; seenAt is
// where programs will see the entry (RUN/opengl-driver).
func (s *systemSetup) prepare(c *config, target elfscan.Ident, seenAt string) (*hostdrivers.Prepared, error) {
	o, err := s.options(c, target, seenAt, "")
	if err != nil {
		return nil, err
	}
	if err := s.mkCacheDir(); err != nil {
		return nil, err
	}
	return s.serve(hostdrivers.Prepare(o, s.cacheDir))
}

// serve checks an entry Prepare (or PrepareCompanion) gave in the system
// cache and makes it readable by every user.
func (s *systemSetup) serve(p *hostdrivers.Prepared, err error) (*hostdrivers.Prepared, error) {
	var noDriver *hostdrivers.NoDriverError
	if errors.As(err, &noDriver) {
		return nil, fmt.Errorf("%w under %s (run with -v to see where it looked)", noDriver, s.root)
	}
	if err != nil {
		return nil, err
	}
	if filepath.Dir(p.Dir) != s.cacheDir {
		return nil, fmt.Errorf("cache entry %s: not in the system cache %s", p.Dir, s.cacheDir)
	}
	// The hot path trusts the entry; its host files' paths may have
	// changed hands since it was built.
	if err := entryTrusted(p.Dir); err != nil {
		return nil, err
	}
	if err := sysentry.ShareTree(s.rootDir, filepath.Base(p.Dir)); err != nil {
		return nil, err
	}
	s.log.Debug("system entry", "entry", p.Dir, "driver", p.Manifest.DriverVersion, "hot", p.Hot)
	return p, nil
}

// options are the inputs of root's modes (system mode, the hook, CDI):
// their policy (a self-contained entry, seen at seenAt, its 32-bit
// companion, if the mode makes one, at companionSeenAt, built only from
// files root can trust) over the launch's own discovery, without the
// caller's LD_LIBRARY_PATH. The doctor takes the same value when asked
// about one of these modes (see rootPlaces).
func (s *systemSetup) options(c *config, target elfscan.Ident, seenAt, companionSeenAt string) (*hostdrivers.Options, error) {
	dirs, err := driverDirs(c, s.root)
	if err != nil {
		return nil, err
	}
	// Discovery is the launch's own (hostdrivers.Resolve): a directory
	// keeps the origin it was found by, and our own entries, however
	// reached, are never taken for the host's driver.
	return &hostdrivers.Options{Root: s.root, Dirs: dirs, Logger: s.log, SelfContained: true, TrustedFilesOnly: true, Target: target, Mesa: c.mesa, MesaOnly: c.mesaOnly,
		SeenAt: seenAt, CompanionSeenAt: companionSeenAt}, nil
}

// rootPlaces returns where the entry of the root mode c asks for is seen,
// and where its 32-bit companion is ("" when the mode makes none): system
// mode's RUN/opengl-driver and RUN/opengl-driver-32, the hook's sandbox
// paths, CDI's /run/opengl-driver alone. Each mode and its doctor take them
// from here.
func rootPlaces(c *config) (seenAt, companionSeenAt string, err error) {
	switch {
	case c.linkRun:
		run, err := filepath.Abs(c.runDir)
		if err != nil {
			return "", "", fmt.Errorf("--run-dir %s: %w", c.runDir, err)
		}
		return filepath.Join(run, linkBase), filepath.Join(run, link32Base), nil
	case c.hook:
		return sandbox.RunOpenGLDriver, sandbox.RunOpenGLDriver32, nil
	default:
		return cdi.RunOpenGLDriver, "", nil
	}
}

// mkCacheDir creates the system cache, readable by all, or checks the one
// there; a directory another user could have planted or can write to is
// refused before anything is changed (hostdrivers.OpenSystemRoot).
func (s *systemSetup) mkCacheDir() error {
	if s.rootDir != nil {
		return nil
	}
	f, err := hostdrivers.OpenSystemRoot(s.cacheDir)
	if err != nil {
		return fmt.Errorf("system cache: %w%s", err, rootHint(err))
	}
	s.rootDir = f
	return nil
}

// lock takes the system cache's lock (exclusive or shared) and returns the
// function that releases it.
func (s *systemSetup) lock(how int) (func(), error) {
	if err := s.mkCacheDir(); err != nil {
		return nil, err
	}
	f, err := hostdrivers.OpenLockAt(s.rootDir, lockBase)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, rootHint(err))
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// rootHint adds a word about root to permission errors.
func rootHint(err error) string {
	if errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
		return " (system mode needs root)"
	}
	return ""
}

// openRunDir opens and checks --run-dir, where the links go
// (sysentry.OpenRunDir): a directory others could use to replace them is
// refused before anything is written.
func openRunDir(c *config) (*sysentry.RunDir, error) {
	run, err := filepath.Abs(c.runDir)
	if err != nil {
		return nil, fmt.Errorf("--run-dir %s: %w", c.runDir, err)
	}
	return sysentry.OpenRunDir(run)
}

// linkRunOpenGLDriver is --link-run-opengl-driver: build the system entry
// and point RUN/opengl-driver at it with an atomic rename. It refuses a
// RUN/opengl-driver it did not make. Runs are serialized by a lock in the
// system cache; the previous entry is kept, older linked ones are removed.
//
// It is long because it is system mode's sequence (refuse, lock, prepare
// both entries, swap both links, prune), step after step; each step is a
// call.
func linkRunOpenGLDriver(c *config, stdout, stderr io.Writer, environ []string) error {
	rd, err := openRunDir(c)
	if err != nil {
		return err
	}
	defer rd.Close()
	link, link32 := rd.Link(linkBase), rd.Link(link32Base)
	s, err := newSystemSetup(c, stderr, environ)
	if err != nil {
		return err
	}
	// Refuse before building anything.
	if _, err := rd.OwnTarget(linkBase, s.cacheDir); err != nil {
		return err
	}
	unlock, err := s.lock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	prev, err := rd.OwnTarget(linkBase, s.cacheDir)
	if err != nil {
		return err
	}
	prev32, err32 := rd.OwnTarget(link32Base, s.cacheDir)
	if err32 != nil {
		fmt.Fprintf(stderr, "nixglhost: warning: %v\n", err32)
	}
	// A linked entry whose host files no longer pass is no longer
	// served, whatever this run goes on to do.
	if prev, err = dropUntrusted(stderr, rd, linkBase, s.cacheDir, prev); err != nil {
		return err
	}
	if prev32, err = dropUntrusted(stderr, rd, link32Base, s.cacheDir, prev32); err != nil {
		return err
	}
	// The 32-bit driver, where the host has one, as NixOS links it: the
	// library's companion (hostdrivers.CompanionOptions), seen at
	// RUN/opengl-driver-32 (the places rd.Link names too).
	seenAt, seenAt32, err := rootPlaces(c)
	if err != nil {
		return err
	}
	o, err := s.options(c, elfscan.Ident{}, seenAt, seenAt32)
	if err != nil {
		return err
	}
	if err := s.mkCacheDir(); err != nil {
		return err
	}
	sess := new(hostdrivers.Session)
	p, err := s.serve(sess.Prepare(o, s.cacheDir))
	if err != nil {
		return err
	}
	if err := swapRunLink(stdout, rd, linkBase, s.cacheDir, prev, p); err != nil {
		return err
	}
	cur32 := ""
	if _, ok := hostdrivers.CompanionOptions(o); ok && err32 == nil {
		p32, err := s.serve(sess.PrepareCompanion(o, s.cacheDir))
		var noDriver *hostdrivers.NoDriverError
		switch {
		case errors.As(err, &noDriver):
			if prev32 != "" {
				if _, err := rd.Unlink(link32Base, s.cacheDir); err != nil {
					return fmt.Errorf("%w%s", err, rootHint(err))
				}
				fmt.Fprintf(stdout, "removed %s: no 32-bit driver any more\n", link32)
			}
		case err != nil:
			return fmt.Errorf("the 32-bit driver: %w", err)
		default:
			if err := swapRunLink(stdout, rd, link32Base, s.cacheDir, prev32, p32); err != nil {
				return err
			}
			cur32 = p32.Dir
		}
	}
	// What each link names now, and named just before, stays; so does
	// whatever another recorded link (another run directory's) names.
	keep := []sysentry.Linked{{Link: link, Entry: filepath.Base(p.Dir)}}
	for _, l := range []sysentry.Linked{{Link: link, Entry: prev}, {Link: link32, Entry: prev32}, {Link: link32, Entry: cur32}} {
		if l.Entry != "" {
			keep = append(keep, sysentry.Linked{Link: l.Link, Entry: filepath.Base(l.Entry)})
		}
	}
	for _, gone := range sysentry.Prune(s.rootDir, keep, s.log) {
		fmt.Fprintf(stdout, "removed old entry %s\n", gone)
	}
	return nil
}

// entryTrusted checks again, as they are now, the whole paths of the host
// files the entry at dir was built from (Manifest.CheckTrusted): its links
// and the hook's and CDI's mounts are followed by path, so root's modes
// serve no entry another user could now redirect.
func entryTrusted(dir string) error {
	m, err := hostdrivers.ReadManifest(dir)
	if err != nil {
		return err
	}
	if err := m.CheckTrusted(); err != nil {
		return fmt.Errorf("cache entry %s: its host files no longer pass: %w", dir, err)
	}
	return nil
}

// dropUntrusted removes the link base of rd, ours and pointing at the
// entry cur of cacheDir ("" for none), when that entry's host files no
// longer pass (entryTrusted), and says so on stderr; it returns the link's
// target left ("" once removed). An entry whose manifest cannot be read is
// left to the rest of the run.
func dropUntrusted(stderr io.Writer, rd *sysentry.RunDir, base, cacheDir, cur string) (string, error) {
	if cur == "" {
		return "", nil
	}
	m, err := hostdrivers.ReadManifest(cur)
	if err != nil {
		return cur, nil
	}
	bad := m.CheckTrusted()
	if bad == nil {
		return cur, nil
	}
	if _, err := rd.Unlink(base, cacheDir); err != nil {
		return cur, fmt.Errorf("%w%s", err, rootHint(err))
	}
	link := rd.Link(base)
	var ue *hostdrivers.UntrustedError
	if errors.As(bad, &ue) {
		fmt.Fprintf(stderr, "nixglhost: removed %s: the entry it pointed to, %s, links to host files others could now change: %s %s\n", link, cur, ue.Path, ue.Problem)
	} else {
		fmt.Fprintf(stderr, "nixglhost: removed %s: the entry it pointed to, %s, no longer passes: %v\n", link, cur, bad)
	}
	return "", nil
}

// swapRunLink points the link base of rd (whose current target is prev, ""
// for none) at the entry p of cacheDir and says so.
func swapRunLink(stdout io.Writer, rd *sysentry.RunDir, base, cacheDir, prev string, p *hostdrivers.Prepared) error {
	link := rd.Link(base)
	driver := p.Manifest.DriverVersion
	if prev == p.Dir {
		fmt.Fprintf(stdout, "%s -> %s (NVIDIA %s): already linked\n", link, p.Dir, driver)
		return nil
	}
	if err := rd.SwapLink(base, p.Dir, cacheDir); err != nil {
		return fmt.Errorf("%w%s", err, rootHint(err))
	}
	fmt.Fprintf(stdout, "%s -> %s (NVIDIA %s)\n", link, p.Dir, driver)
	if prev != "" {
		fmt.Fprintf(stdout, "previously %s\n", prev)
	}
	return nil
}

// unlinkRunOpenGLDriver is --unlink-run-opengl-driver: remove
// RUN/opengl-driver (and RUN/opengl-driver-32) when it is ours; when
// either is not, nothing is removed. The cache entries stay.
func unlinkRunOpenGLDriver(c *config, stdout, stderr io.Writer, environ []string) error {
	rd, err := openRunDir(c)
	if err != nil {
		return err
	}
	defer rd.Close()
	s, err := newSystemSetup(c, stderr, environ)
	if err != nil {
		return err
	}
	bases := []string{linkBase, link32Base}
	for _, b := range bases {
		if _, err := rd.OwnTarget(b, s.cacheDir); err != nil {
			return err
		}
	}
	for _, b := range bases {
		cur, err := rd.Unlink(b, s.cacheDir)
		if err != nil {
			return fmt.Errorf("%w%s", err, rootHint(err))
		}
		if cur == "" {
			if b == linkBase {
				fmt.Fprintf(stdout, "%s does not exist: nothing to do\n", rd.Link(b))
			}
			continue
		}
		fmt.Fprintf(stdout, "removed %s (it pointed to %s)\n", rd.Link(b), cur)
	}
	return nil
}
