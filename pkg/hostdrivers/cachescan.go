package hostdrivers

// This file is how the cache commands read a cache root: its items and what
// proves each ours, the entries' disk use and last use, system mode's
// history, and who outside the cache still uses an entry.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// itemKind is what a name in a cache root is.
type itemKind int

const (
	itemForeign itemKind = iota
	itemEntry
	itemScratch
	itemTag
)

// rootItem is one name in a cache root, classified.
type rootItem struct {
	name string
	fi   fs.FileInfo
	kind itemKind
	// m is an entry's manifest; why says why a foreign name is not ours.
	m   *Manifest
	why string
	// indexKey is the key an index of ours names, and indexAtime its
	// access time before it was read.
	indexKey   string
	indexAtime time.Time
}

// scanRoot classifies every name in root, in name order, by the rules of
// ownership.go: our tag; our scratch files, whose name shape and kind
// match and whose content proves them (ourScratchFile, ourScratchDir; an
// index starts as one); our entries (OwnedEntry); and the rest, which is
// not ours.
func scanRoot(root string) ([]rootItem, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("cache directory %s: %w", root, err)
	}
	tagged := IsMarkedRoot(root)
	var out []rootItem
	for _, e := range ents {
		name := e.Name()
		fi, err := os.Lstat(filepath.Join(root, name))
		if err != nil {
			continue // gone meanwhile
		}
		it := rootItem{name: name, fi: fi}
		switch {
		case name == CacheTagName:
			it.kind, it.why = itemTag, "another program's CACHEDIR.TAG"
			if !tagged {
				it.kind = itemForeign
			}
		case ourScratch(name, fi.Mode()):
			if why := proveScratchFile(root, &it); why != "" {
				it.why = why
				break
			}
			it.kind = itemScratch
		case fi.IsDir() && (tmpShape.MatchString(name) || trashShape.MatchString(name)):
			if !ourScratchDir(root, name) {
				it.why = "named like nixglhost's temporary directories, but holding neither its build mark nor the manifest of that key"
				break
			}
			it.kind = itemScratch
		case IsKeyName(name):
			m, err := OwnedEntry(root, name)
			if err != nil {
				it.why = "named like a cache entry, but not provably nixglhost's: " + err.Error()
				break
			}
			it.kind, it.m = itemEntry, m
		case strings.HasPrefix(name, ".tmp") || strings.HasPrefix(name, ".trash-") || strings.HasPrefix(name, ".lock-") ||
			strings.HasPrefix(name, ".index-") || strings.HasPrefix(name, ".system-mode."):
			it.why = "named like nixglhost's own files, but not of their shape and kind (" + kindWord(fi.Mode()) + ")"
		default:
			it.why = "not a name nixglhost gives what it makes"
		}
		out = append(out, it)
	}
	return out, nil
}

// proveScratchFile checks a regular file of ours by name shape (ourScratch)
// against its content, and returns why it is not ours, or "": an index
// starts as one (read with O_NOATIME: a look is not a use, see
// indexAccess), a lock or an index temporary is empty (ourScratchFile),
// system mode's lock and record are this user's.
func proveScratchFile(root string, it *rootItem) string {
	p := filepath.Join(root, it.name)
	switch {
	case indexShape.MatchString(it.name):
		key, atime, ok := readIndexKey(p)
		if !ok {
			return "named like nixglhost's indexes, but not one of this user's"
		}
		it.indexKey, it.indexAtime = key, atime
	case systemShapes.MatchString(it.name):
		if !ownedByMe(it.fi) {
			return "named like system mode's files, but another user's"
		}
	case !ourScratchFile(p, it.fi):
		return "named like nixglhost's locks and temporary files, but holding something"
	}
	return ""
}

// readIndexKey reads the index p with O_NOATIME, so that reading it does
// not count as a use, and returns the key it names ("" when it does not
// parse) and its access time; ok is false when p is not a regular file of
// this user's that starts as an index does.
func readIndexKey(p string) (key string, atime time.Time, ok bool) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOATIME|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", time.Time{}, false
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || !ownedByMe(fi) {
		return "", time.Time{}, false
	}
	b, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil || !bytes.HasPrefix(b, []byte(indexMagic)) {
		return "", time.Time{}, false
	}
	if idx := parseIndex(b); idx != nil {
		key = idx.Key
	}
	return key, time.Unix(fi.Sys().(*syscall.Stat_t).Atim.Unix()), true
}

// kindWord names a file's kind.
func kindWord(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m.IsRegular():
		return "a regular file"
	}
	return "a special file"
}

// usage is what entryUsage finds in an entry.
type usage struct {
	size            int64
	files, symlinks int
	built, access   time.Time
}

// entryUsage walks the entry dir without following a link: the bytes of
// its regular files (hard links once), how many files and links it holds,
// when its manifest was written, and the latest access time of its files
// and links. The manifest's access time is left out (the cache commands
// and the collector read it), and so are directories' (listing them, as
// this walk does, updates them).
func entryUsage(dir string) (usage, error) {
	var u usage
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		atime := time.Unix(st.Atim.Unix())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			u.symlinks++
		case fi.Mode().IsRegular():
			u.files++
			if id := [2]uint64{st.Dev, st.Ino}; !seen[id] {
				seen[id] = true
				u.size += fi.Size()
			}
			if p == filepath.Join(dir, "manifest.json") {
				u.built = fi.ModTime()
				return nil
			}
		default:
			return nil
		}
		if atime.After(u.access) {
			u.access = atime
		}
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("cache entry %s: %w", dir, err)
	}
	return u, nil
}

// indexAccess returns, for each key the root's indexes name, the latest
// access time of those indexes: a hot launch reads the index, and reads
// nothing of the entry but what the program loads. scanRoot read them
// with O_NOATIME, so that look was not a use.
func indexAccess(items []rootItem) map[string]time.Time {
	out := map[string]time.Time{}
	for _, it := range items {
		if it.kind == itemScratch && it.indexKey != "" && it.indexAtime.After(out[it.indexKey]) {
			out[it.indexKey] = it.indexAtime
		}
	}
	return out
}

// stValid is statfs(2)'s ST_VALID: f_flags is filled in.
const stValid = 0x20

// atimePolicy reads how the file system holding dir keeps access times.
func atimePolicy(dir string) AtimePolicy {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return AtimeRelative
	}
	switch {
	case st.Flags&unix.ST_NOATIME != 0:
		return AtimeNone
	case st.Flags&unix.ST_RELATIME != 0:
		return AtimeRelative
	case st.Flags&stValid == 0:
		// Flags not reported: assume the usual default.
		return AtimeRelative
	}
	return AtimeStrict
}

// readHistory reads system mode's record in root (internal/sysentry's
// HistoryBase; a regular file of this user's, else none): the links it
// recorded, each with the entry it pointed at then, and the entries an
// older record names without their link.
func readHistory(root string) (links []string, unlinked map[string]bool) {
	unlinked = map[string]bool{}
	p := filepath.Join(root, systemHistory)
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, unlinked
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || !ownedByMe(fi) {
		return nil, unlinked
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		var h struct {
			Version int
			Linked  []struct{ Link, Entry string }
		}
		if json.Unmarshal(b, &h) != nil || h.Version != 2 {
			return nil, unlinked
		}
		for _, l := range h.Linked {
			if l.Link == "" {
				unlinked[l.Entry] = true
			} else if filepath.IsAbs(l.Link) && !slices.Contains(links, l.Link) {
				links = append(links, l.Link)
			}
		}
		return links, unlinked
	}
	for _, name := range strings.Split(string(b), "\n") {
		if IsKeyName(name) {
			unlinked[name] = true
		}
	}
	return nil, unlinked
}

// lockSystemMode takes system mode's lock in root exclusively, where
// there is one (a regular file of this user's), so that a clear does not
// remove an entry system mode, the hook or the CDI writer is choosing. It
// waits a minute at most.
func lockSystemMode(root string) (func(), error) {
	p := filepath.Join(root, systemLock)
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return func() {}, nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || !ownedByMe(fi) {
		f.Close()
		return func() {}, nil
	}
	deadline := time.Now().Add(time.Minute)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w (system mode, the pre-build hook or --cdi-spec is running; try again)", p, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// takeLock tries the entry lock p without waiting: held is true when a
// launch holds it; otherwise the returned function releases it.
func takeLock(p string) (release func(), held bool) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return func() {}, false
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return func() {}, errors.Is(err, unix.EWOULDBLOCK)
	}
	return func() { f.Close() }, false
}

// removeEntry renames the entry root/name aside, never over anything
// (a reader sees the whole entry or none), and removes it keeping its
// manifest until last (removeOurs), as discard does.
func removeEntry(root, name string) error {
	p := filepath.Join(root, name)
	trash := filepath.Join(root, fmt.Sprintf(".trash-%s-%d", name, os.Getpid()))
	if err := unix.Renameat2(unix.AT_FDCWD, p, unix.AT_FDCWD, trash, unix.RENAME_NOREPLACE); err != nil {
		return fmt.Errorf("cache entry %s: moving it aside to %s: %w", p, trash, err)
	}
	if err := removeOurs(trash); err != nil {
		return fmt.Errorf("cache entry %s (moved to %s): %w", p, trash, err)
	}
	return nil
}

// find returns, for each entry among items, what uses it from outside
// root, in order: the links that point to it (o.Links, each entry's
// SeenAt, and every link system mode's record names, whatever its
// --run-dir), another machine that built it, system mode's older record
// where no link can be checked, what refers to it, the processes that use
// it.
// ListCache shows it and ClearCache keeps what it names: one answer.
//
// It is long because it looks in each place something outside the cache can
// hold an entry (run links, system mode's record, CDI specs, processes), one
// block each.
func (o Outside) find(root string, items []rootItem) map[string][]string {
	uses := map[string][]string{}
	recorded, unlinked := readHistory(root)
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		real = root
	}
	entries := map[string]*rootItem{}
	var names []string
	links := slices.Clone(o.Links)
	for _, l := range recorded {
		if !slices.Contains(links, l) {
			links = append(links, l)
		}
	}
	for i := range items {
		if items[i].kind == itemEntry {
			entries[items[i].name] = &items[i]
			names = append(names, items[i].name)
			if s := items[i].m.SeenAt; s != "" && !slices.Contains(links, s) {
				links = append(links, s)
			}
		}
	}
	// inRoot returns the entry p names, when it names one of root's.
	inRoot := func(p string) (string, bool) {
		p = filepath.Clean(p)
		if d := filepath.Dir(p); d != root && d != real {
			return "", false
		}
		_, ok := entries[filepath.Base(p)]
		return filepath.Base(p), ok
	}
	for _, l := range links {
		fi, err := os.Lstat(l)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		t, err := os.Readlink(l)
		if err != nil {
			continue
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(l), t)
		}
		key, ok := inRoot(t)
		if !ok {
			if r, err := filepath.EvalSymlinks(l); err == nil {
				key, ok = inRoot(r)
			}
		}
		if ok {
			uses[key] = append(uses[key], l+" points to it")
		}
	}
	host := hostName()
	for _, k := range names {
		if h := entries[k].m.Host; h != "" && h != host {
			// A home directory shared by many nodes: whether a job
			// there uses it cannot be seen from here.
			uses[k] = append(uses[k], "maybe by another machine ("+h+"), which built it: clear it there")
		}
		if unlinked[k] && entries[k].m.SeenAt == "" {
			// Built before entries recorded where they are seen: the
			// link system mode made may be in any --run-dir.
			uses[k] = append(uses[k], "maybe through a link system mode made ("+systemHistory+" names it; the entry does not record where it is seen)")
		}
	}
	refs := make([]string, 0, len(o.Refs))
	for p := range o.Refs {
		refs = append(refs, p)
	}
	slices.Sort(refs)
	for _, p := range refs {
		if key, ok := inRoot(p); ok {
			uses[key] = append(uses[key], o.Refs[p])
		}
	}
	if o.Proc != "" && len(names) > 0 {
		for key, who := range procUses(o.Proc, root, real, entries) {
			uses[key] = append(uses[key], who...)
		}
	}
	return uses
}

// procUses looks at every process under proc but this one: a process
// whose environment (LD_LIBRARY_PATH and the loaders' variables) or memory
// maps name an entry's path uses it; in each mount namespace, a mount
// whose source is an entry (on the entry's device, a root that ends the
// entry's path) is a use by that namespace's processes.
func procUses(proc, root, real string, entries map[string]*rootItem) map[string][]string {
	out := map[string][]string{}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return out
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	seenNS := map[string]bool{}
	for _, pid := range pids {
		dir := filepath.Join(proc, strconv.Itoa(pid))
		comm, _ := readCapped(filepath.Join(dir, "comm"), 256)
		who := fmt.Sprintf("process %d (%s)", pid, strings.TrimSpace(string(comm)))
		env, _ := readCapped(filepath.Join(dir, "environ"), 1<<20)
		maps, _ := readCapped(filepath.Join(dir, "maps"), 16<<20)
		for _, k := range keys {
			for _, r := range []string{root, real} {
				needle := []byte(r + "/" + k + "/")
				if bytes.Contains(env, needle) || bytes.Contains(maps, needle) {
					out[k] = append(out[k], who)
					break
				}
			}
		}
		ns, err := os.Readlink(filepath.Join(dir, "ns", "mnt"))
		if err != nil || seenNS[ns] {
			continue
		}
		seenNS[ns] = true
		info, _ := readCapped(filepath.Join(dir, "mountinfo"), 16<<20)
		for _, line := range strings.Split(string(info), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 {
				continue
			}
			src, at := unescapeMount(f[3]), unescapeMount(f[4])
			for _, k := range keys {
				st, ok := entries[k].fi.Sys().(*syscall.Stat_t)
				if !ok || f[2] != fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)) ||
					!strings.HasSuffix(src, "/"+k) || !strings.HasSuffix(filepath.Join(real, k), src) {
					continue
				}
				out[k] = append(out[k], fmt.Sprintf("mounted at %s in the mount namespace of %s", at, who))
			}
		}
	}
	return out
}

// readCapped reads at most n bytes of the file p.
func readCapped(p string, n int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
