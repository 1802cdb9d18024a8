package sysentry

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Work relative to a held directory: each helper takes a directory's
// descriptor and a name in it, and follows no symbolic link.

// writeFileAt creates name in the directory dirfd with b (mode perm),
// never over an existing file, except a leftover regular file of the
// caller's under that same name (a temporary name of ours: a run with the
// same pid that died). A file it fails to finish is removed while it is
// still the one made here. It returns what it made, for removeIfSame.
func writeFileAt(dirfd int, name string, b []byte, perm uint32) (unix.Stat_t, error) {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags, perm)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && int(st.Uid) == os.Geteuid() {
			removeIfSame(dirfd, name, &st)
			fd, err = unix.Openat(dirfd, name, flags, perm)
		}
	}
	var st unix.Stat_t
	if err != nil {
		return st, err
	}
	f := os.NewFile(uintptr(fd), name)
	err = unix.Fstat(fd, &st)
	if err == nil {
		err = unix.Fchmod(fd, perm)
	}
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		removeIfSame(dirfd, name, &st)
	}
	return st, err
}

// removeIfSame unlinks name in dirfd when it is still the file st
// described (same device and inode), not whatever may have replaced it.
func removeIfSame(dirfd int, name string, st *unix.Stat_t) {
	var now unix.Stat_t
	if st.Ino != 0 && unix.Fstatat(dirfd, name, &now, unix.AT_SYMLINK_NOFOLLOW) == nil && now.Dev == st.Dev && now.Ino == st.Ino {
		unix.Unlinkat(dirfd, name, 0)
	}
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

// sameDir reports whether the path p names the directory f holds now.
func sameDir(f *os.File, p string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Lstat(p)
	if err1 != nil || err2 != nil || !b.IsDir() {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// ownerOf returns fi's owner, or -1 when it is not known.
func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
