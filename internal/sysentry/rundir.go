package sysentry

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// RunDir is a run directory (/run, or --run-dir) held open after it was
// checked: the links system mode makes there are read, made, renamed and
// removed relative to this descriptor, never through a path looked up
// again.
type RunDir struct {
	f *os.File
	// Path is the directory's absolute path, as it was checked: for
	// messages and for the record of what was linked.
	Path string
}

// OpenRunDir opens the run directory path (absolute) without following a
// link and refuses, before anything is written there, one that another
// user could use to replace what nixglhost links there: a symbolic link,
// a directory owned by neither root nor the caller, one that others can
// write to without the sticky bit (in a sticky one, others cannot move or
// remove root's link; a name they create first is refused by OwnTarget),
// and one whose parents fail hostdrivers.CheckAncestors.
func OpenRunDir(path string) (*RunDir, error) {
	path = filepath.Clean(path)
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("run directory %s: not an absolute path", path)
	}
	if err := hostdrivers.CheckAncestors(path); err != nil {
		return nil, fmt.Errorf("run directory %s: %w", path, err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			hint := ""
			if real, err := filepath.EvalSymlinks(path); err == nil {
				hint = ", " + real
			}
			return nil, fmt.Errorf("run directory %s is a symbolic link, which nixglhost does not follow: give the directory itself%s", path, hint)
		}
		return nil, fmt.Errorf("run directory %s: not a directory", path)
	}
	if err != nil {
		return nil, fmt.Errorf("run directory %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	fi, err := f.Stat()
	if err == nil {
		err = checkRunDir(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &RunDir{f: f, Path: path}, nil
}

// checkRunDir refuses a run directory that others could use to replace
// the link nixglhost makes in it.
func checkRunDir(path string, fi fs.FileInfo) error {
	uid := ownerOf(fi)
	switch {
	case uid != 0 && uid != os.Geteuid():
		return fmt.Errorf("run directory %s belongs to uid %d, who could replace the link nixglhost makes there: give a directory owned by root", path, uid)
	case fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0:
		return fmt.Errorf("run directory %s is writable by others (mode %s) and not sticky: they could replace the link nixglhost makes there; run chmod go-w %s (or chmod +t %s), or give another run directory", path, hostdrivers.ModeString(fi.Mode()), path, path)
	}
	return nil
}

// Close releases the directory.
func (r *RunDir) Close() error { return r.f.Close() }

// Link returns the path of the name base in the run directory.
func (r *RunDir) Link(base string) string { return filepath.Join(r.Path, base) }

// OwnTarget returns the entry the link base points at when the link is
// nixglhost's: a symbolic link of the caller's to a name with an entry's
// shape (hostdrivers.IsKeyName) directly in cacheDir, complete or not. It
// returns "" when there is no such name, and otherwise an error that names
// the link and says why it is left alone.
func (r *RunDir) OwnTarget(base, cacheDir string) (string, error) {
	link := r.Link(base)
	var st unix.Stat_t
	err := unix.Fstatat(int(r.f.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", link, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return "", fmt.Errorf("%s is a %s, not a link nixglhost made (NixOS manages its own /run/opengl-driver): leaving it alone", link, fileKind(st.Mode))
	}
	if int(st.Uid) != os.Geteuid() {
		return "", fmt.Errorf("%s belongs to uid %d, not a link nixglhost made: leaving it alone; remove it yourself if it should go", link, st.Uid)
	}
	t, err := readlinkAt(int(r.f.Fd()), base)
	if err != nil {
		return "", fmt.Errorf("%s: %w", link, err)
	}
	return entryOf(link, t, cacheDir)
}

// entryOf returns the entry of cacheDir that target, read from link, names,
// or an error saying that it names none.
func entryOf(link, target, cacheDir string) (string, error) {
	abs := target
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(filepath.Dir(link), abs)
	}
	abs = filepath.Clean(abs)
	caches := []string{cacheDir}
	if r, err := filepath.EvalSymlinks(cacheDir); err == nil && r != cacheDir {
		caches = append(caches, r)
	}
	for _, cd := range caches {
		if filepath.Dir(abs) != cd {
			continue
		}
		if !hostdrivers.IsKeyName(filepath.Base(abs)) {
			return "", fmt.Errorf("%s points to %s, not an entry of nixglhost's system cache %s: leaving it alone", link, target, cacheDir)
		}
		return filepath.Join(cacheDir, filepath.Base(abs)), nil
	}
	hint := ""
	if strings.HasPrefix(abs, "/nix/store/") {
		hint = " (NixOS's own graphics drivers?)"
	}
	return "", fmt.Errorf("%s points to %s, outside nixglhost's system cache %s%s: leaving it alone", link, target, cacheDir, hint)
}

// SwapLink points the link base at entry, a directory of cacheDir, so
// that the link always names a complete entry. It refuses, changing
// nothing, when the name is there and not nixglhost's link (OwnTarget).
// When the name is free, the link is made there at once (an atomic
// symlinkat that never replaces what appeared meanwhile); otherwise a new
// link under a fresh name is renamed over it. That temporary link is
// removed on failure only while it is still the one made here.
func (r *RunDir) SwapLink(base, entry, cacheDir string) error {
	link := r.Link(base)
	if filepath.Dir(entry) != cacheDir || !hostdrivers.IsKeyName(filepath.Base(entry)) {
		return fmt.Errorf("%s: %s is not an entry of the system cache %s", link, entry, cacheDir)
	}
	cur, err := r.OwnTarget(base, cacheDir)
	if err != nil {
		return err
	}
	fd := int(r.f.Fd())
	if cur == "" {
		err := unix.Symlinkat(entry, fd, base)
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%s appeared while nixglhost was making it: leaving it alone; run again", link)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", link, err)
		}
		return nil
	}
	var tmp string
	for range 16 {
		name := fmt.Sprintf(".%s.nixglhost-%d-%016x", base, os.Getpid(), rand.Uint64())
		err = unix.Symlinkat(entry, fd, name)
		if err == nil {
			tmp = name
			break
		}
		if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%s: %w", r.Link(name), err)
		}
	}
	if tmp == "" {
		return fmt.Errorf("%s: no free temporary name beside it: %w", link, err)
	}
	if err := unix.Renameat(fd, tmp, fd, base); err != nil {
		r.removeOwnLink(tmp, entry)
		return fmt.Errorf("%s: %w", link, err)
	}
	return nil
}

// removeOwnLink removes the link name when it is still a symbolic link of
// the caller's to target, the one made here.
func (r *RunDir) removeOwnLink(name, target string) {
	fd := int(r.f.Fd())
	var st unix.Stat_t
	if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK || int(st.Uid) != os.Geteuid() {
		return
	}
	if t, err := readlinkAt(fd, name); err == nil && t == target {
		unix.Unlinkat(fd, name, 0)
	}
}

// Unlink removes the link base when it is nixglhost's (OwnTarget) and
// returns the entry it pointed to: "" when there was no link, an error
// naming it, with nothing removed, when it is not ours.
func (r *RunDir) Unlink(base, cacheDir string) (string, error) {
	cur, err := r.OwnTarget(base, cacheDir)
	if err != nil || cur == "" {
		return "", err
	}
	if err := unix.Unlinkat(int(r.f.Fd()), base, 0); err != nil {
		return "", fmt.Errorf("%s: %w", r.Link(base), err)
	}
	return cur, nil
}

// readlinkAt reads the symbolic link name in the directory dirfd.
func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size >= 1<<16 {
			return "", unix.ENAMETOOLONG
		}
	}
}

// fileKind names the kind of file a stat mode says.
func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFREG:
		return "regular file"
	default:
		return "special file"
	}
}
