package ldpath

import (
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// SplitLibraryPath splits an LD_LIBRARY_PATH value as glibc's loader does:
// elements are separated by ':' or ';', and empty elements are kept as ""
// (the loader searches the current directory for them). An empty s gives
// no elements.
func SplitLibraryPath(s string) []string {
	if s == "" {
		return nil
	}
	var elems []string
	for {
		i := strings.IndexAny(s, ":;")
		if i < 0 {
			return append(elems, s)
		}
		elems = append(elems, s[:i])
		s = s[i+1:]
	}
}

// DefaultDirs returns the directories the loader searches last for a
// program of the given class and machine, as found on the distributions we
// meet: first the Debian/Ubuntu multiarch pair (/lib/TRIPLET,
// /usr/lib/TRIPLET; these are what Debian's loader has built in), then the
// biarch directories Fedora, SUSE and Arch use (/lib64 and /usr/lib64 for
// 64-bit, /lib32 and /usr/lib32 or /libx32 and /usr/libx32 for the 32-bit
// flavours of a 64-bit machine), then /lib and /usr/lib. A machine with no
// known triplet gets only the generic directories. ARM gets the hard-float
// triplet (arm-linux-gnueabihf), PowerPC 64 the little-endian one, as
// those are what the distributions ship. The directories need not exist;
// pass the result through Dedup.
func DefaultDirs(class elf.Class, machine elf.Machine) []string {
	var triplet, bi string
	switch {
	case class == elf.ELFCLASS64 && machine == elf.EM_X86_64:
		triplet, bi = "x86_64-linux-gnu", "lib64"
	case class == elf.ELFCLASS32 && machine == elf.EM_X86_64:
		triplet, bi = "x86_64-linux-gnux32", "libx32"
	case class == elf.ELFCLASS32 && machine == elf.EM_386:
		triplet, bi = "i386-linux-gnu", "lib32"
	case class == elf.ELFCLASS64 && machine == elf.EM_AARCH64:
		triplet, bi = "aarch64-linux-gnu", "lib64"
	case class == elf.ELFCLASS32 && machine == elf.EM_ARM:
		triplet = "arm-linux-gnueabihf"
	case class == elf.ELFCLASS64 && machine == elf.EM_PPC64:
		triplet, bi = "powerpc64le-linux-gnu", "lib64"
	case class == elf.ELFCLASS64 && machine == elf.EM_S390:
		triplet, bi = "s390x-linux-gnu", "lib64"
	case class == elf.ELFCLASS64 && machine == elf.EM_RISCV:
		triplet, bi = "riscv64-linux-gnu", "lib64"
	case class == elf.ELFCLASS64 && machine == elf.EM_LOONGARCH:
		triplet, bi = "loongarch64-linux-gnu", "lib64"
	case class == elf.ELFCLASS64 && machine == elf.EM_MIPS:
		triplet, bi = "mips64el-linux-gnuabi64", "lib64"
	case class == elf.ELFCLASS64:
		bi = "lib64"
	}
	var dirs []string
	if triplet != "" {
		dirs = append(dirs, "/lib/"+triplet, "/usr/lib/"+triplet)
	}
	if bi != "" {
		dirs = append(dirs, "/"+bi, "/usr/"+bi)
	}
	return append(dirs, "/lib", "/usr/lib")
}

// Dropped is a directory Dedup left out, and why.
type Dropped struct {
	Dir, Reason string
	// Kind says why, for callers that act on it (Reason is for people).
	Kind DropKind
	// Err is the error that dropped it, for DropError.
	Err error
}

// DropKind says why Dedup dropped a directory.
type DropKind int

// The reasons a directory is dropped.
const (
	// DropError: resolving or stat'ing it failed (Err says how).
	DropError DropKind = iota
	// DropNotAbsolute: an empty or relative entry.
	DropNotAbsolute
	// DropNotDir: it is not a directory.
	DropNotDir
	// DropSameDir: the same directory as an earlier entry.
	DropSameDir
)

// Dedup resolves each directory inside root (see Resolve) and drops those
// that are missing, not directories, or the same directory (same device and
// inode, so bind mounts and a merged /usr count as one) as an earlier entry.
// It returns the resolved inside-root paths it keeps, in order, and for each
// entry dropped its reason, for traces. An empty or relative entry is
// dropped: it would name the current directory, not a place under root.
func Dedup(root string, dirs []string) (kept []string, dropped []Dropped) {
	k, dropped := DedupIndexed(root, dirs)
	for _, x := range k {
		kept = append(kept, x.Dir)
	}
	return kept, dropped
}

// Kept is a directory Dedup kept: its resolved path inside the root, and
// the index in the input of the entry it came from.
type Kept struct {
	Dir   string
	Index int
}

// DedupIndexed is Dedup, also saying which input each kept directory came
// from, so a caller can carry along what it knows of each input.
func DedupIndexed(root string, dirs []string) (kept []Kept, dropped []Dropped) {
	type devIno struct{ dev, ino uint64 }
	seen := map[devIno]string{}
	for i, d := range dirs {
		if !strings.HasPrefix(d, "/") {
			dropped = append(dropped, Dropped{Dir: d, Reason: "not an absolute path", Kind: DropNotAbsolute})
			continue
		}
		r, err := Resolve(root, d)
		if err != nil {
			dropped = append(dropped, Dropped{Dir: d, Reason: err.Error(), Kind: DropError, Err: err})
			continue
		}
		fi, err := os.Stat(HostPath(root, r))
		if err != nil {
			dropped = append(dropped, Dropped{Dir: d, Reason: err.Error(), Kind: DropError, Err: err})
			continue
		}
		if !fi.IsDir() {
			dropped = append(dropped, Dropped{Dir: d, Reason: "not a directory: " + r, Kind: DropNotDir})
			continue
		}
		key := devIno{}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			key = devIno{uint64(st.Dev), uint64(st.Ino)}
		}
		if first, ok := seen[key]; ok {
			dropped = append(dropped, Dropped{Dir: d, Reason: "same directory as " + first, Kind: DropSameDir})
			continue
		}
		seen[key] = d
		kept = append(kept, Kept{Dir: r, Index: i})
	}
	return kept, dropped
}

// Searcher answers "where would the loader find this soname": in the
// LibraryPath directories, then through the Cache, then in the Default
// directories, which is glibc's order without the RPATH and RUNPATH of the
// object that asks (those are per object; a caller can put them in
// LibraryPath).
type Searcher struct {
	Root        string // the host root every path is inside of
	Class       elf.Class
	Machine     elf.Machine
	LibraryPath []string // inside-root directories searched first
	Cache       *Cache   // may be nil
	Default     []string // inside-root directories searched last
	// Accept, if set, is called with the host path of each candidate found
	// in a directory (not of cache entries, already filtered by their
	// flags); false skips it, as the loader skips a file of the wrong
	// class or machine and goes on searching.
	Accept func(hostPath string) bool
}

// Find returns the inside-root path under which the loader would find
// soname: DIR/soname for a directory hit (not resolved further, as the
// loader names it), or the cache's path. A candidate must resolve inside
// root to a regular file. Like glibc, Find takes only the first cache entry
// that matches the class and machine (see Cache.Lookup) and goes on to the
// default directories when that file is missing. Empty and relative
// LibraryPath entries (the current directory to the loader) are skipped, as
// are glibc-hwcaps subdirectories of the directories. The error wraps
// fs.ErrNotExist when the soname is not found.
func (s *Searcher) Find(soname string) (string, error) {
	if soname == "" || strings.Contains(soname, "/") {
		return "", fmt.Errorf("find %q: not a soname", soname)
	}
	for _, d := range s.LibraryPath {
		if p, ok := s.inDir(d, soname); ok {
			return p, nil
		}
	}
	if paths := s.Cache.Lookup(soname, s.Class, s.Machine); len(paths) > 0 {
		if s.isFile(paths[0]) {
			return path.Clean(paths[0]), nil
		}
	}
	for _, d := range s.Default {
		if p, ok := s.inDir(d, soname); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s under %s: %w", soname, rootName(s.Root), fs.ErrNotExist)
}

func (s *Searcher) inDir(dir, soname string) (string, bool) {
	if !strings.HasPrefix(dir, "/") {
		return "", false
	}
	p := path.Join(dir, soname)
	if !s.isFile(p) {
		return "", false
	}
	if s.Accept != nil {
		r, _ := Resolve(s.Root, p)
		if !s.Accept(HostPath(s.Root, r)) {
			return "", false
		}
	}
	return p, true
}

func (s *Searcher) isFile(p string) bool {
	r, err := Resolve(s.Root, p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(HostPath(s.Root, r))
	return err == nil && fi.Mode().IsRegular()
}

// NewHostSearcher returns the Searcher a program of the given class and
// machine installed the usual way on the host under root would use: root's
// /etc/ld.so.cache as Cache, and DefaultDirs as Default. When the cache file
// is missing, Cache is nil and the directories of root's /etc/ld.so.conf
// (ParseConf) go before the default ones, so that a host tree with no cache
// is still searched where its configuration says. Accept is MatchELF(class,
// machine). LibraryPath is left empty for the caller.
func NewHostSearcher(root string, class elf.Class, machine elf.Machine) (*Searcher, error) {
	s := &Searcher{Root: root, Class: class, Machine: machine, Accept: MatchELF(class, machine)}
	c, ok, err := readCache(root, DefaultCache)
	if err != nil {
		return nil, err
	}
	if ok {
		s.Cache = c
	} else {
		dirs, err := ParseConf(root, DefaultConf)
		if err != nil {
			return nil, err
		}
		s.Default = dirs
	}
	seen := map[string]bool{}
	for _, d := range s.Default {
		seen[d] = true
	}
	for _, d := range DefaultDirs(class, machine) {
		if !seen[d] {
			s.Default = append(s.Default, d)
		}
	}
	return s, nil
}

// MatchELF returns an Accept function for Searcher that takes a file only
// if its ELF header says it has the given class and machine (machine
// EM_NONE: any machine). Only the 20-byte header start is read.
func MatchELF(class elf.Class, machine elf.Machine) func(hostPath string) bool {
	return func(hostPath string) bool {
		f, err := os.Open(hostPath)
		if err != nil {
			return false
		}
		defer f.Close()
		var h [20]byte
		if _, err := io.ReadFull(f, h[:]); err != nil {
			return false
		}
		if string(h[:4]) != elf.ELFMAG || elf.Class(h[elf.EI_CLASS]) != class {
			return false
		}
		var m uint16
		switch elf.Data(h[elf.EI_DATA]) {
		case elf.ELFDATA2LSB:
			m = uint16(h[18]) | uint16(h[19])<<8
		case elf.ELFDATA2MSB:
			m = uint16(h[18])<<8 | uint16(h[19])
		default:
			return false
		}
		return machine == elf.EM_NONE || elf.Machine(m) == machine
	}
}
