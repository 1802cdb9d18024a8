package hostdrivers

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
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
//
// It is long because it is the clear command's sequence over one root: lock,
// scan, prove, remove, report.
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
