package hostdrivers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The cache commands (--cache-list, --cache-gc, --cache-clear; the man
// page's CACHE section): a view of one cache root and two ways to shrink
// it. They see what ownership.go proves ours and remove
// nothing else (invariant 4); an entry something uses from outside the
// root (a link, a CDI spec, a process, a bind mount) is shown so and never
// cleared. They print nothing: the command decides the output.

// EntryState says whether a cache entry still matches the host.
type EntryState string

// The states.
const (
	// StateCurrent: every host file the entry was built from is there
	// with the identity recorded then.
	StateCurrent EntryState = "current"
	// StateStale: a host file changed or is gone (a driver upgrade); no
	// launch uses the entry again, and the collector removes it once it
	// is a day old.
	StateStale EntryState = "stale"
	// StateOtherHost: another machine built it (a home directory shared
	// over NFS); its host files cannot be checked from here.
	StateOtherHost EntryState = "other-host"
)

// AtimePolicy is how the file system under a cache root keeps access
// times, from which an entry's last use is read: nixglhost writes
// nothing on the hot path to record a use.
type AtimePolicy string

// The policies, as mount(8) names them.
const (
	// AtimeStrict: every read updates the access time.
	AtimeStrict AtimePolicy = "strictatime"
	// AtimeRelative: a read updates it when it is older than the file's
	// last change or than a day (the usual default): a last use is
	// known to within a day.
	AtimeRelative AtimePolicy = "relatime"
	// AtimeNone: reads never update it; the last use is unknown.
	AtimeNone AtimePolicy = "noatime"
)

// EntryInfo is one cache entry as --cache-list shows it.
type EntryInfo struct {
	// Key is the entry's name in the root; Path its directory.
	Key  string `json:"key"`
	Path string `json:"path"`
	// DriverVersion is the driver's version; Class and Machine the ELF
	// class and machine of the programs it serves (a 32-bit companion
	// entry is ELFCLASS32).
	DriverVersion string `json:"driver_version"`
	Class         string `json:"class"`
	Machine       string `json:"machine"`
	// Mode is which kind of launch built it (EntryModeUnknown for an
	// entry built before the mode was recorded); SeenAt is where a
	// self-contained entry's vendor files say it is seen.
	Mode   EntryMode `json:"mode"`
	SeenAt string    `json:"seen_at,omitempty"`
	// Host is the machine that built it.
	Host string `json:"host,omitempty"`
	// Size is the bytes of its regular files (a file with several names
	// counted once), Files how many there are, and Symlinks how many
	// symbolic links it holds: a link to a host file takes no space here.
	Size     int64 `json:"size"`
	Files    int   `json:"files"`
	Symlinks int   `json:"symlinks"`
	// Built is when its manifest, written last, was written.
	Built time.Time `json:"built"`
	// LastUsed is the latest access time of its files and links and of
	// the indexes that name it (the hot path reads those), kept by the
	// file system as Listing.Atime says; nil when the file system keeps
	// none (noatime).
	LastUsed *time.Time `json:"last_used"`
	// State says whether its host files are unchanged.
	State EntryState `json:"state"`
	// InUse lists what uses it from outside the root (see Outside).
	InUse []string `json:"in_use,omitempty"`
	// Collectable says why the garbage collector would remove it now;
	// empty when it would not.
	Collectable string `json:"collectable,omitempty"`
}

// Leftover is a path in a cache root that a cache command left in place,
// and why.
type Leftover struct {
	Path string `json:"path"`
	Why  string `json:"why"`
}

// Listing is one cache root as --cache-list shows it.
type Listing struct {
	Root string `json:"root"`
	// Exists is false when the root does not exist (nothing else is set).
	Exists bool `json:"exists"`
	// Marked says the root carries nixglhost's CACHEDIR.TAG; a root
	// without it is used by no launch until one adopts it.
	Marked bool `json:"marked"`
	// Atime is how the root's file system keeps access times.
	Atime AtimePolicy `json:"atime,omitempty"`
	// Entries are the entries proved ours (OwnedEntry), by name.
	Entries []EntryInfo `json:"entries"`
	// Others are the names in the root that are not nixglhost's, and
	// why: never read, never removed.
	Others []Leftover `json:"others,omitempty"`
}

// ClearResult is what ClearCache did in one root.
type ClearResult struct {
	Root string `json:"root"`
	// Removed lists what was removed, in name order: entries and our
	// scratch files (indexes, locks no launch holds, abandoned builds).
	Removed []Removal `json:"-"`
	// Entries is how many of Removed were entries, and Freed the bytes
	// of their regular files.
	Entries int   `json:"entries"`
	Freed   int64 `json:"freed"`
	// Kept lists what is ours but was kept because it is in use.
	Kept []Leftover `json:"kept,omitempty"`
	// Others lists what is not nixglhost's, left alone.
	Others []Leftover `json:"others,omitempty"`
}

// Outside says where the cache commands look for uses of an entry from
// outside its root. An entry in use is listed so and never cleared.
type Outside struct {
	// Links are symbolic links that may point to an entry: system mode's
	// RUN/opengl-driver and RUN/opengl-driver-32. Each entry's own SeenAt
	// is looked at too, so a --run-dir of system mode is found.
	Links []string
	// Refs maps an entry's path to what refers to it (a CDI spec that
	// mounts it in containers).
	Refs map[string]string
	// Proc is the proc file system to look at ("/proc"), or "" for none.
	// A process whose environment or memory maps name an entry uses it;
	// so does every process of a mount namespace that binds it (a Nix
	// build the pre-build hook gave it, a container). Processes this user
	// cannot read (another user's, unless root) are not seen.
	Proc string
}

// NotCacheError says that a directory given to a cache command that
// removes things does not carry nixglhost's CACHEDIR.TAG: nothing was
// removed there.
type NotCacheError struct {
	// Dir is the refused directory.
	Dir string
}

func (e *NotCacheError) Error() string {
	return fmt.Sprintf("%s is not marked as a nixglhost cache (it has no CACHEDIR.TAG of nixglhost's): nothing was removed there", e.Dir)
}

// systemHistory is system mode's record of the entries it linked
// (internal/sysentry.HistoryBase), and systemLock its lock: both stay.
const (
	systemHistory = ".system-mode.linked"
	systemLock    = ".system-mode.lock"
)

// ListCache describes the cache root: its entries with their driver,
// mode, size, build time, last use and state, and what else is there.
// It changes nothing, not even an access time it reports: indexes are
// read with O_NOATIME, and manifests (which it reads) and directories
// (which it lists) are not counted as uses. A root that does not exist
// gives a Listing with Exists false; one that another user could have
// planted or can write is refused (CheckAncestors, CheckCacheRoot).
func ListCache(root string, out Outside, log *slog.Logger) (*Listing, error) {
	root = filepath.Clean(root)
	exists, err := checkedRoot(root)
	if err != nil {
		return nil, err
	}
	if !exists {
		return &Listing{Root: root}, nil
	}
	l := &Listing{Root: root, Exists: true, Marked: IsMarkedRoot(root), Atime: atimePolicy(root), Entries: []EntryInfo{}}
	items, err := scanRoot(root)
	if err != nil {
		return nil, err
	}
	indexed := indexAccess(items)
	uses := out.find(root, items)
	collectable := map[string]string{}
	for _, r := range collect(root, "", time.Now(), true, logOrDiscard(log)) {
		collectable[r.Path] = r.Why
	}
	host := hostName()
	for _, it := range items {
		p := filepath.Join(root, it.name)
		switch it.kind {
		case itemForeign:
			l.Others = append(l.Others, Leftover{p, it.why})
			continue
		case itemEntry:
		default:
			continue
		}
		m := it.m
		e := EntryInfo{Key: it.name, Path: p, DriverVersion: m.DriverVersion, Class: m.Class, Machine: m.Machine,
			Mode: m.Mode, SeenAt: m.SeenAt, Host: m.Host, InUse: uses[it.name], Collectable: collectable[p]}
		if e.Mode == "" {
			e.Mode = EntryModeUnknown
		}
		u, err := entryUsage(p)
		if err != nil {
			return nil, err
		}
		e.Size, e.Files, e.Symlinks, e.Built = u.size, u.files, u.symlinks, u.built
		if l.Atime != AtimeNone {
			last := u.access
			if t, ok := indexed[it.name]; ok && t.After(last) {
				last = t
			}
			e.LastUsed = &last
		}
		switch {
		case m.Host != "" && m.Host != host:
			e.State = StateOtherHost
		case m.current():
			e.State = StateCurrent
		default:
			e.State = StateStale
		}
		l.Entries = append(l.Entries, e)
	}
	return l, nil
}

// CollectGarbage runs the cold path's garbage collector on the cache root
// now (see collectGarbage: stale entries a day old, entries of another
// machine a month old, abandoned builds and locks) and returns what it
// removed and why; with dryRun it removes nothing and returns what it
// would remove. The root must exist, pass CheckAncestors and
// CheckCacheRoot, and carry our tag (else a *NotCacheError).
func CollectGarbage(root string, dryRun bool, log *slog.Logger) ([]Removal, error) {
	root = filepath.Clean(root)
	if err := changeableRoot(root); err != nil {
		return nil, err
	}
	return collect(root, "", time.Now(), dryRun, logOrDiscard(log)), nil
}

// ClearCache removes from the cache root every entry nixglhost provably
// made (OwnedEntry) and its scratch files (indexes, locks no launch holds,
// abandoned builds and their remains), except:
//
//   - an entry in use from outside the root (see Outside): a link points
//     to it, a CDI spec mounts it, a process or mount namespace uses it;
//   - an entry a link recorded in system mode's record (.system-mode.linked)
//     points to, in whatever --run-dir; one an older record names without
//     its link, when the entry does not record where it is seen either;
//   - an entry another machine built (a home directory shared over NFS),
//     whose uses there cannot be seen from here;
//   - a temporary directory whose builder is alive, a lock a launch holds;
//   - CACHEDIR.TAG and system mode's lock and record, so the root stays
//     ours;
//   - anything that is not nixglhost's, which is never touched.
//
// An entry is renamed aside first (.trash-KEY-PID), so no reader sees
// half of one. Nothing follows a link. System mode's lock is held
// meanwhile, where the root has one. The root must exist, pass
// CheckAncestors and CheckCacheRoot, and carry our tag (else a
// *NotCacheError). Failures to remove are joined in the error, with the
// result of the rest.
func ClearCache(root string, out Outside, log *slog.Logger) (*ClearResult, error) {
	root = filepath.Clean(root)
	log = logOrDiscard(log)
	if err := changeableRoot(root); err != nil {
		return nil, err
	}
	unlock, err := lockSystemMode(root)
	if err != nil {
		return nil, err
	}
	defer unlock()
	items, err := scanRoot(root)
	if err != nil {
		return nil, err
	}
	uses := out.find(root, items)
	res := &ClearResult{Root: root}
	var errs []error
	host, now := hostName(), time.Now()
	removed := func(p, why string) {
		log.Debug("cache cleared", "path", p, "why", why)
		res.Removed = append(res.Removed, Removal{p, why})
	}
	kept := func(p, why string) { res.Kept = append(res.Kept, Leftover{p, why}) }
	for _, it := range items {
		name := it.name
		p := filepath.Join(root, name)
		switch it.kind {
		case itemForeign:
			res.Others = append(res.Others, Leftover{p, it.why})
		case itemEntry:
			if u := uses[name]; len(u) > 0 {
				kept(p, "in use: "+strings.Join(u, "; "))
				continue
			}
			u, err := entryUsage(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := removeEntry(root, name); err != nil {
				errs = append(errs, err)
				continue
			}
			mode := it.m.Mode
			if mode == "" {
				mode = EntryModeUnknown
			}
			removed(p, fmt.Sprintf("a cache entry (driver %s, %s, %s)", it.m.DriverVersion, mode, HumanSize(u.size)))
			res.Entries++
			res.Freed += u.size
		case itemScratch:
			why, rm := "", os.Remove
			switch {
			case systemShapes.MatchString(name):
				// System mode's lock and record: its own to change.
				continue
			case tmpShape.MatchString(name):
				if !abandoned(name, host, now.Sub(it.fi.ModTime())) {
					kept(p, "a build in progress (its builder is alive)")
					continue
				}
				why, rm = "a temporary build directory whose builder is gone", removeOurs
			case trashShape.MatchString(name):
				why, rm = "the remains of a removed entry", removeOurs
			case lockShape.MatchString(name):
				unlockEntry, held := takeLock(p)
				if held {
					kept(p, "a lock a running launch holds")
					continue
				}
				defer unlockEntry()
				why = "a lock no launch holds"
			case indexShape.MatchString(name):
				why = "an index (the next launch looks for the driver again)"
			default:
				why = "an unfinished index"
			}
			if err := rm(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
				continue
			}
			removed(p, why)
		}
	}
	return res, errors.Join(errs...)
}

// HumanSize writes a size in bytes as people read it: "512 B", "1.5 MiB".
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func logOrDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return log
}

// checkedRoot reports whether root exists, and refuses one that another
// user could have planted, swap or write (CheckAncestors, CheckCacheRoot):
// it is never read.
func checkedRoot(root string) (bool, error) {
	fi, err := os.Lstat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cache directory %s: %w", root, err)
	}
	if err := CheckAncestors(root); err != nil {
		return true, err
	}
	return true, CheckCacheRoot(root, fi)
}

// changeableRoot checks root before a cache command removes anything in
// it: it exists (else an error wrapping fs.ErrNotExist), passes
// checkedRoot, and carries our tag.
func changeableRoot(root string) error {
	exists, err := checkedRoot(root)
	switch {
	case err != nil:
		return err
	case !exists:
		return fmt.Errorf("cache directory %s: %w", root, fs.ErrNotExist)
	case !IsMarkedRoot(root):
		return &NotCacheError{Dir: root}
	}
	return nil
}

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
