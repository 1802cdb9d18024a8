package ldpath

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// DefaultCache is where the loader's cache lives inside a root.
const DefaultCache = "/etc/ld.so.cache"

// The two cache formats (glibc sysdeps/generic/dl-cache.h).
const (
	oldMagic        = "ld.so-1.7.0"          // libc5 and glibc up to 2.31 (then followed by the new one)
	newMagic        = "glibc-ld.so.cache1.1" // magic and version, glibc 2.2 and later
	oldHeaderSize   = 16                     // magic[11], pad, uint32 nlibs
	oldEntrySize    = 12                     // int32 flags, uint32 key, value
	newHeaderSize   = 48                     // see parseNew
	newEntrySize    = 24                     // int32 flags, uint32 key, value, osversion, uint64 hwcap
	newAlign        = 8                      // alignment of the new header after old entries
	extensionMagic  = 0xEAA42174
	extHeaderSize   = 8  // uint32 magic, count
	extSectionSize  = 16 // uint32 tag, flags, offset, size
	extTagGenerator = 0  // bytes: the ldconfig that wrote the file
	extTagHWCaps    = 1  // uint32 string offsets: glibc-hwcaps subdirectory names
	// hwcapExtension marks an entry whose low 32 hwcap bits index the
	// glibc-hwcaps subdirectories; bits 32..41 hold an ISA level.
	hwcapExtension = uint64(1) << 62
	hwcapISAMask   = uint64(1)<<10 - 1
)

// Flag values of cache entries (glibc sysdeps/generic/ldconfig.h). The low
// byte is the library type, the next byte what the library requires.
const (
	FlagTypeMask     = 0x00ff
	FlagELF          = 0x0001
	FlagELFLibc5     = 0x0002
	FlagELFLibc6     = 0x0003
	FlagRequiredMask = 0xff00
	FlagSPARCLib64   = 0x0100
	FlagIA64Lib64    = 0x0200
	FlagX8664Lib64   = 0x0300
	FlagS390Lib64    = 0x0400
	FlagPowerPCLib64 = 0x0500
	FlagMIPS64LibN32 = 0x0600
	FlagMIPS64LibN64 = 0x0700
	FlagX8664LibX32  = 0x0800
	FlagARMLibHF     = 0x0900
	FlagAArch64Lib64 = 0x0a00
	FlagARMLibSF     = 0x0b00
	FlagMIPSLib32NaN = 0x0c00
	FlagMIPS64N32NaN = 0x0d00
	FlagMIPS64N64NaN = 0x0e00
	FlagRISCVSoft    = 0x0f00
	FlagRISCVDouble  = 0x1000
	FlagLArchSoft    = 0x1100
	FlagLArchDouble  = 0x1200
)

// CacheEntry is one entry of an ld.so.cache.
type CacheEntry struct {
	Soname string // the key, e.g. "libcuda.so.1"
	Path   string // the value, an absolute path inside the root
	Flags  int32  // raw flags: library type and requirement
	// Class and Machine are derived from Flags by FlagsClassMachine.
	Class     elf.Class
	Machine   elf.Machine
	OSVersion uint32 // minimum kernel version (new format; 0 = any)
	HWCap     uint64 // raw hwcap bits (new format; 0 = any CPU)
	// HWCapSubdir names the glibc-hwcaps subdirectory (e.g. "x86-64-v3")
	// of an entry that uses the glibc 2.33 hwcap extension, "" otherwise.
	HWCapSubdir string
}

// Cache is a parsed ld.so.cache.
type Cache struct {
	Entries   []CacheEntry // in file order: sorted by glibc, best first for each soname
	Generator string       // the writer's version string, when the file records it
}

// FormatError reports a malformed cache: what is wrong and at which offset.
type FormatError struct {
	Off int64
	Msg string
}

// Error implements error.
func (e *FormatError) Error() string {
	return fmt.Sprintf("malformed ld.so.cache: %s at offset %#x", e.Msg, e.Off)
}

func formatErr(off uint64, format string, args ...any) error {
	return &FormatError{Off: int64(off), Msg: fmt.Sprintf(format, args...)}
}

// FlagsClassMachine maps cache entry flags to the ELF class and machine of
// the libraries they describe. The mapping follows ldconfig's readelflib.c:
//
//   - only the ELF library types (FlagELF, FlagELFLibc6) are mapped; libc4
//     and libc5 entries give (0, EM_NONE);
//   - a requirement byte of 0 means a 32-bit library of no particular
//     machine (i386 on x86, soft-float ARM, 32-bit PowerPC, s390, SPARC,
//     MIPS o32): (ELFCLASS32, EM_NONE);
//   - x32 and MIPS n32 are 32-bit; RISC-V and LoongArch entries are taken
//     as 64-bit (their 32-bit variants use the same flags and are not
//     distributed by any major distribution);
//   - an unknown requirement gives (0, EM_NONE).
func FlagsClassMachine(flags int32) (elf.Class, elf.Machine) {
	switch flags & FlagTypeMask {
	case FlagELF, FlagELFLibc6:
	default:
		return 0, elf.EM_NONE
	}
	switch flags & FlagRequiredMask {
	case 0:
		return elf.ELFCLASS32, elf.EM_NONE
	case FlagSPARCLib64:
		return elf.ELFCLASS64, elf.EM_SPARCV9
	case FlagIA64Lib64:
		return elf.ELFCLASS64, elf.EM_IA_64
	case FlagX8664Lib64:
		return elf.ELFCLASS64, elf.EM_X86_64
	case FlagS390Lib64:
		return elf.ELFCLASS64, elf.EM_S390
	case FlagPowerPCLib64:
		return elf.ELFCLASS64, elf.EM_PPC64
	case FlagMIPS64LibN32, FlagMIPS64N32NaN, FlagMIPSLib32NaN:
		return elf.ELFCLASS32, elf.EM_MIPS
	case FlagMIPS64LibN64, FlagMIPS64N64NaN:
		return elf.ELFCLASS64, elf.EM_MIPS
	case FlagX8664LibX32:
		return elf.ELFCLASS32, elf.EM_X86_64
	case FlagARMLibHF, FlagARMLibSF:
		return elf.ELFCLASS32, elf.EM_ARM
	case FlagAArch64Lib64:
		return elf.ELFCLASS64, elf.EM_AARCH64
	case FlagRISCVSoft, FlagRISCVDouble:
		return elf.ELFCLASS64, elf.EM_RISCV
	case FlagLArchSoft, FlagLArchDouble:
		return elf.ELFCLASS64, elf.EM_LOONGARCH
	}
	return 0, elf.EM_NONE
}

// Matches reports whether the entry serves a program of the given class and
// machine: the class must be equal, and the machine equal too, except that
// a 32-bit entry of no particular machine (EM_NONE) serves every 32-bit
// machine but x32 (EM_X86_64), which has its own flag. ARM hard- and
// soft-float entries are not told apart.
func (e *CacheEntry) Matches(class elf.Class, machine elf.Machine) bool {
	if e.Class == 0 || e.Class != class {
		return false
	}
	if e.Machine == machine {
		return true
	}
	return e.Machine == elf.EM_NONE && class == elf.ELFCLASS32 && machine != elf.EM_X86_64
}

// Lookup returns the paths the cache gives for soname that match class and
// machine (see CacheEntry.Matches), in cache order, which glibc sorts best
// first. Entries that need particular CPU capabilities (glibc-hwcaps
// subdirectories and legacy hwcap bits, HWCap != 0) are left out: whether
// the loader would take them depends on the CPU it runs on, and the entry
// every CPU can load is always present too. Use Entries for all of them.
func (c *Cache) Lookup(soname string, class elf.Class, machine elf.Machine) []string {
	if c == nil {
		return nil
	}
	var paths []string
	for i := range c.Entries {
		e := &c.Entries[i]
		if e.Soname == soname && e.HWCap == 0 && e.Matches(class, machine) {
			paths = append(paths, e.Path)
		}
	}
	return paths
}

// ReadCache reads and parses the ld.so.cache at cachePath (inside root;
// normally DefaultCache), following symbolic links inside root. A missing
// file gives an empty cache and no error.
func ReadCache(root, cachePath string) (*Cache, error) {
	c, _, err := readCache(root, cachePath)
	return c, err
}

// readCache is ReadCache that also says whether the file exists.
func readCache(root, cachePath string) (*Cache, bool, error) {
	resolved, err := Resolve(root, cachePath)
	if errors.Is(err, fs.ErrNotExist) {
		return &Cache{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("ld.so.cache: %w", err)
	}
	host := HostPath(root, resolved)
	data, err := os.ReadFile(host)
	if errors.Is(err, fs.ErrNotExist) {
		return &Cache{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("ld.so.cache: %w", err)
	}
	c, err := ParseCache(data)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", host, err)
	}
	return c, true, nil
}

// ParseCache parses the contents of an ld.so.cache: the old format
// ("ld.so-1.7.0"), the old format followed by the new one (as glibc 2.2 to
// 2.31 wrote by default; the new part is then used, as the loader does), or
// the new format ("glibc-ld.so.cache1.1") alone, with its extension
// directory (glibc 2.33 and later: glibc-hwcaps subdirectories, generator).
// The byte order is the one the new header records; where it records none
// (old format, or glibc before 2.33), the one under which the entry count
// fits the data, little-endian first. Every count, offset and string is
// checked against len(data) before use; bad input gives a *FormatError.
func ParseCache(data []byte) (*Cache, error) {
	switch {
	case bytes.HasPrefix(data, []byte(newMagic)):
		return parseNew(data, 0)
	case bytes.HasPrefix(data, []byte(oldMagic)):
		return parseOld(data)
	}
	return nil, formatErr(0, "unknown magic")
}

// fits reports whether n records of size bytes fit in data after off.
func fits(data []byte, off, n, size uint64) bool {
	return off <= uint64(len(data)) && n <= (uint64(len(data))-off)/size
}

func parseOld(data []byte) (*Cache, error) {
	if len(data) < oldHeaderSize {
		return nil, formatErr(0, "truncated header")
	}
	var bo binary.ByteOrder = binary.LittleEndian
	n := uint64(bo.Uint32(data[12:]))
	if !fits(data, oldHeaderSize, n, oldEntrySize) {
		bo = binary.BigEndian
		n = uint64(bo.Uint32(data[12:]))
		if !fits(data, oldHeaderSize, n, oldEntrySize) {
			return nil, formatErr(12, "entry count %d exceeds the file", binary.LittleEndian.Uint32(data[12:]))
		}
	}
	strtab := oldHeaderSize + n*oldEntrySize
	// A new-format cache may follow, aligned, at what is the old string table.
	newOff := (strtab + newAlign - 1) &^ (newAlign - 1)
	if newOff+newHeaderSize <= uint64(len(data)) && bytes.HasPrefix(data[newOff:], []byte(newMagic)) {
		return parseNew(data, newOff)
	}
	c := &Cache{Entries: make([]CacheEntry, 0, n)}
	str := string(data)
	for i := uint64(0); i < n; i++ {
		off := oldHeaderSize + i*oldEntrySize
		flags := int32(bo.Uint32(data[off:]))
		key, err := cString(str, strtab, uint64(bo.Uint32(data[off+4:])), off+4)
		if err != nil {
			return nil, err
		}
		val, err := cString(str, strtab, uint64(bo.Uint32(data[off+8:])), off+8)
		if err != nil {
			return nil, err
		}
		class, machine := FlagsClassMachine(flags)
		c.Entries = append(c.Entries, CacheEntry{Soname: key, Path: val, Flags: flags, Class: class, Machine: machine})
	}
	return c, nil
}

// maxString bounds the strings of a cache: a soname or path longer than
// PATH_MAX is malformed. It also bounds the work per entry.
const maxString = 4096

// cString returns the NUL-terminated string at base+off in str (the whole
// file as one string, so that entries share its memory instead of copying:
// a file of n bytes never costs more than n bytes of strings, however many
// entries point at one long string); at is where the offset was read, for
// errors.
func cString(str string, base, off, at uint64) (string, error) {
	start := base + off
	if start < base || start >= uint64(len(str)) {
		return "", formatErr(at, "string offset %#x beyond the file", off)
	}
	rest := str[start:]
	if len(rest) > maxString+1 {
		rest = rest[:maxString+1]
	}
	end := strings.IndexByte(rest, 0)
	if end < 0 {
		return "", formatErr(at, "unterminated or overlong string at %#x", start)
	}
	return rest[:end], nil
}

// parseNew parses a new-format cache whose header is at base. Entry string
// offsets are relative to base; the extension directory and section offsets
// are file offsets; glibc-hwcaps name offsets are relative to base, like the
// other strings (ldconfig writes them so; base is 0 in a new-only file).
//
// Header: magic+version[20], uint32 nlibs, uint32 len_strings, uint8 flags
// (byte order: 0 unknown, 1 invalid, 2 little, 3 big), pad[3], uint32
// extension_offset, unused[3].
func parseNew(data []byte, base uint64) (*Cache, error) {
	if uint64(len(data)) < base+newHeaderSize {
		return nil, formatErr(base, "truncated header")
	}
	h := data[base : base+newHeaderSize]
	var bo binary.ByteOrder
	switch h[28] & 3 {
	case 0:
		bo = binary.LittleEndian
		if !fits(data, base+newHeaderSize, uint64(bo.Uint32(h[20:])), newEntrySize) {
			bo = binary.BigEndian
		}
	case 1:
		return nil, formatErr(base+28, "cache marked invalid by its writer")
	case 2:
		bo = binary.LittleEndian
	case 3:
		bo = binary.BigEndian
	}
	n := uint64(bo.Uint32(h[20:]))
	if !fits(data, base+newHeaderSize, n, newEntrySize) {
		return nil, formatErr(base+20, "entry count %d exceeds the file", n)
	}
	c := &Cache{}
	str := string(data)
	subdirs, err := parseExtensions(data, str, base, uint64(bo.Uint32(h[32:])), bo, c)
	if err != nil {
		return nil, err
	}
	c.Entries = make([]CacheEntry, 0, n)
	for i := uint64(0); i < n; i++ {
		off := base + newHeaderSize + i*newEntrySize
		e := data[off : off+newEntrySize]
		key, err := cString(str, base, uint64(bo.Uint32(e[4:])), off+4)
		if err != nil {
			return nil, err
		}
		val, err := cString(str, base, uint64(bo.Uint32(e[8:])), off+8)
		if err != nil {
			return nil, err
		}
		ce := CacheEntry{
			Soname:    key,
			Path:      val,
			Flags:     int32(bo.Uint32(e[0:])),
			OSVersion: bo.Uint32(e[12:]),
			HWCap:     bo.Uint64(e[16:]),
		}
		ce.Class, ce.Machine = FlagsClassMachine(ce.Flags)
		if (ce.HWCap>>32)&^hwcapISAMask == hwcapExtension>>32 {
			// An index past the section leaves the name empty; the loader
			// skips such an entry, and so does Lookup (HWCap != 0).
			if idx := uint64(uint32(ce.HWCap)); idx < uint64(len(subdirs)) {
				ce.HWCapSubdir = subdirs[idx]
			}
		}
		c.Entries = append(c.Entries, ce)
	}
	return c, nil
}

// parseExtensions reads the extension directory at file offset off (0: none)
// and returns the glibc-hwcaps subdirectory names; it sets c.Generator.
// Unknown section tags are skipped, as the loader does.
func parseExtensions(data []byte, str string, base, off uint64, bo binary.ByteOrder, c *Cache) ([]string, error) {
	if off == 0 {
		return nil, nil
	}
	if off%4 != 0 || !fits(data, off, 1, extHeaderSize) {
		return nil, formatErr(base+32, "bad extension offset %#x", off)
	}
	if m := bo.Uint32(data[off:]); m != extensionMagic {
		return nil, formatErr(off, "bad extension magic %#x", m)
	}
	count := uint64(bo.Uint32(data[off+4:]))
	if !fits(data, off+extHeaderSize, count, extSectionSize) {
		return nil, formatErr(off+4, "extension count %d exceeds the file", count)
	}
	var subdirs []string
	for i := uint64(0); i < count; i++ {
		s := off + extHeaderSize + i*extSectionSize
		tag := bo.Uint32(data[s:])
		secOff := uint64(bo.Uint32(data[s+8:]))
		size := uint64(bo.Uint32(data[s+12:]))
		if !fits(data, secOff, size, 1) {
			return nil, formatErr(s+8, "extension section %d beyond the file", i)
		}
		switch tag {
		case extTagGenerator:
			c.Generator = str[secOff : secOff+size]
		case extTagHWCaps:
			if size == 0 || size%4 != 0 || secOff%4 != 0 {
				continue // the loader ignores a malformed hwcaps section
			}
			subdirs = make([]string, 0, size/4)
			for j := uint64(0); j < size/4; j++ {
				name, err := cString(str, base, uint64(bo.Uint32(data[secOff+4*j:])), secOff+4*j)
				if err != nil {
					return nil, err
				}
				subdirs = append(subdirs, name)
			}
		}
	}
	return subdirs, nil
}
