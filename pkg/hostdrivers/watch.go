package hostdrivers

// This file is the watches: every host path a decision depended on, with
// what it was, so that the hot path can tell the host has not changed.

import (
	"errors"
	"os"
	"path/filepath"
)

// watch is one recorded file system fact: a path and its identity (or its
// absence), as stat(2) (following links) saw it.
type watch struct {
	Path   string `json:"p"`
	ID     FileID `json:"id"`
	Absent bool   `json:"absent,omitempty"`
	// NoFollow watches the path itself with lstat(2): for a path not yet
	// resolved inside a driver root, whose absolute links must not be
	// followed on the machine running nixglhost.
	NoFollow bool `json:"nofollow,omitempty"`
}

// watchSet collects watches in order, once per path.
type watchSet struct {
	list []watch
	seen map[string]bool
}

// add stats hostPath, a path already resolved (no symbolic link in it),
// and records it. A nil set records nothing.
func (w *watchSet) add(hostPath string) { w.record(hostPath, false) }

// addNoFollow records hostPath as lstat(2) sees it: for a path that may
// still hold links.
func (w *watchSet) addNoFollow(hostPath string) { w.record(hostPath, true) }

func (w *watchSet) record(hostPath string, noFollow bool) {
	if w == nil || w.seen[watchKey(hostPath, false)] || w.seen[watchKey(hostPath, true)] {
		return
	}
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	stat := os.Stat
	if noFollow {
		stat = os.Lstat
	}
	fi, err := stat(hostPath)
	if noFollow && err == nil && fi.Mode()&os.ModeSymlink == 0 {
		// Not a link: lstat and stat see the same, and one watch serves
		// both kinds of caller.
		noFollow = false
	}
	key := watchKey(hostPath, noFollow)
	w.seen[key] = true
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// Watch the first missing component instead: while it is
			// absent so is everything under it, and the vendor
			// directories looked for (share/glvnd/egl_vendor.d,
			// share/vulkan/icd.d, ... under each prefix) share a few.
			if top := firstMissing(hostPath); top != hostPath {
				hostPath, key = top, watchKey(top, noFollow)
				if w.seen[key] {
					return
				}
				w.seen[key] = true
			}
		}
		w.list = append(w.list, watch{Path: hostPath, Absent: true, NoFollow: noFollow})
		return
	}
	w.list = append(w.list, watch{Path: hostPath, ID: fileID(fi), NoFollow: noFollow})
}

// watchKey is a watch's key in a watchSet's and a Session's maps: lstat
// and stat of one path are two watches.
func watchKey(p string, noFollow bool) string {
	if noFollow {
		return "\x00" + p
	}
	return p
}

// firstMissing returns the shortest prefix of p, a path found missing,
// that is missing too: each parent is looked up as the loader would, with
// the links in it followed, until one exists (or cannot be checked).
func firstMissing(p string) string {
	for {
		parent := filepath.Dir(p)
		if parent == p {
			return p
		}
		if _, err := os.Stat(parent); !errors.Is(err, os.ErrNotExist) {
			return p
		}
		p = parent
	}
}

// drop forgets the watches of the files of paths (host paths): files a
// plan left out, whose changes cannot change it (their directories stay
// watched).
func (w *watchSet) drop(paths map[string]bool) {
	if w == nil || len(paths) == 0 {
		return
	}
	keep := w.list[:0]
	for _, x := range w.list {
		if !x.NoFollow && paths[x.Path] {
			continue
		}
		keep = append(keep, x)
	}
	w.list = keep
}

// addID records a file already stat'ed.
func (w *watchSet) addID(hostPath string, id FileID) {
	if w == nil || w.seen[hostPath] {
		return
	}
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	w.seen[hostPath] = true
	w.list = append(w.list, watch{Path: hostPath, ID: id})
}
