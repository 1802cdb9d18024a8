// Package heldfile writes and removes files relative to a directory held
// by its descriptor, never following a symbolic link, and removes only the
// file it made (checked by device and inode), not whatever another process
// may have put under the same name since. It is what system mode's
// record, the CDI writer and the cache root share; it decides nothing
// about which directories to trust (its callers check them first).
package heldfile

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Finish writes b to fd, a file just created as name in the directory
// dirfd, sets its mode to perm (whatever the umask), syncs and closes it.
// It returns the file's identity, for RemoveIfSame. A file it fails to
// finish is removed while it is still the one fd held.
func Finish(dirfd, fd int, name string, b []byte, perm uint32) (unix.Stat_t, error) {
	var st unix.Stat_t
	f := os.NewFile(uintptr(fd), name)
	err := unix.Fstat(fd, &st)
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
		RemoveIfSame(dirfd, name, &st)
	}
	return st, err
}

// RemoveIfSame unlinks name in dirfd when it is still the file st
// described (same device and inode), not whatever may have replaced it.
func RemoveIfSame(dirfd int, name string, st *unix.Stat_t) {
	var now unix.Stat_t
	if st.Ino != 0 && unix.Fstatat(dirfd, name, &now, unix.AT_SYMLINK_NOFOLLOW) == nil && now.Dev == st.Dev && now.Ino == st.Ino {
		unix.Unlinkat(dirfd, name, 0)
	}
}

// Same reports whether the path p names, now, the file f holds (same
// device and inode; p's last component is not followed).
func Same(f *os.File, p string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Lstat(p)
	if err1 != nil || err2 != nil {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
