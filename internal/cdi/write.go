package cdi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	specs "tags.cncf.io/container-device-interface/specs-go"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/heldfile"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// The runtimes read every spec of a CDI directory as root, and a spec is
// a list of host paths to mount into containers and device nodes to give
// them. So a spec is written only into a directory no other user can
// change, reached from / through directories no other user can change,
// and never over a file nixglhost did not write.

// generator is GeneratorAnnotation's value in the specs nixglhost writes.
const generator = "nixglhost"

// maxSpec bounds what is read of a spec file already there.
const maxSpec = 16 << 20

// Check refuses, writing nothing, what Write would refuse in dir as it is
// now: a CDI directory that another user could write to or redirect, and
// a file named FileName there that nixglhost did not write. A directory
// that does not exist yet is checked as far as it exists.
func Check(dir string) error {
	d, err := openDir(dir, false)
	if err != nil || d == nil {
		return err
	}
	defer d.Close()
	_, err = readOurs(d)
	return err
}

// Write writes spec to dir/FileName atomically: a temporary file made in
// the directory (synced first) and renamed over the name. It refuses,
// changing nothing there, a file of that name that nixglhost did not
// write (a regular file of the caller's carrying GeneratorAnnotation), and
// a directory another user could write to or redirect: the directory and
// every parent must belong to root or the caller and be writable by no
// one else (a sticky parent excepted, the directory itself not). Missing
// directories are made one at a time (0755), each from its checked
// parent's descriptor, then opened without following a link and checked.
// changed is false when the file already holds the same spec.
func Write(dir string, spec *specs.Spec) (changed bool, err error) {
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return false, err
	}
	b = append(b, '\n')
	d, err := openDir(dir, true)
	if err != nil {
		return false, err
	}
	defer d.Close()
	old, err := readOurs(d)
	if err != nil {
		return false, err
	}
	if old != nil && bytes.Equal(old.b, b) {
		return false, nil
	}
	dfd := int(d.Fd())
	p := filepath.Join(d.Name(), FileName)
	tmp, made, err := writeTemp(dfd, d.Name(), b)
	if err != nil {
		return false, err
	}
	if err := replace(dfd, tmp, p, old); err != nil {
		heldfile.RemoveIfSame(dfd, tmp, &made)
		return false, err
	}
	if err := d.Sync(); err != nil {
		return true, fmt.Errorf("CDI directory %s: %w", d.Name(), err)
	}
	return true, nil
}

// replace renames tmp over FileName in dfd: over the spec old, when it is
// still that file, or onto a free name, never over what appeared there
// meanwhile.
func replace(dfd int, tmp, p string, old *specFile) error {
	if old != nil {
		var now unix.Stat_t
		if err := unix.Fstatat(dfd, FileName, &now, unix.AT_SYMLINK_NOFOLLOW); err != nil || now.Dev != old.st.Dev || now.Ino != old.st.Ino {
			return fmt.Errorf("%s changed while nixglhost was writing it: leaving it alone; run again", p)
		}
		if err := unix.Renameat(dfd, tmp, dfd, FileName); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	}
	err := unix.Renameat2(dfd, tmp, dfd, FileName, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: a hard link never
		// replaces either.
		if err = unix.Linkat(dfd, tmp, dfd, FileName, 0); err == nil {
			unix.Unlinkat(dfd, tmp, 0)
		}
	}
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s appeared while nixglhost was writing it: leaving it alone; run again", p)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// writeTemp writes b to a new file of a fresh name in dfd (named dir),
// mode 0644, synced, and returns its name and identity.
func writeTemp(dfd int, dir string, b []byte) (string, unix.Stat_t, error) {
	var st unix.Stat_t
	var name string
	fd := -1
	for range 16 {
		name = fmt.Sprintf(".nixglhost-cdi-%d-%016x.tmp", os.Getpid(), rand.Uint64())
		var err error
		fd, err = unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) {
			return "", st, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
	}
	if fd < 0 {
		return "", st, fmt.Errorf("CDI directory %s: no free temporary name", dir)
	}
	st, err := heldfile.Finish(dfd, fd, name, b, 0o644)
	if err != nil {
		return "", st, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
	}
	return name, st, nil
}

// specFile is a spec nixglhost wrote, as found in the CDI directory.
type specFile struct {
	b  []byte
	st unix.Stat_t
}

// readOurs returns the spec file of the CDI directory d when nixglhost
// wrote it, nil when there is none, and an error naming it otherwise.
func readOurs(d *os.File) (*specFile, error) {
	p := filepath.Join(d.Name(), FileName)
	fd, err := unix.Openat(int(d.Fd()), FileName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, nil
	case errors.Is(err, unix.ELOOP):
		return nil, notOurs(p, "a symbolic link")
	case err != nil:
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	s := &specFile{}
	if err := unix.Fstat(fd, &s.st); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	switch {
	case s.st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return nil, notOurs(p, "a directory")
	case s.st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, notOurs(p, "not a regular file")
	case int(s.st.Uid) != os.Geteuid():
		return nil, notOurs(p, fmt.Sprintf("it belongs to uid %d", s.st.Uid))
	}
	s.b, err = io.ReadAll(io.LimitReader(f, maxSpec+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(s.b) > maxSpec {
		return nil, notOurs(p, "larger than any spec nixglhost writes")
	}
	var mark struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(s.b, &mark) != nil || mark.Annotations[GeneratorAnnotation] != generator {
		return nil, notOurs(p, "no "+GeneratorAnnotation+" annotation")
	}
	return s, nil
}

// notOurs is the refusal of a file named FileName nixglhost did not write.
func notOurs(p, why string) error {
	return fmt.Errorf("%s exists and nixglhost did not write it (%s): leaving it alone; remove it yourself if it is stale, or write the spec to another CDI directory", p, why)
}

// openDir opens the CDI directory dir (see Write), creating what is
// missing of it when create is set; otherwise a directory that is not
// there yet gives nil, once what exists of its path was checked.
func openDir(dir string, create bool) (*os.File, error) {
	dir = filepath.Clean(dir)
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("CDI directory %s: not an absolute path", dir)
	}
	if err := hostdrivers.CheckAncestors(dir); err != nil {
		return nil, fmt.Errorf("CDI directory %s: %w", dir, err)
	}
	// The nearest existing parent, checked above with the links on the way.
	base := filepath.Dir(dir)
	var missing []string
	for {
		if _, err := os.Lstat(base); err == nil {
			break
		}
		if base == filepath.Dir(base) {
			return nil, fmt.Errorf("CDI directory %s: no existing parent", dir)
		}
		missing = append([]string{filepath.Base(base)}, missing...)
		base = filepath.Dir(base)
	}
	if len(missing) > 0 && !create {
		return nil, nil
	}
	real, err := filepath.EvalSymlinks(base)
	if err != nil {
		return nil, fmt.Errorf("CDI directory parent %s: %w", base, err)
	}
	cur, err := unix.Open(real, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("CDI directory parent %s: %w", base, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(cur, &st); err != nil || checkParent(base, &st) != nil {
		unix.Close(cur)
		if err == nil {
			err = checkParent(base, &st)
		}
		return nil, err
	}
	shown := base
	names := append(missing, filepath.Base(dir))
	for i, name := range names {
		shown = filepath.Join(shown, name)
		last := i == len(names)-1
		fd, err := unix.Openat(cur, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		made := false
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(cur, name, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				made = err == nil
				fd, err = unix.Openat(cur, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		isLink := false
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			var lst unix.Stat_t
			isLink = unix.Fstatat(cur, name, &lst, unix.AT_SYMLINK_NOFOLLOW) == nil && lst.Mode&unix.S_IFMT == unix.S_IFLNK
		}
		unix.Close(cur)
		switch {
		case errors.Is(err, unix.ENOENT) && !create:
			return nil, nil
		case isLink && last:
			return nil, fmt.Errorf("CDI directory %s is a symbolic link: the runtimes would read specs wherever it points; give the directory itself", shown)
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
			return nil, fmt.Errorf("CDI directory %s: %s is not a directory (or appeared while nixglhost was creating it)", dir, shown)
		case err != nil:
			return nil, fmt.Errorf("CDI directory %s: %w", shown, err)
		}
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("CDI directory %s: %w", shown, err)
		}
		if last {
			err = checkDir(shown, &st)
		} else {
			err = checkParent(shown, &st)
		}
		if err == nil && made {
			// Exactly 0755, whatever the umask: the runtimes read it.
			err = unix.Fchmod(fd, 0o755)
		}
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		cur = fd
	}
	return os.NewFile(uintptr(cur), dir), nil
}

// checkParent refuses a parent of the CDI directory that another user
// could use to swap it: one owned by neither root nor the caller, or
// writable by others without the sticky bit.
func checkParent(p string, st *unix.Stat_t) error {
	switch {
	case int(st.Uid) != 0 && int(st.Uid) != os.Geteuid():
		return fmt.Errorf("CDI directory parent %s belongs to uid %d, who could replace the CDI directory below it: give a CDI directory under a path only root controls", p, st.Uid)
	case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
		return fmt.Errorf("CDI directory parent %s is writable by others (mode %s) and not sticky: they could swap the CDI directory; run chmod go-w %s, or give another CDI directory", p, modeString(st.Mode), p)
	}
	return nil
}

// checkDir refuses a CDI directory that is not the caller's or that
// others can write to, sticky or not: the runtimes read every spec there.
func checkDir(p string, st *unix.Stat_t) error {
	switch {
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("CDI directory %s belongs to uid %d: nixglhost writes specs only into a directory of its own user's; give another CDI directory", p, st.Uid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("CDI directory %s is writable by others (mode %s): the runtimes read every spec there as root, so they could add devices and mounts to containers; run chmod go-w %s, or give another CDI directory", p, modeString(st.Mode), p)
	}
	return nil
}

// modeString writes a stat mode's permission bits in octal, with the
// sticky, setgid and setuid bits, as chmod takes them: 1777, not 0777.
func modeString(mode uint32) string {
	return fmt.Sprintf("%04o", mode&0o7777)
}
