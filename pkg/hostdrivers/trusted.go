package hostdrivers

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// What each kind of host file is called in messages.
const (
	whatDriver = "driver file"
	whatDep    = "dependency"
	whatVendor = "vendor file"
	whatHost   = "host file"
)

// UntrustedError says that a host file root's modes would link, copy or
// mount could be changed by a user other than root (or the caller): the
// file itself, its directory, or a directory or symbolic link on its path.
type UntrustedError struct {
	// What the file is: "driver file", "dependency", "vendor file".
	What string
	// File is the host file, as the entry names it.
	File string
	// Path is what is at fault: File, its directory, or a directory or
	// link on its way.
	Path string
	// Problem says what is wrong with Path.
	Problem string
	// Fix says what to do.
	Fix string
}

func (e *UntrustedError) Error() string {
	if e.Path == e.File {
		return fmt.Sprintf("%s %s %s: refusing to hand it to every program; %s", e.What, e.File, e.Problem, e.Fix)
	}
	return fmt.Sprintf("%s %s: %s %s: refusing to hand it to every program; %s", e.What, e.File, e.Path, e.Problem, e.Fix)
}

// CheckTrustedFiles refuses a selection or closure holding a host file that
// another user could have written or could replace (checkTrustedPath): the
// error, an *UntrustedError, names the path at fault and the fix. Root's
// modes call it through Options.TrustedFilesOnly.
func CheckTrustedFiles(root string, sel *Selection, cl *Closure) error {
	c := newTrustChecker()
	for _, f := range sel.Files {
		if err := c.check(ldpath.HostPath(root, f.Real), whatDriver, false); err != nil {
			return err
		}
	}
	for _, d := range cl.Deps {
		if err := c.check(ldpath.HostPath(root, d.Real), whatDep, false); err != nil {
			return err
		}
	}
	return nil
}

// checkTrustedData is CheckTrustedFiles for the vendor files an entry will
// rewrite: a user's EGL, Vulkan or OpenCL file names the library every
// program loads.
func checkTrustedData(root string, data []dataCand) error {
	c := newTrustChecker()
	for _, d := range data {
		if err := c.check(ldpath.HostPath(root, d.src), whatVendor, false); err != nil {
			return err
		}
	}
	return nil
}

// CheckTrusted checks again, as they are now, the host files the entry
// was built from (driver files, dependencies, vendor files) as
// CheckTrustedFiles did when it was built. Root's modes call it before
// they serve an entry: its links are followed, and the files it names are
// mounted, by path, long after the build. A file that is gone passes when
// no one but root (or the caller) could put it back.
func (m *Manifest) CheckTrusted() error {
	c := newTrustChecker()
	for _, f := range m.Files {
		if err := c.check(ldpath.HostPath(m.Root, f.Real), whatDriver, true); err != nil {
			return err
		}
	}
	for _, d := range m.Deps {
		if err := c.check(ldpath.HostPath(m.Root, d.Real), whatDep, true); err != nil {
			return err
		}
	}
	for _, d := range m.Data {
		if d.Made != "" || d.Source == "" {
			continue
		}
		if err := c.check(ldpath.HostPath(m.Root, d.Source), whatVendor, true); err != nil {
			return err
		}
	}
	return nil
}

// CheckTrustedPath checks the host file p, an absolute path, as
// CheckTrustedFiles checks a driver file: root's modes call it on each
// path they bind or mount. A missing p is an error.
func CheckTrustedPath(p string) error {
	return newTrustChecker().check(p, whatHost, false)
}

// trustChecker checks host files' whole paths for root's modes,
// remembering the directories already found good, so that the thirty
// files of a driver cost one look at each directory.
type trustChecker struct {
	uid  int
	good map[string]bool
}

func newTrustChecker() *trustChecker {
	return &trustChecker{uid: os.Geteuid(), good: map[string]bool{}}
}

// check refuses the host file p when a user other than root (or the
// caller) could change what a program opening p gets:
//
//   - p must belong to root (or the caller) and be unwritable by group
//     and others;
//   - so must the directory holding it, sticky or not: in a mode-1777
//     directory anyone can add a new library, and a new name is picked up
//     at once;
//   - every directory above, from / down, must belong to root (or the
//     caller) and be unwritable by group and others unless sticky: in a
//     sticky directory (a 1777 /tmp) others can add names but cannot
//     rename or remove root's, so the directory below stays root's;
//   - every symbolic link on the way (p itself included) must belong to
//     root (or the caller), and what it leads to is checked the same way,
//     from / down for an absolute target; the directory holding the real
//     file is the one that must not be writable by others at all.
//
// With missingOK, a p that does not exist passes when the directory that
// would hold the missing name is unwritable by others (sticky or not):
// only root (or the caller) could create it.
//
// It is long because it checks one path's every component against the trust
// rules, one rule per block, as DESIGN's "Shared machines" lists them.
func (c *trustChecker) check(p, what string, missingOK bool) error {
	file := p
	bad := func(at, problem, fix string) error {
		return &UntrustedError{What: what, File: file, Path: at, Problem: problem, Fix: fix}
	}
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%s %s: not an absolute path", what, p)
	}
	cur := "/"
	if !c.good[cur] {
		fi, err := os.Lstat(cur)
		if err != nil {
			return fmt.Errorf("%s %s: %w", what, file, err)
		}
		if err := c.dir(cur, fi, bad); err != nil {
			return err
		}
	}
	todo := strings.Split(p, "/")
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			// cur holds no link (each component was lstat'ed), so
			// its parent is the kernel's "..".
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		last := !moreNames(todo)
		if !last && c.good[next] {
			cur = next
			continue
		}
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) && missingOK {
			// Nobody else may be able to make the name appear.
			return c.strictDir(cur, bad)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", what, file, err)
		}
		if err := c.owner(next, fi, bad); err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			links++
			if links > 40 {
				return fmt.Errorf("%s %s: %w", what, file, syscall.ELOOP)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return fmt.Errorf("%s %s: %w", what, file, err)
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		}
		if last {
			if err := c.strictDir(cur, bad); err != nil {
				return err
			}
			if fi.Mode().Perm()&0o022 != 0 {
				return bad(next, fmt.Sprintf("is writable by others (mode %s)", ModeString(fi.Mode())), "run chmod go-w "+next)
			}
			return nil
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s %s: %s: %w", what, file, next, syscall.ENOTDIR)
		}
		if err := c.dir(next, fi, bad); err != nil {
			return err
		}
		cur = next
	}
	// p named a directory ("/", or a path ending in "/.."): no file.
	return fmt.Errorf("%s %s: not a file", what, file)
}

// moreNames reports whether the components left hold a name to
// walk into ("" and "." are none; ".." is one).
func moreNames(todo []string) bool {
	for _, n := range todo {
		if n != "" && n != "." {
			return true
		}
	}
	return false
}

// badFunc builds the error for a path at fault.
type badFunc func(at, problem, fix string) error

// owner refuses a path that belongs to a user other than root or the
// caller.
func (c *trustChecker) owner(p string, fi fs.FileInfo, bad badFunc) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 || int(st.Uid) == c.uid {
		return nil
	}
	kind := "directory"
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		kind = "symbolic link"
	case !fi.IsDir():
		return bad(p, fmt.Sprintf("belongs to uid %d, not root", st.Uid), "install the driver as root, or pass -d with a root-owned copy")
	}
	return bad(p, fmt.Sprintf("(a %s on its path) belongs to uid %d, not root, who could swap what is below it", kind, st.Uid),
		"keep the driver under directories only root can change (chown root "+p+"), or pass -d with a copy under such directories")
}

// dir checks a directory above the file (fi, not a link): others may not
// write it, unless it is sticky. A directory that passes is remembered.
func (c *trustChecker) dir(p string, fi fs.FileInfo, bad badFunc) error {
	if err := c.owner(p, fi, bad); err != nil {
		return err
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return bad(p, fmt.Sprintf("(a directory on its path) is writable by others (mode %s) and not sticky, so they could swap what is below it", ModeString(fi.Mode())),
			"run chmod go-w "+p)
	}
	c.good[p] = true
	return nil
}

// strictDir checks the directory holding the file: others may not write
// it at all, sticky or not.
func (c *trustChecker) strictDir(p string, bad badFunc) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if err := c.owner(p, fi, bad); err != nil {
		return err
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return bad(p, fmt.Sprintf("(its directory) is writable by others (mode %s), so anyone could add a file there, sticky or not", ModeString(fi.Mode())),
			"run chmod go-w "+p)
	}
	return nil
}
