package hostdrivers

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/internal/rawfile"
	"golang.org/x/sys/unix"
)

// A launch must notice any change of the host driver (invariant 6), yet a
// hot launch must not list large system directories or read ELF files. So
// the cold path records every file system fact the cache key was computed
// from, as a watch: each directory listed or looked for, each directory
// holding a symbolic link that was followed, each driver and vendor file,
// the loader configuration. The hot path only stats the watches; when all
// are as recorded, the key is the recorded one.

// index is what the cold path leaves for the hot path, in the cache root
// as .index-INPUTS, where INPUTS hashes everything besides the file system
// that the key depends on (root, program architecture, flags, the caller's
// LD_LIBRARY_PATH) and the machine's name. It carries a summary of the entry's manifest (what the
// environment and the launch warnings need), so a hot launch decodes no
// large manifest.
//
// It is a line format, cheap to parse:
//
//	nixglhost-index FORMAT
//	key KEY
//	module MODULE-VERSION
//	root ROOT                        (the manifest's summary: one line a field,
//	class CLASS                       repeated lines for lists; no JSON, whose
//	machine MACHINE                   first use costs a fresh process about
//	driver VERSION                    half a millisecond)
//	reason TEXT
//	api API
//	data API DEST
//	glibc VERSION FILE
//	w DEV INO SIZE MTIME_NS PATH     (a watched file or directory)
//	a PATH                           (a watched absence)
//	l DEV INO SIZE MTIME_NS PATH     (the same, seen by lstat)
//	n PATH                           (an absence, seen by lstat)
type index struct {
	// Key names the entry, or is noDriverKey: the inputs found no usable
	// driver (then WrongArch lists what was of another architecture).
	Key       string
	Module    string
	Summary   *Manifest
	Watches   []watch
	WrongArch []Skipped
	// CompanionNone records that the 32-bit companion of this entry's
	// program found no driver, under watches this index holds too (see
	// Session.PrepareCompanion).
	CompanionNone bool
}

// noDriverKey is the key of an index that records that its inputs found no
// usable driver, so that a launch that looks for one that is not there (the
// 32-bit companion on most machines) pays a hot launch's price, not a
// scan's.
const noDriverKey = "none"

// summary is the part of m the hot path needs.
func summary(m *Manifest) *Manifest {
	s := &Manifest{
		Format: m.Format, Key: m.Key, Root: m.Root, Class: m.Class, Machine: m.Machine,
		DriverVersion: m.DriverVersion, ModuleVersion: m.ModuleVersion, Reason: m.Reason, Compat: m.Compat,
		APIs: m.APIs, GlibcNeeds: m.GlibcNeeds,
	}
	for _, d := range m.Data {
		s.Data = append(s.Data, DataOut{API: d.API, Dest: d.Dest})
	}
	// The driver libraries missing everywhere: a hot launch warns too.
	for _, x := range m.Missing {
		if x.Code == SkipNoComponent {
			s.Missing = append(s.Missing, x)
		}
	}
	return s
}

// inputs is the canonical value of everything the decisions of Resolve
// depend on besides the host's files: each Options field that is an input,
// spelled one way (Root "" and "/" are one root; a zero Target is this
// machine's). The hot path's index is named from it, so two launches share
// an index only when Resolve would decide alike for them. Every Options
// field is either here or named in TestInputsKeyed's list of non-inputs
// (Logger, BuildHook): a field added to Options fails that test until it is
// keyed.
type inputs struct {
	Format           int
	Host             string
	Root             string
	Dirs             []string
	LibraryPath      string
	Target           [3]int
	SelfContained    bool
	SeenAt           string
	CompanionSeenAt  string
	TrustedFilesOnly bool
	Mesa             bool
	VDPAUPeer        string
	MesaOnly         bool
}

// inputs returns o's canonical inputs.
func (o *Options) inputs() inputs {
	t := o.target()
	return inputs{
		// The watches hold device and inode numbers, which differ between
		// machines sharing a home directory: each machine keeps its own
		// index.
		Format: indexFormat, Host: hostName(), Root: o.root(), Dirs: o.Dirs, LibraryPath: o.LibraryPath,
		Target:        [3]int{int(t.Class), int(t.Data), int(t.Machine)},
		SelfContained: o.SelfContained, SeenAt: o.SeenAt, CompanionSeenAt: o.CompanionSeenAt, TrustedFilesOnly: o.TrustedFilesOnly, Mesa: o.Mesa,
		VDPAUPeer: o.VDPAUPeer, MesaOnly: o.MesaOnly,
	}
}

// inputsName names the index file for o: a hash of its canonical inputs.
func inputsName(o *Options) string {
	h := fnv.New128a()
	// Go syntax names every field and quotes every string: one spelling
	// per value, whatever fields are added.
	fmt.Fprintf(h, "%#v", o.inputs())
	return ".index-" + hex.EncodeToString(h.Sum(nil)[:12])
}

const indexMagic = "nixglhost-index"

// indexFormat is the index's format version, in its first line and its
// file name: a binary that writes another format reads and writes other
// files. 2: the "companion none" line.
const indexFormat = 2

// readIndex reads the index at p without following a symlink. Any problem
// makes it a miss.
func readIndex(p string) *index {
	f, err := rawfile.Open(p, unix.O_NOFOLLOW)
	if err != nil {
		return nil
	}
	defer f.Close()
	// Only an index of this user's that nobody else can write is read
	// (it names the entry a launch uses); checked on what was opened.
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o022 != 0 || int(st.Uid) != os.Geteuid() {
		return nil
	}
	b, err := rawfile.ReadAll(f, st.Size, 4<<20)
	if err != nil {
		return nil
	}
	return parseIndex(b)
}

// parseIndex parses the line format; nil for anything malformed.
//
// It is long because it is a line parser with one case per line kind of the
// index format.
func parseIndex(b []byte) *index {
	var idx index
	sum := func() *Manifest {
		if idx.Summary == nil {
			idx.Summary = &Manifest{Format: FormatVersion}
		}
		return idx.Summary
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 || lines[0] != indexMagic+" "+strconv.Itoa(indexFormat) {
		return nil
	}
	for _, l := range lines[1:] {
		tag, rest, _ := strings.Cut(l, " ")
		switch tag {
		case "key":
			idx.Key = rest
		case "module":
			idx.Module = rest
		case "root":
			sum().Root = rest
		case "class":
			sum().Class = rest
		case "machine":
			sum().Machine = rest
		case "driver":
			sum().DriverVersion = rest
		case "reason":
			sum().Reason = rest
		case "compat":
			sum().Compat = rest
		case "api":
			sum().APIs = append(sum().APIs, catalog.API(rest))
		case "data":
			api, dest, ok := strings.Cut(rest, " ")
			if !ok {
				return nil
			}
			sum().Data = append(sum().Data, DataOut{API: catalog.API(api), Dest: dest})
		case "glibc":
			v, file, ok := strings.Cut(rest, " ")
			if !ok {
				return nil
			}
			sum().GlibcNeeds = append(sum().GlibcNeeds, GlibcNeed{File: file, Version: v})
		case "companion":
			if rest != noDriverKey {
				return nil
			}
			idx.CompanionNone = true
		case "wrongarch":
			// A no-driver index: a driver file of another architecture.
			p, why, ok := strings.Cut(rest, "\t")
			if !ok || p == "" {
				return nil
			}
			idx.WrongArch = append(idx.WrongArch, Skipped{Path: p, Reason: why, Code: SkipWrongArch})
		case "component":
			name, reason, ok := strings.Cut(rest, " ")
			if !ok || name == "" {
				return nil
			}
			sum().Missing = append(sum().Missing, Skipped{Path: name, Reason: reason, Code: SkipNoComponent})
		case "a", "n":
			if rest == "" {
				return nil
			}
			idx.Watches = append(idx.Watches, watch{Path: rest, Absent: true, NoFollow: tag == "n"})
		case "w", "l":
			f := strings.SplitN(rest, " ", 5)
			if len(f) != 5 || f[4] == "" {
				return nil
			}
			var n [4]uint64
			for i := range 4 {
				v, err := strconv.ParseUint(f[i], 10, 64)
				if err != nil {
					return nil
				}
				n[i] = v
			}
			idx.Watches = append(idx.Watches, watch{Path: f[4], ID: FileID{Dev: n[0], Ino: n[1], Size: int64(n[2]), MtimeNs: int64(n[3])}, NoFollow: tag == "l"})
		case "":
		default:
			return nil
		}
	}
	if (len(idx.Key) != 32 && idx.Key != noDriverKey) || strings.ContainsAny(idx.Key, "/.") || idx.Summary == nil {
		return nil
	}
	idx.Summary.Key = idx.Key
	idx.Summary.ModuleVersion = idx.Module
	return &idx
}

// encode writes the line format; ok is false when a path cannot be
// written in it (a newline in a name).
func (idx *index) encode() ([]byte, bool) {
	var b strings.Builder
	m := idx.Summary
	fields := []string{idx.Module, m.Root, m.Class, m.Machine, m.DriverVersion, m.Reason, m.Compat}
	for _, d := range m.Data {
		fields = append(fields, string(d.API), d.Dest)
	}
	for _, a := range m.APIs {
		fields = append(fields, string(a))
	}
	for _, g := range m.GlibcNeeds {
		fields = append(fields, g.Version, g.File)
	}
	for _, x := range m.Missing {
		fields = append(fields, x.Path, x.Reason)
	}
	for _, f := range fields {
		if strings.Contains(f, "\n") {
			return nil, false
		}
	}
	for _, f := range []string{m.Class, m.Machine, m.DriverVersion} {
		if strings.Contains(f, " ") {
			return nil, false
		}
	}
	fmt.Fprintf(&b, "%s %d\nkey %s\nmodule %s\nroot %s\nclass %s\nmachine %s\ndriver %s\nreason %s\n",
		indexMagic, indexFormat, idx.Key, idx.Module, m.Root, m.Class, m.Machine, m.DriverVersion, m.Reason)
	if m.Compat != "" {
		fmt.Fprintf(&b, "compat %s\n", m.Compat)
	}
	for _, a := range m.APIs {
		if strings.Contains(string(a), " ") {
			return nil, false
		}
		fmt.Fprintf(&b, "api %s\n", a)
	}
	for _, d := range m.Data {
		if strings.Contains(string(d.API), " ") {
			return nil, false
		}
		fmt.Fprintf(&b, "data %s %s\n", d.API, d.Dest)
	}
	for _, g := range m.GlibcNeeds {
		if strings.Contains(g.Version, " ") {
			return nil, false
		}
		fmt.Fprintf(&b, "glibc %s %s\n", g.Version, g.File)
	}
	for _, x := range m.Missing {
		if strings.Contains(x.Path, " ") || x.Path == "" {
			return nil, false
		}
		fmt.Fprintf(&b, "component %s %s\n", x.Path, x.Reason)
	}
	if idx.CompanionNone {
		fmt.Fprintf(&b, "companion %s\n", noDriverKey)
	}
	for _, x := range idx.WrongArch {
		if x.Path == "" || strings.ContainsAny(x.Path+x.Reason, "\n\t") {
			return nil, false
		}
		fmt.Fprintf(&b, "wrongarch %s\t%s\n", x.Path, x.Reason)
	}
	for _, w := range idx.Watches {
		if strings.Contains(w.Path, "\n") {
			return nil, false
		}
		present, absent := "w", "a"
		if w.NoFollow {
			present, absent = "l", "n"
		}
		if w.Absent {
			fmt.Fprintf(&b, "%s %s\n", absent, w.Path)
		} else {
			fmt.Fprintf(&b, "%s %d %d %d %d %s\n", present, w.ID.Dev, w.ID.Ino, uint64(w.ID.Size), uint64(w.ID.MtimeNs), w.Path)
		}
	}
	return []byte(b.String()), true
}

// valid reports whether every watch still holds and the module version is
// the one recorded.
func (idx *index) valid(module string, s *Session) bool {
	if idx.Module != module {
		return false
	}
	var dirs dirHandles
	defer dirs.close()
	for i, w := range idx.Watches {
		// A directory is opened for a run of watches in it; a path alone
		// in its directory is stat'ed whole (an open costs more than a
		// stat).
		shared := i+1 < len(idx.Watches) && sameDir(w.Path, idx.Watches[i+1].Path)
		r := s.stat(w.Path, w.NoFollow, &dirs, shared)
		if w.Absent {
			if !r.absent {
				return false
			}
			continue
		}
		if r.err || r.absent || r.id != w.ID {
			return false
		}
	}
	return true
}

// sameDir reports whether two paths name entries of one directory.
func sameDir(a, b string) bool {
	da, _ := filepath.Split(a)
	db, _ := filepath.Split(b)
	return da == db
}

// stat returns the state of a watched path, stat'ed (lstat'ed when
// noFollow) once per session: relative to its directory's handle in dirs
// when that is open or open (shared), else by its whole path.
func (s *Session) stat(p string, noFollow bool, dirs *dirHandles, shared bool) statResult {
	key := watchKey(p, noFollow)
	if r, ok := s.stats[key]; ok {
		return r
	}
	flags := 0
	if noFollow {
		flags = unix.AT_SYMLINK_NOFOLLOW
	}
	var st unix.Stat_t
	var err error
	dir, base := filepath.Split(p)
	if base == "" || !shared && !dirs.has(dir) {
		dir, base = "", p
	}
	if fd, derr := dirs.get(dir); derr != nil {
		err = derr
	} else {
		err = ignoringEINTR(func() error { return unix.Fstatat(fd, base, &st, flags) })
	}
	var r statResult
	switch {
	case errors.Is(err, unix.ENOENT):
		r.absent = true
	case err != nil:
		r.err = true
	default:
		r.id = FileID{Dev: uint64(st.Dev), Ino: st.Ino, Size: st.Size, MtimeNs: st.Mtim.Nano()}
	}
	if s.stats == nil {
		s.stats = map[string]statResult{}
	}
	s.stats[key] = r
	return r
}

// dirHandles are the directories of one index check's watched paths,
// opened once each (O_PATH: for their names only), so that each stat
// looks up one name instead of walking the whole path again: a hot launch
// stats some 60 paths in a handful of directories.
type dirHandles struct {
	dirs []string
	fds  []int
	errs []error
}

// get returns the handle of dir (a path ending in "/"), opened on first
// use; "" is the working directory (for a relative or whole path).
func (h *dirHandles) get(dir string) (int, error) {
	if dir == "" {
		return unix.AT_FDCWD, nil
	}
	if i := slices.Index(h.dirs, dir); i >= 0 {
		return h.fds[i], h.errs[i]
	}
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		fd = -1
	}
	h.dirs, h.fds, h.errs = append(h.dirs, dir), append(h.fds, fd), append(h.errs, err)
	return fd, err
}

// has reports whether dir was opened (or tried).
func (h *dirHandles) has(dir string) bool { return slices.Contains(h.dirs, dir) }

func (h *dirHandles) close() {
	for _, fd := range h.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// ignoringEINTR calls fn until it fails with something other than EINTR.
func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// writeIndex writes the index atomically (a temporary file renamed into
// place). Failure only costs the next launch a scan. It never renames over
// a file at p that is not an index of ours (invariant 4).
func writeIndex(p string, idx *index) {
	b, ok := idx.encode()
	if !ok || !replaceableIndex(p) {
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

// replaceableIndex reports whether p is absent or a regular file of this
// user's that starts as an index does: what writeIndex may rename over.
func replaceableIndex(p string) bool {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || !ownedByMe(fi) {
		return false
	}
	var head [len(indexMagic)]byte
	n, _ := f.Read(head[:])
	return string(head[:n]) == indexMagic
}
