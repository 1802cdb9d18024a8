package main

// --cache-list, --cache-gc and --cache-clear: the cache commands (the man
// page's CACHE section). pkg/hostdrivers decides what an entry is,
// whether it is in use and what may go; this file chooses the roots and
// prints.

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nixglhost/nixglhost/internal/cdi"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// cacheCommand reports whether c asks for one of the cache commands.
func (c *config) cacheCommand() bool { return c.cacheList || c.cacheGC || c.cacheClear }

// cacheFlagName is the cache command c asks for.
func (c *config) cacheFlagName() string {
	switch {
	case c.cacheList:
		return "--cache-list"
	case c.cacheGC:
		return "--cache-gc"
	}
	return "--cache-clear"
}

// cacheRoot is one root a cache command acts on.
type cacheRoot struct {
	dir string
	// kind is "user", "fallback", "system" or "cache-dir".
	kind string
	// always: say so when it does not exist (a fallback is not mentioned).
	always bool
}

// cacheCommandRoots returns the roots the cache commands act on: the
// --cache-dir alone, else the user's cache and the fallbacks a launch
// uses when it cannot be written, and, as root, the system cache.
func cacheCommandRoots(c *config, environ []string) ([]cacheRoot, error) {
	if c.cacheDir != "" {
		dir, _, err := cacheDirs(c.cacheDir, environ)
		if err != nil {
			return nil, err
		}
		kind := "cache-dir"
		if dir == systemCacheDir {
			kind = "system"
		}
		return []cacheRoot{{dir, kind, true}}, nil
	}
	primary, fallbacks, err := cacheDirs("", environ)
	if err != nil {
		return nil, err
	}
	var out []cacheRoot
	if user, err := cacheDir("", environ); err == nil && user == primary {
		out = append(out, cacheRoot{primary, "user", true})
	} else {
		fallbacks = append([]string{primary}, fallbacks...)
	}
	for _, f := range fallbacks {
		out = append(out, cacheRoot{f, "fallback", false})
	}
	if os.Geteuid() == 0 {
		out = append(out, cacheRoot{systemCacheDir, "system", true})
	}
	return out, nil
}

// cacheOutside is where the cache commands look for uses of an entry:
// RUN/opengl-driver and -32 (each entry's own SeenAt is looked at too),
// the specs of nixglhost's kind in the runtimes' CDI directories, and the
// processes of /proc.
func cacheOutside(c *config) hostdrivers.Outside {
	refs := map[string]string{}
	for _, dir := range []string{"/etc/cdi", "/var/run/cdi"} {
		p := filepath.Join(dir, cdi.FileName)
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// Any spec of the kind keeps the entry it mounts: keeping is safe.
		if e, ok := cdi.Entry(b); ok && refs[e] == "" {
			refs[e] = "the CDI spec " + p + " mounts it"
		}
	}
	return hostdrivers.Outside{
		Links: []string{filepath.Join(c.runDir, linkBase), filepath.Join(c.runDir, link32Base)},
		Refs:  refs,
		Proc:  "/proc",
	}
}

// runCacheCommand runs --cache-list, --cache-gc or --cache-clear on every
// root of cacheCommandRoots, printing text or, with --json, one object
// {"caches": [...]} with one element per root. It returns 1 when a root
// was refused or something could not be removed, else 0.
func runCacheCommand(c *config, stdout, stderr io.Writer, environ []string) int {
	roots, err := cacheCommandRoots(c, environ)
	if err != nil {
		fmt.Fprintf(stderr, "nixglhost: %v\n", err)
		return 1
	}
	log := newLogger(c, stderr, environ)
	out := cacheOutside(c)
	code := 0
	var reports []any
	for _, r := range roots {
		var rep any
		var err error
		switch {
		case c.cacheList:
			rep, err = cacheListRoot(stdout, r, out, log, c.json)
		case c.cacheGC:
			rep, err = cacheGCRoot(stdout, r, log, c.json)
		default:
			rep, err = cacheClearRoot(stdout, r, out, log, c.json)
		}
		if err != nil {
			fmt.Fprintf(stderr, "nixglhost: %v\n", err)
			code = 1
		}
		if rep != nil {
			reports = append(reports, rep)
		}
	}
	if c.json {
		if reports == nil {
			reports = []any{}
		}
		b, err := json.MarshalIndent(map[string]any{"caches": reports}, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "nixglhost: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", b)
	}
	return code
}

// label is how the text output names a root's kind.
func (r cacheRoot) label() string {
	if r.kind == "cache-dir" {
		return ""
	}
	return " (" + r.kind + " cache)"
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// cacheListRoot lists one root.
//
// It is long because it prints one root's listing, section after section.
func cacheListRoot(w io.Writer, r cacheRoot, out hostdrivers.Outside, log *slog.Logger, asJSON bool) (any, error) {
	l, err := hostdrivers.ListCache(r.dir, out, log)
	if asJSON {
		if err == nil && !l.Exists && !r.always {
			return nil, nil
		}
		return struct {
			Kind  string `json:"kind"`
			Root  string `json:"root"`
			Error string `json:"error,omitempty"`
			*hostdrivers.Listing
		}{r.kind, r.dir, errString(err), l}, err
	}
	if err != nil {
		return nil, err
	}
	if !l.Exists {
		if r.always {
			fmt.Fprintf(w, "%s%s: no cache here\n", r.dir, r.label())
		}
		return nil, nil
	}
	var total int64
	for _, e := range l.Entries {
		total += e.Size
	}
	fmt.Fprintf(w, "%s%s: %s, %s\n", r.dir, r.label(), plural(len(l.Entries), "entry", "entries"), hostdrivers.HumanSize(total))
	if !l.Marked {
		fmt.Fprintf(w, "  not marked as nixglhost's (no CACHEDIR.TAG of nixglhost's): no launch uses it until one adopts it\n")
	}
	if len(l.Entries) > 0 {
		rows := [][]string{{"KEY", "DRIVER", "MODE", "SIZE", "BUILT", "LAST USED", "STATE"}}
		var notes [][]string
		for _, e := range l.Entries {
			driver := printable(e.DriverVersion)
			if e.Class == elf.ELFCLASS32.String() {
				driver += " (32-bit)"
			}
			last := "unknown"
			if e.LastUsed != nil {
				last = when(*e.LastUsed)
			}
			rows = append(rows, []string{e.Key, driver, string(e.Mode), hostdrivers.HumanSize(e.Size), when(e.Built), last, string(e.State)})
			var n []string
			if e.SeenAt != "" {
				n = append(n, "seen at "+printable(e.SeenAt))
			}
			for _, u := range e.InUse {
				n = append(n, "in use: "+printable(u))
			}
			if e.Collectable != "" {
				n = append(n, "--cache-gc would remove it: "+e.Collectable)
			}
			notes = append(notes, n)
		}
		widths := make([]int, len(rows[0]))
		for _, row := range rows {
			for i, cell := range row {
				widths[i] = max(widths[i], len(cell))
			}
		}
		for i, row := range rows {
			var b strings.Builder
			for j, cell := range row {
				if j == len(row)-1 {
					b.WriteString(cell)
				} else {
					fmt.Fprintf(&b, "%-*s  ", widths[j], cell)
				}
			}
			fmt.Fprintf(w, "  %s\n", b.String())
			if i > 0 {
				for _, n := range notes[i-1] {
					fmt.Fprintf(w, "      %s\n", n)
				}
			}
		}
		switch l.Atime {
		case hostdrivers.AtimeNone:
			fmt.Fprintf(w, "  LAST USED is unknown: the file system is mounted noatime, and nixglhost records nothing when it runs\n")
		case hostdrivers.AtimeRelative:
			fmt.Fprintf(w, "  LAST USED is the files' access time (relatime: right to within a day); nixglhost records nothing when it runs\n")
		default:
			fmt.Fprintf(w, "  LAST USED is the files' access time (%s); nixglhost records nothing when it runs\n", l.Atime)
		}
	}
	// A directory given by mistake (a home) may hold many: ten are named.
	for i, o := range l.Others {
		if i == 10 {
			fmt.Fprintf(w, "  and %d more names that are not nixglhost's (--json lists them)\n", len(l.Others)-i)
			break
		}
		fmt.Fprintf(w, "  not nixglhost's, left alone: %s (%s)\n", printable(filepath.Base(o.Path)), printable(o.Why))
	}
	return nil, nil
}

// cacheGCRoot collects one root's garbage.
func cacheGCRoot(w io.Writer, r cacheRoot, log *slog.Logger, asJSON bool) (any, error) {
	removed, err := hostdrivers.CollectGarbage(r.dir, false, log)
	if errors.Is(err, fs.ErrNotExist) {
		if r.always && !asJSON {
			fmt.Fprintf(w, "%s%s: no cache here\n", r.dir, r.label())
		}
		return nil, nil
	}
	if asJSON {
		return struct {
			Kind    string                 `json:"kind"`
			Root    string                 `json:"root"`
			Error   string                 `json:"error,omitempty"`
			Removed []hostdrivers.Leftover `json:"removed"`
		}{r.kind, r.dir, errString(err), leftovers(removed)}, err
	}
	if err != nil {
		return nil, err
	}
	for _, x := range removed {
		fmt.Fprintf(w, "removed %s: %s\n", x.Path, x.Why)
	}
	if len(removed) == 0 {
		fmt.Fprintf(w, "%s%s: nothing to collect (no entry stale for a day, none of another machine's a month old, no abandoned build or lock)\n", r.dir, r.label())
	}
	return nil, nil
}

// cacheClearRoot clears one root.
func cacheClearRoot(w io.Writer, r cacheRoot, out hostdrivers.Outside, log *slog.Logger, asJSON bool) (any, error) {
	res, err := hostdrivers.ClearCache(r.dir, out, log)
	if errors.Is(err, fs.ErrNotExist) && res == nil {
		if r.always && !asJSON {
			fmt.Fprintf(w, "%s%s: no cache here\n", r.dir, r.label())
		}
		return nil, nil
	}
	if asJSON {
		var removed []hostdrivers.Leftover
		if res != nil {
			removed = leftovers(res.Removed)
		}
		return struct {
			Kind    string                 `json:"kind"`
			Root    string                 `json:"root"`
			Error   string                 `json:"error,omitempty"`
			Removed []hostdrivers.Leftover `json:"removed"`
			*hostdrivers.ClearResult
		}{r.kind, r.dir, errString(err), removed, res}, err
	}
	if res == nil {
		return nil, err
	}
	scratch := 0
	for _, x := range res.Removed {
		if hostdrivers.IsKeyName(filepath.Base(x.Path)) {
			fmt.Fprintf(w, "removed %s: %s\n", x.Path, printable(x.Why))
		} else {
			scratch++
		}
	}
	for _, k := range res.Kept {
		fmt.Fprintf(w, "kept %s: %s\n", k.Path, printable(k.Why))
	}
	for _, o := range res.Others {
		fmt.Fprintf(w, "left alone %s: not nixglhost's (%s)\n", printable(o.Path), printable(o.Why))
	}
	fmt.Fprintf(w, "%s%s: removed %s (%s) and %s (indexes, locks, leftovers)", r.dir, r.label(),
		plural(res.Entries, "entry", "entries"), hostdrivers.HumanSize(res.Freed), plural(scratch, "file of its own", "files of its own"))
	if len(res.Kept) > 0 {
		fmt.Fprintf(w, "; kept %d in use", len(res.Kept))
	}
	if len(res.Others) > 0 {
		fmt.Fprintf(w, "; left %s that nixglhost did not make", plural(len(res.Others), "name", "names"))
	}
	fmt.Fprintf(w, "; %s stays\n", hostdrivers.CacheTagName)
	return nil, err
}

// leftovers turns removals into JSON's path/why objects.
func leftovers(rs []hostdrivers.Removal) []hostdrivers.Leftover {
	out := []hostdrivers.Leftover{}
	for _, r := range rs {
		out = append(out, hostdrivers.Leftover{Path: r.Path, Why: r.Why})
	}
	return out
}

// when writes a time for the listing, in local time to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// plural writes n and the noun that goes with it.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// printable quotes s when it holds a character a terminal would act on (a
// file name in the cache root is anyone's choice).
func printable(s string) string {
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
