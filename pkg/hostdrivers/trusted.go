package hostdrivers

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// CheckTrustedFiles refuses a selection or closure holding a host file that
// another user could have written: a file not owned by root or the
// caller, or writable by group or others, or in a directory that is
// (sticky or not: in a mode-1777 directory anyone can add a new library,
// and a new name is picked up at once). The error names the path and the
// fix. Root's modes call it through Options.TrustedFilesOnly.
func CheckTrustedFiles(root string, sel *Selection, cl *Closure) error {
	var reals []string
	for _, f := range sel.Files {
		reals = append(reals, f.Real)
	}
	for _, d := range cl.Deps {
		reals = append(reals, d.Real)
	}
	uid := os.Geteuid()
	checked := map[string]bool{}
	check := func(p, what string) error {
		if checked[p] {
			return nil
		}
		checked[p] = true
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("%s %s: %w", what, p, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		switch {
		case ok && st.Uid != 0 && int(st.Uid) != uid:
			return fmt.Errorf("%s %s belongs to uid %d, not root: refusing to hand it to every program; install the driver as root, or pass -d with a root-owned copy", what, p, st.Uid)
		case fi.Mode().Perm()&0o022 != 0:
			return fmt.Errorf("%s %s is writable by others (mode %04o): refusing to hand it to every program; run chmod go-w %s", what, p, fi.Mode().Perm(), p)
		}
		return nil
	}
	for _, r := range reals {
		hp := ldpath.HostPath(root, r)
		if err := check(hp, "driver file"); err != nil {
			return err
		}
		if err := check(filepath.Dir(hp), "driver directory"); err != nil {
			return err
		}
	}
	return nil
}
