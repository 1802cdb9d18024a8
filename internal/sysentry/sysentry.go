// Package sysentry manages what system mode shares with every program on
// the machine: the /run/opengl-driver link (made, recognised as ours, and
// swapped atomically, in a run directory held open after it was checked),
// the entries it linked (recorded with their links, and pruned when no
// recorded link names them) and their permissions (readable by every
// user).
//
// It changes only what it can prove nixglhost made (docs/DESIGN.md,
// invariant 4): a link of the caller's to an entry of the system cache,
// an entry whose manifest names it (hostdrivers.OwnedEntry), its own
// record and temporary names; and it reaches them relative to a directory
// descriptor, never following a link. Anything else is refused or left
// alone, byte for byte.
package sysentry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/heldfile"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// ShareTree makes every directory of the entry name, in the system cache
// held open as root (its name is its path), 0755 and every regular file
// readable by all (the builder's temporary directory is 0700, and a
// service's umask may be strict). It refuses an entry that is not
// provably nixglhost's (hostdrivers.OwnedEntry). It works through
// descriptors, never following a link: links, and what they point to, are
// left alone, and so is anything that is neither a directory nor a
// regular file.
func ShareTree(root *os.File, name string) error {
	cacheDir := root.Name()
	dir := filepath.Join(cacheDir, name)
	if !heldfile.Same(root, cacheDir) {
		return fmt.Errorf("cache entry %s: the system cache %s is no longer the directory checked; run again", dir, cacheDir)
	}
	var before unix.Stat_t
	if err := unix.Fstatat(int(root.Fd()), name, &before, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("cache entry %s: %w", dir, err)
	}
	if _, err := hostdrivers.OwnedEntry(cacheDir, name); err != nil {
		return fmt.Errorf("not sharing %s, not provably an entry nixglhost made: %w", dir, err)
	}
	fd, err := openDirAt(int(root.Fd()), name, &before)
	if err != nil {
		return fmt.Errorf("cache entry %s: %w", dir, err)
	}
	defer unix.Close(fd)
	return shareDir(fd, dir)
}

// shareDir makes the directory fd (named dir) and everything below it
// readable by all (see ShareTree).
func shareDir(fd int, dir string) error {
	if err := unix.Fchmod(fd, 0o755); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	d, err := unix.Dup(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	f := os.NewFile(uintptr(d), dir)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			sub, err := openDirAt(fd, n, &st)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			err = shareDir(sub, p)
			unix.Close(sub)
			if err != nil {
				return err
			}
		case unix.S_IFREG:
			if st.Mode&0o444 == 0o444 {
				continue
			}
			if err := chmodFileAt(fd, n, &st, st.Mode&0o7777|0o444); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	return nil
}

// errChanged says that a name no longer names the file it was checked as.
var errChanged = errors.New("changed while it was being checked")

// openDirAt opens the directory name in dirfd without following a link
// and checks that it is the one st described.
func openDirAt(dirfd int, name string, st *unix.Stat_t) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino {
		unix.Close(fd)
		return -1, errChanged
	}
	return fd, nil
}

// chmodFileAt sets the mode of the regular file name in dirfd, opened
// without following a link (and without blocking), when it is still the
// one st described.
func chmodFileAt(dirfd int, name string, st *unix.Stat_t, mode uint32) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino || now.Mode&unix.S_IFMT != unix.S_IFREG {
		return errChanged
	}
	return unix.Fchmod(fd, mode)
}
