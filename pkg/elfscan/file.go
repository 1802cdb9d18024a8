package elfscan

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
)

// Limits on what a file may make us allocate or walk, whatever it claims.
const (
	maxRead     = 4 << 20  // largest single read (program or section header table, .dynamic)
	maxString   = 1 << 20  // longest string taken from a string table
	maxVersions = 1 << 12  // most version table entries walked, all kinds together
	maxStrings  = 16 << 20 // most bytes read looking for strings, per file
	chunk       = 256      // read size when looking for a string's NUL
)

// header is the decoded ELF header.
type header struct {
	Ident
	bo        binary.ByteOrder
	ehsize    int
	phoff     uint64
	phentsize int
	phnum     int
	shoff     uint64
	shentsize int
	shnum     int
	shstrndx  int
}

// prog is a program header in class-independent form.
type prog struct {
	Type   elf.ProgType
	Flags  elf.ProgFlag
	Off    uint64
	Vaddr  uint64
	Paddr  uint64
	Filesz uint64
	Memsz  uint64
	Align  uint64
}

// dyn is a .dynamic entry.
type dyn struct {
	Tag elf.DynTag
	Val uint64
}

// section is a section header in class-independent form.
type section struct {
	Name      uint32
	Type      elf.SectionType
	Flags     elf.SectionFlag
	Addr      uint64
	Off       uint64
	Size      uint64
	Link      uint32
	Info      uint32
	Addralign uint64
	Entsize   uint64
}

// file is what this package knows about an ELF file after reading its
// header, program headers and dynamic segment.
type file struct {
	r    io.ReaderAt
	size int64
	name string
	hdr  header

	progs []prog
	dynIx int // index in progs of PT_DYNAMIC, or -1

	// The dynamic table: entries before the first DT_NULL, and the number
	// of entries PT_DYNAMIC's file size holds.
	dyns     []dyn
	dynSlots int

	// The dynamic string table (DT_STRTAB, DT_STRSZ) as a file range.
	strOff  int64
	strSize uint64

	// strBudget is what is left of maxStrings.
	strBudget int64

	// pathTag is the search path entry a patch writes: DT_RUNPATH (also
	// when zero) or DT_RPATH.
	pathTag elf.DynTag
}

func (f *file) formatError(off int64, format string, args ...any) error {
	return &FormatError{f.name, off, fmt.Sprintf(format, args...)}
}

// read reads n bytes at off after checking them against the file size and
// the allocation limit.
func (f *file) read(off int64, n uint64, what string) ([]byte, error) {
	if off < 0 || uint64(off) > uint64(f.size) || n > uint64(f.size)-uint64(off) {
		return nil, f.formatError(off, "%s (%d bytes) extends past the end of the file", what, n)
	}
	if n > maxRead {
		return nil, f.formatError(off, "%s too large (%d bytes)", what, n)
	}
	b := make([]byte, n)
	if m, err := f.r.ReadAt(b, off); m < len(b) {
		return nil, ioError(f.name, what, off, err)
	}
	return b, nil
}

// open reads the ELF header, the program headers and the dynamic table.
func open(r io.ReaderAt, size int64, name string) (*file, error) {
	f := &file{r: r, size: size, name: name, dynIx: -1, strBudget: maxStrings}
	if size < 0 {
		return nil, f.formatError(-1, "negative file size %d", size)
	}
	if err := f.readHeader(); err != nil {
		return nil, err
	}
	if err := f.readProgs(); err != nil {
		return nil, err
	}
	if err := f.readDynamic(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *file) readHeader() error {
	id, err := readIdent(io.NewSectionReader(f.r, 0, f.size), f.name)
	if err != nil {
		return err
	}
	n := uint64(64)
	if id.Class == elf.ELFCLASS32 {
		n = 52
	}
	b, err := f.read(0, n, "ELF header")
	if err != nil {
		return err
	}
	h := &f.hdr
	h.Ident = id
	h.bo = id.ByteOrder()
	bo := h.bo
	if id.Class == elf.ELFCLASS64 {
		h.phoff = bo.Uint64(b[32:])
		h.shoff = bo.Uint64(b[40:])
		h.ehsize = int(bo.Uint16(b[52:]))
		h.phentsize = int(bo.Uint16(b[54:]))
		h.phnum = int(bo.Uint16(b[56:]))
		h.shentsize = int(bo.Uint16(b[58:]))
		h.shnum = int(bo.Uint16(b[60:]))
		h.shstrndx = int(bo.Uint16(b[62:]))
	} else {
		h.phoff = uint64(bo.Uint32(b[28:]))
		h.shoff = uint64(bo.Uint32(b[32:]))
		h.ehsize = int(bo.Uint16(b[40:]))
		h.phentsize = int(bo.Uint16(b[42:]))
		h.phnum = int(bo.Uint16(b[44:]))
		h.shentsize = int(bo.Uint16(b[46:]))
		h.shnum = int(bo.Uint16(b[48:]))
		h.shstrndx = int(bo.Uint16(b[50:]))
	}
	if h.phnum == 0xffff {
		// PN_XNUM: the count is in section 0's sh_info. No loadable
		// object needs that many segments.
		return f.formatError(-1, "extended program header numbering (PN_XNUM) not supported")
	}
	if h.phnum > 0 && h.phentsize < f.phdrSize() {
		return f.formatError(-1, "program header entry size %d too small", h.phentsize)
	}
	if h.shnum > 0 && h.shentsize < f.shdrSize() {
		return f.formatError(-1, "section header entry size %d too small", h.shentsize)
	}
	return nil
}

func (f *file) is64() bool { return f.hdr.Class == elf.ELFCLASS64 }

func (f *file) phdrSize() int {
	if f.is64() {
		return 56
	}
	return 32
}

func (f *file) shdrSize() int {
	if f.is64() {
		return 64
	}
	return 40
}

func (f *file) dynSize() int {
	if f.is64() {
		return 16
	}
	return 8
}

// tableRange checks a table of num entries of entsize bytes at off and
// returns its offset and total size.
func (f *file) tableRange(off uint64, num, entsize int, what string) (int64, uint64, error) {
	total := uint64(num) * uint64(entsize) // both < 1<<16: no overflow
	if off > uint64(f.size) || total > uint64(f.size)-off {
		return 0, 0, f.formatError(-1, "%s (%d entries at %#x) extends past the end of the file", what, num, off)
	}
	return int64(off), total, nil
}

func (f *file) readProgs() error {
	h := &f.hdr
	if h.phnum == 0 {
		return nil
	}
	off, total, err := f.tableRange(h.phoff, h.phnum, h.phentsize, "program header table")
	if err != nil {
		return err
	}
	b, err := f.read(off, total, "program header table")
	if err != nil {
		return err
	}
	f.progs = make([]prog, h.phnum)
	for i := range f.progs {
		f.progs[i] = f.decodeProg(b[i*h.phentsize:])
		p := &f.progs[i]
		if p.Type == elf.PT_DYNAMIC && f.dynIx < 0 {
			f.dynIx = i
		}
		if p.Type == elf.PT_LOAD || p.Type == elf.PT_DYNAMIC || p.Type == elf.PT_INTERP {
			if p.Off > uint64(f.size) || p.Filesz > uint64(f.size)-p.Off {
				return f.formatError(int64(off)+int64(i*h.phentsize), "segment %d (%s) extends past the end of the file", i, p.Type)
			}
		}
	}
	return nil
}

func (f *file) decodeProg(b []byte) prog {
	bo := f.hdr.bo
	if f.is64() {
		return prog{
			Type:   elf.ProgType(bo.Uint32(b[0:])),
			Flags:  elf.ProgFlag(bo.Uint32(b[4:])),
			Off:    bo.Uint64(b[8:]),
			Vaddr:  bo.Uint64(b[16:]),
			Paddr:  bo.Uint64(b[24:]),
			Filesz: bo.Uint64(b[32:]),
			Memsz:  bo.Uint64(b[40:]),
			Align:  bo.Uint64(b[48:]),
		}
	}
	return prog{
		Type:   elf.ProgType(bo.Uint32(b[0:])),
		Off:    uint64(bo.Uint32(b[4:])),
		Vaddr:  uint64(bo.Uint32(b[8:])),
		Paddr:  uint64(bo.Uint32(b[12:])),
		Filesz: uint64(bo.Uint32(b[16:])),
		Memsz:  uint64(bo.Uint32(b[20:])),
		Flags:  elf.ProgFlag(bo.Uint32(b[24:])),
		Align:  uint64(bo.Uint32(b[28:])),
	}
}

func (f *file) encodeProg(b []byte, p prog) {
	bo := f.hdr.bo
	if f.is64() {
		bo.PutUint32(b[0:], uint32(p.Type))
		bo.PutUint32(b[4:], uint32(p.Flags))
		bo.PutUint64(b[8:], p.Off)
		bo.PutUint64(b[16:], p.Vaddr)
		bo.PutUint64(b[24:], p.Paddr)
		bo.PutUint64(b[32:], p.Filesz)
		bo.PutUint64(b[40:], p.Memsz)
		bo.PutUint64(b[48:], p.Align)
		return
	}
	bo.PutUint32(b[0:], uint32(p.Type))
	bo.PutUint32(b[4:], uint32(p.Off))
	bo.PutUint32(b[8:], uint32(p.Vaddr))
	bo.PutUint32(b[12:], uint32(p.Paddr))
	bo.PutUint32(b[16:], uint32(p.Filesz))
	bo.PutUint32(b[20:], uint32(p.Memsz))
	bo.PutUint32(b[24:], uint32(p.Flags))
	bo.PutUint32(b[28:], uint32(p.Align))
}

func (f *file) decodeDyn(b []byte) dyn {
	bo := f.hdr.bo
	if f.is64() {
		return dyn{elf.DynTag(int64(bo.Uint64(b))), bo.Uint64(b[8:])}
	}
	return dyn{elf.DynTag(int32(bo.Uint32(b))), uint64(bo.Uint32(b[4:]))}
}

func (f *file) encodeDyn(b []byte, d dyn) {
	bo := f.hdr.bo
	if f.is64() {
		bo.PutUint64(b, uint64(d.Tag))
		bo.PutUint64(b[8:], d.Val)
		return
	}
	bo.PutUint32(b, uint32(d.Tag))
	bo.PutUint32(b[4:], uint32(d.Val))
}

func (f *file) decodeSection(b []byte) section {
	bo := f.hdr.bo
	if f.is64() {
		return section{
			Name:      bo.Uint32(b[0:]),
			Type:      elf.SectionType(bo.Uint32(b[4:])),
			Flags:     elf.SectionFlag(bo.Uint64(b[8:])),
			Addr:      bo.Uint64(b[16:]),
			Off:       bo.Uint64(b[24:]),
			Size:      bo.Uint64(b[32:]),
			Link:      bo.Uint32(b[40:]),
			Info:      bo.Uint32(b[44:]),
			Addralign: bo.Uint64(b[48:]),
			Entsize:   bo.Uint64(b[56:]),
		}
	}
	return section{
		Name:      bo.Uint32(b[0:]),
		Type:      elf.SectionType(bo.Uint32(b[4:])),
		Flags:     elf.SectionFlag(bo.Uint32(b[8:])),
		Addr:      uint64(bo.Uint32(b[12:])),
		Off:       uint64(bo.Uint32(b[16:])),
		Size:      uint64(bo.Uint32(b[20:])),
		Link:      bo.Uint32(b[24:]),
		Info:      bo.Uint32(b[28:]),
		Addralign: uint64(bo.Uint32(b[32:])),
		Entsize:   uint64(bo.Uint32(b[36:])),
	}
}

func (f *file) encodeSection(b []byte, s section) {
	bo := f.hdr.bo
	if f.is64() {
		bo.PutUint32(b[0:], s.Name)
		bo.PutUint32(b[4:], uint32(s.Type))
		bo.PutUint64(b[8:], uint64(s.Flags))
		bo.PutUint64(b[16:], s.Addr)
		bo.PutUint64(b[24:], s.Off)
		bo.PutUint64(b[32:], s.Size)
		bo.PutUint32(b[40:], s.Link)
		bo.PutUint32(b[44:], s.Info)
		bo.PutUint64(b[48:], s.Addralign)
		bo.PutUint64(b[56:], s.Entsize)
		return
	}
	bo.PutUint32(b[0:], s.Name)
	bo.PutUint32(b[4:], uint32(s.Type))
	bo.PutUint32(b[8:], uint32(s.Flags))
	bo.PutUint32(b[12:], uint32(s.Addr))
	bo.PutUint32(b[16:], uint32(s.Off))
	bo.PutUint32(b[20:], uint32(s.Size))
	bo.PutUint32(b[24:], s.Link)
	bo.PutUint32(b[28:], s.Info)
	bo.PutUint32(b[32:], uint32(s.Addralign))
	bo.PutUint32(b[36:], uint32(s.Entsize))
}

// readDynamic reads the entries of PT_DYNAMIC and locates DT_STRTAB.
func (f *file) readDynamic() error {
	if f.dynIx < 0 {
		return nil
	}
	p := f.progs[f.dynIx]
	es := uint64(f.dynSize())
	slots := p.Filesz / es
	if slots*es > maxRead {
		return f.formatError(int64(p.Off), "dynamic segment too large (%d bytes)", p.Filesz)
	}
	b, err := f.read(int64(p.Off), slots*es, "dynamic segment")
	if err != nil {
		return err
	}
	f.dynSlots = int(slots)
	n := 0
	for n < f.dynSlots && f.decodeDyn(b[n*int(es):]).Tag != elf.DT_NULL {
		n++
	}
	f.dyns = make([]dyn, n)
	for i := range f.dyns {
		f.dyns[i] = f.decodeDyn(b[i*int(es):])
	}
	strtab, hasStrtab := f.dynVal(elf.DT_STRTAB)
	strsz, hasStrsz := f.dynVal(elf.DT_STRSZ)
	if !hasStrtab || !hasStrsz {
		if f.needsStrings() {
			return f.formatError(int64(p.Off), "dynamic segment has strings but no DT_STRTAB or DT_STRSZ")
		}
		return nil
	}
	off, ok := f.vaddrToOff(strtab, strsz)
	if !ok {
		return f.formatError(int64(p.Off), "dynamic string table (%#x, %d bytes) is not in the file", strtab, strsz)
	}
	f.strOff, f.strSize = off, strsz
	return nil
}

// needsStrings reports whether a dynamic entry refers to the string table.
func (f *file) needsStrings() bool {
	for _, d := range f.dyns {
		if isStringTag(d.Tag) {
			return true
		}
	}
	return false
}

// isStringTag reports whether tag's value is an offset in the dynamic
// string table.
func isStringTag(tag elf.DynTag) bool {
	switch tag {
	case elf.DT_NEEDED, elf.DT_SONAME, elf.DT_RPATH, elf.DT_RUNPATH,
		elf.DT_AUXILIARY, elf.DT_FILTER, elf.DT_CONFIG, elf.DT_DEPAUDIT, elf.DT_AUDIT:
		return true
	}
	return false
}

// dynVal returns the value of the last entry with tag, as glibc does.
func (f *file) dynVal(tag elf.DynTag) (uint64, bool) {
	v, ok := uint64(0), false
	for _, d := range f.dyns {
		if d.Tag == tag {
			v, ok = d.Val, true
		}
	}
	return v, ok
}

// vaddrToOff maps the n bytes at virtual address addr to a file offset,
// within one PT_LOAD's file image.
func (f *file) vaddrToOff(addr, n uint64) (int64, bool) {
	for _, p := range f.progs {
		if p.Type != elf.PT_LOAD || addr < p.Vaddr {
			continue
		}
		d := addr - p.Vaddr
		if d >= p.Filesz && !(d == p.Filesz && n == 0) || n > p.Filesz-d {
			continue
		}
		off := p.Off + d
		if off > uint64(f.size) || n > uint64(f.size)-off {
			continue
		}
		return int64(off), true
	}
	return 0, false
}

// str returns the string at index i of the dynamic string table.
func (f *file) str(i uint64) (string, error) {
	if f.strSize == 0 || i >= f.strSize {
		return "", f.formatError(f.strOff, "string index %d out of range (table size %d)", i, f.strSize)
	}
	return f.cstring(f.strOff+int64(i), f.strSize-i, "dynamic string")
}

// cstring reads a NUL-terminated string at off of at most limit bytes
// (including the NUL), in small chunks.
func (f *file) cstring(off int64, limit uint64, what string) (string, error) {
	if limit > maxString {
		limit = maxString
	}
	var out []byte
	buf := make([]byte, chunk)
	for pos := uint64(0); pos < limit; {
		n := min(uint64(chunk), limit-pos)
		o := off + int64(pos)
		if o < 0 || uint64(o) >= uint64(f.size) {
			break
		}
		n = min(n, uint64(f.size)-uint64(o))
		if f.strBudget -= int64(n); f.strBudget < 0 {
			return "", f.formatError(off, "too many string bytes to read")
		}
		m, err := f.r.ReadAt(buf[:n], o)
		if m < int(n) {
			return "", ioError(f.name, what, o, err)
		}
		for j, c := range buf[:n] {
			if c == 0 {
				return string(append(out, buf[:j]...)), nil
			}
		}
		out = append(out, buf[:n]...)
		pos += n
	}
	return "", f.formatError(off, "unterminated %s", what)
}
