package sysentry

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/heldfile"
)

// Work relative to a held directory: each helper takes a directory's
// descriptor and a name in it, and follows no symbolic link.

// writeFileAt creates name in the directory dirfd with b (mode perm),
// never over an existing file, except a leftover regular file of the
// caller's under that same name (a temporary name of ours: a run with the
// same pid that died). A file it fails to finish is removed while it is
// still the one made here. It returns what it made, for
// heldfile.RemoveIfSame.
func writeFileAt(dirfd int, name string, b []byte, perm uint32) (unix.Stat_t, error) {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags, perm)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && int(st.Uid) == os.Geteuid() {
			heldfile.RemoveIfSame(dirfd, name, &st)
			fd, err = unix.Openat(dirfd, name, flags, perm)
		}
	}
	if err != nil {
		return unix.Stat_t{}, err
	}
	return heldfile.Finish(dirfd, fd, name, b, perm)
}

// removeAllAt removes name in dirfd and, when it is a directory, all it
// holds, opening each directory without following a link: a link is
// removed, never what it points to.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	for range 3 {
		names, err := d.Readdirnames(-1)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := removeAllAt(fd, n); err != nil {
				return err
			}
		}
		err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
		if !errors.Is(err, unix.ENOTEMPTY) {
			return err
		}
		if _, err := d.Seek(0, 0); err != nil {
			return err
		}
	}
	return unix.ENOTEMPTY
}

// ownerOf returns fi's owner, or -1 when it is not known.
func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
