// Package sysentry manages what system mode shares with every program on
// the machine: the /run/opengl-driver link (made, recognised as ours, and
// swapped atomically), the entries it linked (recorded, and pruned when
// replaced) and their permissions (readable by every user).
package sysentry

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// HistoryBase lists, in the system cache, the entries system mode has
// linked, oldest first, so that old ones can be removed and nothing else
// ever is.
const HistoryBase = ".system-mode.linked"

// IsEntryLib reports whether dir, inside root, is the lib/ of a nixglhost
// cache entry (a manifest.json beside it).
func IsEntryLib(root, dir string) bool {
	r, err := ldpath.Resolve(root, dir)
	if err != nil || filepath.Base(r) != "lib" {
		return false
	}
	_, err = os.Stat(ldpath.HostPath(root, filepath.Join(filepath.Dir(r), "manifest.json")))
	return err == nil
}

// ShareTree makes every directory of the entry 0755 and every file
// readable by all (the builder's temporary directory is 0700, and a
// service's umask may be strict). Symlinks are left alone.
func ShareTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return nil
		case d.IsDir():
			return os.Chmod(p, 0o755)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if m := fi.Mode().Perm(); m&0o444 != 0o444 {
			return os.Chmod(p, m|0o444)
		}
		return nil
	})
}

// OwnTarget returns the entry link points at when link is ours (a symlink
// to a direct child of cacheDir, complete or not), "" when link does not
// exist, and an error that says why it is left alone otherwise.
func OwnTarget(link, cacheDir string) (string, error) {
	fi, err := os.Lstat(link)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", link, err)
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		what := "a " + strings.ToLower(fileKind(fi.Mode()))
		return "", fmt.Errorf("%s is %s, not a link nixglhost made (NixOS manages its own /run/opengl-driver): leaving it alone", link, what)
	}
	t, err := os.Readlink(link)
	if err != nil {
		return "", fmt.Errorf("%s: %w", link, err)
	}
	abs := t
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(filepath.Dir(link), abs)
	}
	abs = filepath.Clean(abs)
	caches := []string{cacheDir}
	if r, err := filepath.EvalSymlinks(cacheDir); err == nil && r != cacheDir {
		caches = append(caches, r)
	}
	for _, cd := range caches {
		if filepath.Dir(abs) == cd && !strings.HasPrefix(filepath.Base(abs), ".") {
			return filepath.Join(cacheDir, filepath.Base(abs)), nil
		}
	}
	hint := ""
	if strings.HasPrefix(abs, "/nix/store/") {
		hint = " (NixOS's own graphics drivers?)"
	}
	return "", fmt.Errorf("%s points to %s, outside nixglhost's system cache %s%s: leaving it alone", link, t, cacheDir, hint)
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	default:
		return "special file"
	}
}

// SwapLink points link at target: a new symlink beside it, renamed over
// it, so that link always names a complete entry.
func SwapLink(link, target string) error {
	tmp := filepath.Join(filepath.Dir(link), fmt.Sprintf(".%s.nixglhost-%d-%x", filepath.Base(link), os.Getpid(), rand.Uint64()))
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("%s: %w", tmp, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", link, err)
	}
	return nil
}

// Prune records the entries named in keep as linked and removes every
// entry system mode linked before that keep does not name: keep holds the
// entries linked now and those linked just before (a program that resolved
// a link a moment ago may still be opening files through it), for
// opengl-driver and opengl-driver-32. Entries it never linked (the hook's,
// another --cache-dir user's) are not touched. It returns what it removed;
// a failure only costs disk space, so it is not an error.
func Prune(cacheDir string, keep []string, log *slog.Logger) []string {
	hist := filepath.Join(cacheDir, HistoryBase)
	b, _ := os.ReadFile(hist)
	var removed []string
	for _, name := range strings.Split(string(b), "\n") {
		if name == "" || slices.Contains(keep, name) || strings.ContainsRune(name, '/') || strings.HasPrefix(name, ".") {
			continue
		}
		dir := filepath.Join(cacheDir, name)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Debug("old entry not removed", "entry", dir, "err", err)
			continue
		}
		removed = append(removed, dir)
	}
	var kept []string
	for _, name := range keep {
		if name != "" && name != "." && !slices.Contains(kept, name) {
			kept = append(kept, name)
		}
	}
	tmp := hist + fmt.Sprintf(".tmp-%d", os.Getpid())
	if err := os.WriteFile(tmp, []byte(strings.Join(kept, "\n")+"\n"), 0o644); err == nil {
		if err := os.Rename(tmp, hist); err != nil {
			os.Remove(tmp)
		}
	}
	return removed
}
