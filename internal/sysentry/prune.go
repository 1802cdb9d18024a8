package sysentry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/heldfile"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// HistoryBase is, in the system cache, system mode's record of which link
// it pointed at which entry, so that old entries can be removed, nothing
// else ever is, and no entry a recorded link still names is.
const HistoryBase = ".system-mode.linked"

// historyVersion is the format of the record; a record without one is the
// older list of entry names, one a line, with no links.
const historyVersion = 2

// maxHistory bounds what is read of the record.
const maxHistory = 1 << 20

// Linked records that system mode pointed a link at an entry.
type Linked struct {
	// Link is the link's absolute path (RUN/opengl-driver).
	Link string `json:"link"`
	// Entry is the entry's name in the system cache (its key).
	Entry string `json:"entry"`
}

// history is the record's JSON form.
type history struct {
	Version int      `json:"version"`
	Linked  []Linked `json:"linked"`
}

// Prune removes the entries system mode linked before that are linked no
// more, and records keep: the entries just linked and those linked just
// before (a program that resolved a link a moment ago may still be
// opening files through it), each with its link. An entry stays while any
// link the record names (another run directory's included) still points
// at it, as read now. An entry is removed only when it is provably
// nixglhost's (hostdrivers.OwnedEntry), through root, the system cache
// held open by OpenSystemRoot (its name is its path): renamed aside, then
// removed without following a link. Entries it never linked (the hook's,
// another --cache-dir user's) and names that are not entries are never
// touched, nor are those of an older record that names no links (another
// run directory may still link them; they cost disk space once). It
// returns what it removed; a failure only costs disk space, so it is not
// an error.
func Prune(root *os.File, keep []Linked, log *slog.Logger) []string {
	cacheDir := root.Name()
	if !heldfile.Same(root, cacheDir) {
		log.Debug("nothing pruned", "cache", cacheDir, "reason", "the path no longer names the directory held open")
		return nil
	}
	rootfd := int(root.Fd())
	recorded := readHistory(rootfd, cacheDir, log)

	// What every recorded link names now is live, and stays recorded.
	var links []string
	for _, l := range slices.Concat(recorded, keep) {
		if l.Link != "" && !slices.Contains(links, l.Link) {
			links = append(links, l.Link)
		}
	}
	next := slices.Clone(keep)
	for _, link := range links {
		t, err := os.Readlink(link)
		if err != nil {
			continue
		}
		if e, err := entryOf(link, t, cacheDir); err == nil {
			next = append(next, Linked{Link: link, Entry: filepath.Base(e)})
		}
	}
	live := func(name string) bool {
		return slices.ContainsFunc(next, func(l Linked) bool { return l.Entry == name })
	}

	var removed []string
	var seen []string
	for _, l := range recorded {
		name := l.Entry
		if live(name) || slices.Contains(seen, name) {
			continue
		}
		seen = append(seen, name)
		if l.Link == "" {
			// An older nixglhost's record names no link: another run
			// directory's link may still name the entry.
			log.Debug("not removed", "entry", filepath.Join(cacheDir, name), "reason", "recorded without its link")
			continue
		}
		if !hostdrivers.IsKeyName(name) {
			log.Debug("not removed", "name", filepath.Join(cacheDir, name), "reason", "not the name of an entry")
			continue
		}
		dir := filepath.Join(cacheDir, name)
		if err := removeEntry(rootfd, cacheDir, name); err != nil {
			if !errors.Is(err, unix.ENOENT) {
				log.Debug("old entry not removed", "entry", dir, "err", err)
			}
			continue
		}
		removed = append(removed, dir)
	}
	writeHistory(rootfd, cacheDir, dedupe(next), log)
	return removed
}

// dedupe drops repeated and empty records, keeping the first of each.
func dedupe(ls []Linked) []Linked {
	var out []Linked
	for _, l := range ls {
		if hostdrivers.IsKeyName(l.Entry) && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// removeEntry removes the entry name of the cache held by rootfd when it
// is provably nixglhost's: renamed aside to a trash name (the collector
// finishes what is left of it), checked to be the directory that was
// proved ours, then removed without following a link.
func removeEntry(rootfd int, cacheDir, name string) error {
	var before unix.Stat_t
	if err := unix.Fstatat(rootfd, name, &before, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if _, err := hostdrivers.OwnedEntry(cacheDir, name); err != nil {
		return fmt.Errorf("not provably an entry nixglhost made, left alone: %w", err)
	}
	trash := fmt.Sprintf(".trash-%s-%d", name, os.Getpid())
	if err := unix.Renameat2(rootfd, name, rootfd, trash, unix.RENAME_NOREPLACE); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(cacheDir, name), err)
	}
	var after unix.Stat_t
	if err := unix.Fstatat(rootfd, trash, &after, unix.AT_SYMLINK_NOFOLLOW); err != nil || after.Dev != before.Dev || after.Ino != before.Ino {
		// Not the directory proved ours: put it back.
		unix.Renameat2(rootfd, trash, rootfd, name, unix.RENAME_NOREPLACE)
		return fmt.Errorf("%s changed while it was checked: left alone", filepath.Join(cacheDir, name))
	}
	return removeAllAt(rootfd, trash)
}

// readHistory reads the record in the cache held by rootfd: a regular file
// of the caller's, read without following a link. The older format, entry
// names one a line, gives records without links.
func readHistory(rootfd int, cacheDir string, log *slog.Logger) []Linked {
	p := filepath.Join(cacheDir, HistoryBase)
	fd, err := unix.Openat(rootfd, HistoryBase, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) {
			log.Debug("record not read", "file", p, "err", err)
		}
		return nil
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || ownerOf(fi) != os.Geteuid() {
		log.Debug("record not read", "file", p, "reason", "not a regular file of this user's")
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(f, maxHistory))
	if err != nil {
		log.Debug("record not read", "file", p, "err", err)
		return nil
	}
	if strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		var h history
		if err := json.Unmarshal(b, &h); err != nil || h.Version != historyVersion {
			log.Debug("record not read", "file", p, "err", err, "version", h.Version)
			return nil
		}
		return h.Linked
	}
	var out []Linked
	for _, name := range strings.Split(string(b), "\n") {
		if name != "" {
			out = append(out, Linked{Entry: name})
		}
	}
	return out
}

// writeHistory replaces the record in the cache held by rootfd with ls: a
// temporary file made there (never over another file) and renamed over
// the record, when the record is absent or a regular file of the caller's.
func writeHistory(rootfd int, cacheDir string, ls []Linked, log *slog.Logger) {
	p := filepath.Join(cacheDir, HistoryBase)
	var st unix.Stat_t
	err := unix.Fstatat(rootfd, HistoryBase, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && (st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Geteuid()) {
		log.Debug("record not written", "file", p, "reason", "not a regular file of this user's")
		return
	}
	b, err := json.MarshalIndent(history{Version: historyVersion, Linked: ls}, "", "  ")
	if err != nil {
		return
	}
	tmp := fmt.Sprintf("%s.tmp-%d", HistoryBase, os.Getpid())
	made, err := writeFileAt(rootfd, tmp, append(b, '\n'), 0o644)
	if err != nil {
		log.Debug("record not written", "file", p, "err", err)
		return
	}
	if err := unix.Renameat(rootfd, tmp, rootfd, HistoryBase); err != nil {
		log.Debug("record not written", "file", p, "err", err)
		heldfile.RemoveIfSame(rootfd, tmp, &made)
	}
}
