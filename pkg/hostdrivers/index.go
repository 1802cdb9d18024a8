package hostdrivers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// A launch must notice any change of the host driver (invariant 6), yet a
// hot launch must not list large system directories or read ELF files. So
// the cold path records every file system fact the cache key was computed
// from, as a watch: each directory listed or looked for, each directory
// holding a symbolic link that was followed, each driver and vendor file,
// the loader configuration. The hot path only stats the watches; when all
// are as recorded, the key is the recorded one.

// watch is one recorded file system fact: a path and its identity (or its
// absence), as stat(2) (following links) saw it.
type watch struct {
	Path   string `json:"p"`
	ID     FileID `json:"id"`
	Absent bool   `json:"absent,omitempty"`
}

// watchSet collects watches in order, once per path.
type watchSet struct {
	list []watch
	seen map[string]bool
}

// add stats hostPath and records it. A nil set records nothing.
func (w *watchSet) add(hostPath string) {
	if w == nil || w.seen[hostPath] {
		return
	}
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	w.seen[hostPath] = true
	fi, err := os.Stat(hostPath)
	if err != nil {
		w.list = append(w.list, watch{Path: hostPath, Absent: true})
		return
	}
	w.list = append(w.list, watch{Path: hostPath, ID: fileID(fi)})
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

// index is what the cold path leaves for the hot path, in the cache root
// as .index-INPUTS, where INPUTS hashes everything besides the file system
// that the key depends on (root, program architecture, flags, the caller's
// LD_LIBRARY_PATH).
type index struct {
	Format  int     `json:"format"`
	Key     string  `json:"key"`
	Module  string  `json:"module"`
	Watches []watch `json:"watches"`
}

// inputsName names the index file for o.
func inputsName(o *Options) string {
	t := o.target()
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00%d/%d/%d\x00%v\x00%s\x00", FormatVersion, o.root(), t.Class, t.Data, t.Machine, o.SelfContained, o.LibraryPath)
	for _, d := range o.Dirs {
		fmt.Fprintf(h, "%s\x00", d)
	}
	return ".index-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// readIndex reads the index at p without following a symlink. Any problem
// makes it a miss.
func readIndex(p string) *index {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		return nil
	}
	var idx index
	if json.Unmarshal(b, &idx) != nil || idx.Format != FormatVersion || len(idx.Key) != 32 || strings.ContainsAny(idx.Key, "/.") {
		return nil
	}
	return &idx
}

// valid reports whether every watch still holds and the module version is
// the one recorded.
func (idx *index) valid(module string) bool {
	if idx.Module != module {
		return false
	}
	for _, w := range idx.Watches {
		fi, err := os.Stat(w.Path)
		if w.Absent {
			if !errors.Is(err, os.ErrNotExist) {
				return false
			}
			continue
		}
		if err != nil || fileID(fi) != w.ID {
			return false
		}
	}
	return true
}

// writeIndex writes the index atomically (a temporary file renamed into
// place). Failure only costs the next launch a scan.
func writeIndex(p string, idx *index) {
	b, err := json.Marshal(idx)
	if err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmpidx-")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr != nil || cerr != nil || os.Rename(f.Name(), p) != nil {
		os.Remove(f.Name())
	}
}
