package hostdrivers

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/heldfile"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// EnsureCacheRoot creates the cache root dir (mode 0700, parents too) or
// checks the one that exists, and makes sure it is ours. It must be a
// directory, not a symlink, owned by the effective user, and writable by no
// one else, below parents that pass CheckAncestors; each missing parent is
// created from its checked parent's descriptor and checked in turn. It must
// carry nixglhost's CACHEDIR.TAG, or be empty or hold only what nixglhost
// makes, in which case it is tagged now; a directory holding anything else
// is refused with a *NotOursError before anything is written there. An
// explicit location that is a symlink is the caller's to resolve first
// (filepath.EvalSymlinks): one found here was not expected. The error names
// the path and the fix.
func EnsureCacheRoot(dir string) error {
	f, err := openRoot(dir, 0o700)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := claimRoot(f, filepath.Clean(dir)); err != nil {
		return err
	}
	// Used by name from here on: every component was checked to be
	// root's or ours and closed to others, so the name still leads here.
	if !heldfile.Same(f, dir) {
		return fmt.Errorf("cache directory %s was replaced while nixglhost was checking it", dir)
	}
	return nil
}

// CheckCacheRoot refuses a cache root that another user could have planted
// or can write into.
func CheckCacheRoot(dir string, fi fs.FileInfo) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("cache directory %s is a symbolic link; remove it or pass --cache-dir with the real path", dir)
	case !fi.IsDir():
		return fmt.Errorf("cache directory %s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("cache directory %s belongs to uid %d, not to you (uid %d); pass --cache-dir with a directory of yours", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("cache directory %s is writable by others (mode %s); run chmod go-w %s", dir, ModeString(fi.Mode()), dir)
	}
	return nil
}

// isNoSpace reports whether err comes from a full or read-only file system
// or an exhausted quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EDQUOT)
}

// Temporary build directories are named .tmp-KEY-HOST-PID-RANDOM, so a later
// launch can tell an abandoned one (its process is gone) on the same host.
func tmpPrefix(key string) string {
	return fmt.Sprintf(".tmp-%s-%s-%d-", key[:12], hostName(), os.Getpid())
}

// abandonAfter is how old a temporary directory of another host must be
// before it counts as abandoned: far longer than any build takes.
const abandonAfter = time.Hour

// staleAfter is how old an entry whose driver is gone (a driver upgrade)
// must be before it is removed: a job started before the upgrade may still
// be using it.
const staleAfter = 24 * time.Hour

// foreignAfter is how old an entry built by another machine (sharing the
// cache over NFS) must be before this one removes it.
const foreignAfter = 30 * 24 * time.Hour

// hostName names this machine in temporary directory names and manifests,
// without the characters those names use as separators.
func hostName() string {
	h, _ := os.Hostname()
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '/' {
			return '_'
		}
		return r
	}, h)
}

// maxEntries bounds the number of entries kept; past it the oldest stale
// ones go first, but never one built within the last hour.
const maxEntries = 16

// Removal is one thing the garbage collector removed (or, in a dry run,
// would remove) from a cache root, and why.
type Removal struct {
	// Path is what was removed.
	Path string
	// Why says why it could go.
	Why string
}

// collectGarbage removes, under the cache root, temporary directories whose
// builder died, and entries whose host driver files changed or disappeared
// (a driver upgrade), once they are old enough that no running launch can
// still be using them. It runs only on the cold path (and for --cache-gc).
//
// It removes only what nixglhost provably made (invariant 4): a directory
// or file whose name has the shape we give it and whose kind matches, and,
// for an entry, a manifest of ours naming that key (OwnedEntry). Anything
// else in the root is left alone, whatever its age, and not reported.
func collectGarbage(root, keep string, log *slog.Logger) []Removal {
	return collect(root, keep, time.Now(), false, log)
}

// collect is collectGarbage at the time now; with dryRun it only reports.
func collect(root, keep string, now time.Time, dryRun bool, log *slog.Logger) []Removal {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	host := hostName()
	type entry struct {
		path string
		age  time.Duration
		why  string
	}
	var stale []entry
	var out []Removal
	remove := func(p, why string, rm func(string)) {
		log.Debug("cache garbage", "path", p, "why", why, "dry-run", dryRun)
		out = append(out, Removal{p, why})
		if !dryRun {
			rm(p)
		}
	}
	rmFile := func(p string) { os.Remove(p) }
	rmTree := func(p string) { removeOurs(p) }
	count := 0
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(root, name)
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		age := now.Sub(fi.ModTime())
		switch {
		case ourScratch(name, fi.Mode()):
			// Locks and index temporaries are left after a crash; an
			// index is kept (it is how the hot path finds an entry).
			if (lockShape.MatchString(name) || tmpIdxShape.MatchString(name)) && age > abandonAfter && ourScratchFile(p, fi) {
				remove(p, "a lock or temporary file unused for "+age.Round(time.Minute).String(), rmFile)
			}
		case fi.IsDir() && (tmpShape.MatchString(name) || trashShape.MatchString(name)):
			if abandoned(name, host, age) && ourScratchDir(root, name) {
				remove(p, "a temporary directory whose builder is gone", rmTree)
			}
		case name == keep, !fi.IsDir(), !IsKeyName(name):
		default:
			m, err := OwnedEntry(root, name)
			if err != nil {
				// Not provably ours: left alone, and not counted.
				continue
			}
			count++
			switch {
			case m.Host != "" && m.Host != host:
				// Another node's, on a shared home directory: its files
				// cannot be checked from here, and a job there may be
				// using it; only a very old one goes.
				if age > foreignAfter {
					remove(p, fmt.Sprintf("built by another machine (%s) %s ago", m.Host, age.Round(time.Hour)), discard)
					count--
				}
			case !m.current():
				stale = append(stale, entry{p, age, "its host driver files changed or are gone (a driver upgrade)"})
			}
		}
	}
	for _, s := range stale {
		if s.age > staleAfter || count > maxEntries && s.age > time.Hour {
			remove(s.path, fmt.Sprintf("%s, and it is %s old", s.why, s.age.Round(time.Minute)), discard)
			count--
		}
	}
	return out
}

// abandoned reports whether a temporary directory's builder is gone: its
// pid is not alive on this host, or it is older than abandonAfter.
func abandoned(name, host string, age time.Duration) bool {
	if age > abandonAfter {
		return true
	}
	// .tmp-KEY-HOST-PID-RANDOM (a .trash-KEY-PID is never in use)
	if !strings.HasPrefix(name, ".tmp-") {
		return true
	}
	parts := strings.Split(name, "-")
	if len(parts) < 5 || parts[2] != host {
		return false
	}
	pid, err := strconv.Atoi(parts[3])
	if err != nil || pid <= 0 {
		return false
	}
	return unix.Kill(pid, 0) == unix.ESRCH
}

// current reports whether every host file the entry was built from is
// still there with the same identity.
func (m *Manifest) current() bool {
	check := func(real string, id FileID) bool {
		fi, err := os.Stat(filepath.Join(m.Root, real))
		return err == nil && fileID(fi) == id
	}
	for _, f := range m.Files {
		if !check(f.Real, f.ID) {
			return false
		}
	}
	return true
}

// lockEntry takes an exclusive flock on CACHE/.lock-KEY so that launchers
// on one machine build an entry once; the others wait for it. Where flock
// is not available (some NFS setups) or the holder takes longer than a
// build should, it gives up waiting: correctness rests on the rename.
func lockEntry(root, key string, log *slog.Logger) func() {
	p := filepath.Join(root, ".lock-"+key)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return func() {}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			log.Debug("building without the lock", "lock", p, "err", err)
			f.Close()
			return func() {}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return func() {
		f.Close()
	}
}

// CheckAncestors refuses a cache root whose path another user could
// redirect. Every directory above dir, and every symbolic link on the way
// (with the directories it leads through), must belong to root or to the
// effective user, and a directory must be writable by no one else unless
// it is sticky (/tmp), where others cannot move what is not theirs. The
// check runs from / down, so each link is read from a checked directory.
// A parent that does not exist yet is not an error: it will be created by
// this user, below the last one checked. See docs/DESIGN.md, "Shared
// machines".
func CheckAncestors(dir string) error {
	dir = filepath.Clean(dir)
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("cache directory %s: not an absolute path", dir)
	}
	return checkChain(filepath.Dir(dir), os.Geteuid(), 0)
}

// checkChain checks p and each directory above it (see CheckAncestors).
func checkChain(p string, uid, depth int) error {
	if depth > 16 {
		return fmt.Errorf("cache directory parent %s: too many levels of symbolic links", p)
	}
	cur := "/"
	fi, err := os.Lstat(cur)
	if err != nil {
		return fmt.Errorf("cache directory parent /: %w", err)
	}
	if err := trustedDir(cur, fi, uid); err != nil {
		return err
	}
	for _, name := range strings.Split(strings.TrimPrefix(filepath.Clean(p), "/"), "/") {
		if name == "" {
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cache directory parent %s: %w", next, err)
		}
		if err := trustedOwner(next, fi, uid); err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(next)
			if err != nil {
				return fmt.Errorf("cache directory parent %s: %w", next, err)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target)
			}
			if err := checkChain(target, uid, depth+1); err != nil {
				return err
			}
			if cur, err = filepath.EvalSymlinks(target); err != nil {
				return fmt.Errorf("cache directory parent %s: %w", next, err)
			}
			continue
		}
		if err := trustedDir(next, fi, uid); err != nil {
			return err
		}
		cur = next
	}
	return nil
}

// trustedOwner refuses a path component that belongs to neither root nor
// uid: its owner could replace what lies below it.
func trustedOwner(p string, fi fs.FileInfo, uid int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 || int(st.Uid) == uid {
		return nil
	}
	return fmt.Errorf("cache directory parent %s belongs to uid %d, who could move or replace the cache below it; use a cache directory under a path only you and root control (--cache-dir or XDG_CACHE_HOME)", p, st.Uid)
}

// trustedDir refuses a directory that is not one, or that others can write
// without the sticky bit.
func trustedDir(p string, fi fs.FileInfo, uid int) error {
	if err := trustedOwner(p, fi, uid); err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("cache directory parent %s is not a directory", p)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("cache directory parent %s is writable by others (mode %s) and not sticky: they could swap the cache directory; run chmod go-w %s, or use another cache directory", p, ModeString(fi.Mode()), p)
	}
	return nil
}

// OpenSystemRoot opens the cache root of a root mode (system mode, the Nix
// pre-build hook), creating it with mode 0755 when it is missing (and its
// missing parents, 0755, each from its checked parent's descriptor). It
// refuses, before it changes anything, a root that is not ours (see
// EnsureCacheRoot: tagged, or empty or holding only what nixglhost makes), a root that is a symbolic link, not
// a directory, owned by another user, or writable by anyone else (a
// mode-1777 directory included: another user could have planted entries
// there), and one whose parents fail CheckAncestors. Only then does it add
// the read and search bits that every user (Nix build users too) needs,
// with fchmod on the directory it opened, never by name. The caller keeps
// the returned directory open for OpenLockAt. See docs/DESIGN.md, "Shared
// machines".
func OpenSystemRoot(dir string) (*os.File, error) {
	dir = filepath.Clean(dir)
	f, err := openRoot(dir, 0o755)
	if err != nil {
		return nil, err
	}
	if err := claimRoot(f, dir); err != nil {
		f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cache directory %s: %w", dir, err)
	}
	if perm := fi.Mode().Perm(); perm&0o555 != 0o555 {
		if err := unix.Fchmod(int(f.Fd()), uint32(perm|0o555)); err != nil {
			f.Close()
			return nil, fmt.Errorf("cache directory %s: %w", dir, err)
		}
	}
	return f, nil
}

// OpenLockAt opens (creating it, mode 0644) the lock file name in the
// directory d, relative to d's descriptor and without following a
// symbolic link, and checks that it is a regular file of this user's.
func OpenLockAt(d *os.File, name string) (*os.File, error) {
	p := filepath.Join(d.Name(), name)
	fd, err := unix.Openat(int(d.Fd()), name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("lock %s is a symbolic link; remove it", p)
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	fi, err := f.Stat()
	if err == nil {
		st, ok := fi.Sys().(*syscall.Stat_t)
		switch {
		case !fi.Mode().IsRegular():
			err = errors.New("not a regular file")
		case ok && int(st.Uid) != os.Geteuid():
			err = fmt.Errorf("belongs to uid %d", st.Uid)
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return f, nil
}

// Covers checks that hostPath (a path outside the entry that one of its
// links leads to) resolves to one of the files m was built from, with the
// identity recorded then: the pre-build hook binds such paths into the
// sandbox, and must bind nothing else, even if a link in the entry was
// replaced after it was built.
func (m *Manifest) Covers(hostPath string) error {
	r, err := filepath.EvalSymlinks(hostPath)
	if err != nil {
		return fmt.Errorf("%s: %w", hostPath, err)
	}
	check := func(real string, id FileID) (bool, error) {
		hp := ldpath.HostPath(m.Root, real)
		if hp != r {
			if rr, err := filepath.EvalSymlinks(hp); err != nil || rr != r {
				return false, nil
			}
		}
		fi, err := os.Stat(r)
		if err != nil {
			return true, fmt.Errorf("%s: %w", r, err)
		}
		if fileID(fi) != id {
			return true, fmt.Errorf("%s changed since the cache entry was built", r)
		}
		return true, nil
	}
	for _, f := range m.Files {
		if ok, err := check(f.Real, f.ID); ok {
			return err
		}
	}
	for _, d := range m.Deps {
		if ok, err := check(d.Real, d.ID); ok {
			return err
		}
	}
	return fmt.Errorf("%s leads to %s, which is none of the files the cache entry was built from", hostPath, r)
}
