package ldpath

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinkHops is the kernel's limit on symbolic links followed while
// resolving one path (MAXSYMLINKS, 40 since Linux 4.2).
const maxSymlinkHops = 40

// HostPath joins root and p, an absolute path inside root, into the path on
// the host. With root "" or "/", p is returned unchanged.
func HostPath(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return filepath.Join(root, p)
}

// rootName is root as errors show it.
func rootName(root string) string {
	if root == "" {
		return "/"
	}
	return root
}

// Resolve follows the symbolic links in p, an absolute path as seen inside
// root, the way the kernel would if root were "/": absolute link targets are
// re-rooted under root and ".." never climbs above root. It returns the fully
// resolved, cleaned, absolute path inside root. A missing final or
// intermediate component gives an error wrapping fs.ErrNotExist; more than 40
// links give one wrapping unix.ELOOP. A relative p is taken relative to "/".
//
// Resolve only reads links and file types; it opens nothing. The result is
// true at the time of the call (another process may change the tree later).
func Resolve(root, p string) (string, error) {
	return ResolveFrom(root, "/", p, nil)
}

// ResolveFrom is Resolve for rel taken relative to dir, a directory already
// resolved inside root: dir's own components are not looked at again, so
// resolving many names in one directory costs one lstat each when they are
// not links. visit, when not nil, is called with the inside-root path of
// every symbolic link followed, so a caller can watch the directories that
// hold them for changes. An absolute rel ignores dir.
func ResolveFrom(root, dir, rel string, visit func(link string)) (string, error) {
	p := rel
	resolved := path.Clean("/" + dir)
	if strings.HasPrefix(rel, "/") {
		resolved = "/"
	} else {
		p = path.Join(dir, rel)
	}
	rest := rel
	hops := 0
	for rest != "" {
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		switch comp {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, comp)
		fi, err := os.Lstat(HostPath(root, next))
		if err != nil {
			return "", fmt.Errorf("resolve %s under %s: %w", p, rootName(root), err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if visit != nil {
			visit(next)
		}
		hops++
		if hops > maxSymlinkHops {
			return "", fmt.Errorf("resolve %s under %s: %w", p, rootName(root),
				&fs.PathError{Op: "readlink", Path: HostPath(root, next), Err: unix.ELOOP})
		}
		target, err := os.Readlink(HostPath(root, next))
		if err != nil {
			return "", fmt.Errorf("resolve %s under %s: %w", p, rootName(root), err)
		}
		if strings.HasPrefix(target, "/") {
			resolved = "/"
		}
		if rest == "" {
			rest = target
		} else {
			rest = target + "/" + rest
		}
	}
	return resolved, nil
}
