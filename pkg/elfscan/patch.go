package elfscan

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// PatchRunpath writes to dst a copy of the ELF file src whose DT_RUNPATH is
// runpath. A DT_RPATH is turned into (or replaced by) the DT_RUNPATH, so the
// result has exactly one search path entry, and its loader looks in runpath
// after LD_LIBRARY_PATH.
//
// When the new string fits where the old DT_RUNPATH or DT_RPATH string is,
// it is written there. Otherwise the dynamic string table (the old one with
// runpath appended, every old string at its old offset) and the dynamic
// table are placed in a new writable PT_LOAD segment at the end of the file;
// PT_DYNAMIC, DT_STRTAB, DT_STRSZ and the .dynamic and .dynstr section
// headers point there. The program header entry for that segment takes the
// place of a PT_NULL entry, or room made after the table; else the program
// header table moves into the new segment too, so that every PT_NOTE entry
// (the GNU build-id above all) stays reachable. GNU strip cannot rewrite a
// file whose table moved. In an executable the moved table is placed where
// a kernel before 5.18, or qemu-user, computes AT_PHDR from e_phoff; where
// no such place exists, the last PT_NOTE entry is taken as a last resort. A
// file patched this way and patched again reuses that segment, so it does
// not grow each time.
//
// The bulk of the file is copied with copy_file_range where the system has
// it; only the changed bytes are written, so memory use does not depend on
// the file's size. dst is written as a temporary file in its directory,
// given src's permission bits and renamed into place, so it is never seen
// half-written; dst may name src, whose old contents are then replaced by
// the rename, never written. The result is parsed again before the rename.
func PatchRunpath(src, dst, runpath string) error {
	return patchPath(src, dst, runpath, elf.DT_RUNPATH)
}

// PatchRpath is PatchRunpath writing a DT_RPATH instead of a DT_RUNPATH
// (a DT_RUNPATH is turned into it). The loader searches a DT_RPATH before
// LD_LIBRARY_PATH, and, unlike a DT_RUNPATH, also for the libraries that
// the file's DT_NEEDED libraries load in turn when they have no DT_RUNPATH
// of their own (glibc walks the chain of objects that loaded each other
// through DT_NEEDED; a dlopen starts a new chain). A self-contained cache
// entry relies on that to leave the driver's internal libraries symlinks
// (see docs/DESIGN.md, "Self-contained entries").
func PatchRpath(src, dst, rpath string) error {
	return patchPath(src, dst, rpath, elf.DT_RPATH)
}

// patchPath is PatchRunpath and PatchRpath: tag is the search path entry
// the result carries.
func patchPath(src, dst, runpath string, tag elf.DynTag) (err error) {
	if strings.IndexByte(runpath, 0) >= 0 {
		return fmt.Errorf("%s: runpath contains a NUL byte", src)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	f, err := open(in, st.Size(), src)
	if err != nil {
		return err
	}
	f.pathTag = tag
	p, err := f.planRunpath(runpath)
	if err != nil {
		return err
	}

	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := p.apply(tmp, in); err != nil {
		return fmt.Errorf("%s: writing %s: %w", src, dst, err)
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		return err
	}
	if err := check(tmp, dst, runpath, tag); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// check reads the patched file again and checks it carries runpath as its
// one search path entry, of type tag.
func check(tmp *os.File, name, runpath string, tag elf.DynTag) error {
	st, err := tmp.Stat()
	if err != nil {
		return err
	}
	in, err := ReadFrom(tmp, st.Size(), name)
	if err != nil {
		return fmt.Errorf("patched file does not parse: %w", err)
	}
	if tag == elf.DT_RPATH {
		if !in.HasRpath || in.Rpath != runpath || in.HasRunpath {
			return fmt.Errorf("%s: patched file has rpath %q (runpath %q), want %q", name, in.Rpath, in.Runpath, runpath)
		}
		return nil
	}
	if !in.HasRunpath || in.Runpath != runpath || in.HasRpath {
		return fmt.Errorf("%s: patched file has runpath %q (rpath %q), want %q", name, in.Runpath, in.Rpath, runpath)
	}
	return nil
}

// A plan is a rewrite of a file, worked out before anything is written: the
// result is the first keep bytes of the source, then zeros up to size, with
// copies of source ranges and writes of new bytes on top.
type plan struct {
	keep   int64
	size   int64
	copies []copyOp
	writes []writeOp
}

// copyOp copies n bytes of the source at src to dst in the result.
type copyOp struct {
	dst, src, n int64
}

// writeOp writes data at off in the result.
type writeOp struct {
	off  int64
	data []byte
}

func (p *plan) write(off int64, data []byte) {
	p.writes = append(p.writes, writeOp{off, data})
}

// apply writes the planned result to dst, an empty file, from src.
func (p *plan) apply(dst, src *os.File) error {
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if n, err := io.Copy(dst, io.LimitReader(src, p.keep)); err != nil {
		return err
	} else if n != p.keep {
		return io.ErrUnexpectedEOF
	}
	for _, c := range p.copies {
		if _, err := src.Seek(c.src, io.SeekStart); err != nil {
			return err
		}
		if _, err := dst.Seek(c.dst, io.SeekStart); err != nil {
			return err
		}
		if n, err := io.Copy(dst, io.LimitReader(src, c.n)); err != nil {
			return err
		} else if n != c.n {
			return io.ErrUnexpectedEOF
		}
	}
	if err := p.applyWrites(dst); err != nil {
		return err
	}
	return dst.Truncate(p.size)
}

// applyWrites writes the plan's new bytes through w.
func (p *plan) applyWrites(w io.WriterAt) error {
	for _, wr := range p.writes {
		if _, err := w.WriteAt(wr.data, wr.off); err != nil {
			return err
		}
	}
	return nil
}

// errNoDynamic is returned for files that have nothing to patch.
var errNoDynamic = errors.New("no dynamic segment")

// planRunpath works out how to give f the DT_RUNPATH runpath.
func (f *file) planRunpath(runpath string) (*plan, error) {
	if f.dynIx < 0 {
		return nil, &FormatError{f.name, -1, errNoDynamic.Error()}
	}
	if f.strSize == 0 {
		return nil, f.formatError(int64(f.progs[f.dynIx].Off), "no dynamic string table")
	}
	secs, err := f.readSections()
	if err != nil {
		return nil, err
	}
	refs, err := f.stringRefs(secs)
	if err != nil {
		return nil, err
	}
	if p, err := f.planInPlace(runpath, refs); p != nil || err != nil {
		return p, err
	}
	return f.planSegment(runpath, secs, refs)
}

// sectionTable is the section header table.
type sectionTable struct {
	off  int64
	secs []section
	dyn  int // index of the .dynamic section, or -1
	str  int // index of the .dynstr section (the one DT_STRTAB names), or -1
}

func (f *file) readSections() (*sectionTable, error) {
	st := &sectionTable{dyn: -1, str: -1}
	secs, off, err := f.sectionHeaders()
	if err != nil || secs == nil {
		return st, err
	}
	st.off = off
	st.secs = secs
	strtab, _ := f.dynVal(elf.DT_STRTAB)
	dynp := f.progs[f.dynIx]
	for i, s := range st.secs {
		switch {
		case s.Type == elf.SHT_DYNAMIC && st.dyn < 0 && s.Off == dynp.Off:
			st.dyn = i
		case s.Type == elf.SHT_STRTAB && st.str < 0 && s.Flags&elf.SHF_ALLOC != 0 && s.Addr == strtab:
			st.str = i
		}
	}
	return st, nil
}

// stringRefs returns the dynamic string table offsets that anything other
// than DT_RUNPATH and DT_RPATH refers to: dynamic entries, version tables
// and the dynamic symbols' names.
func (f *file) stringRefs(st *sectionTable) ([]uint64, error) {
	var refs []uint64
	for _, d := range f.dyns {
		if isStringTag(d.Tag) && d.Tag != elf.DT_RUNPATH && d.Tag != elf.DT_RPATH {
			refs = append(refs, d.Val)
		}
	}
	add := func(i uint64) { refs = append(refs, i) }
	if _, err := f.versionNeeds(add); err != nil {
		return nil, err
	}
	if _, err := f.versionDefs(add); err != nil {
		return nil, err
	}
	// Symbol names: st_name is the first word of Elf32_Sym and Elf64_Sym.
	for i, s := range st.secs {
		if s.Type != elf.SHT_DYNSYM || int(s.Link) != st.str || st.str < 0 {
			continue
		}
		es := uint64(24)
		if !f.is64() {
			es = 16
		}
		if s.Off > uint64(f.size) || s.Size > uint64(f.size)-s.Off {
			return nil, f.formatError(int64(s.Off), "section %d (dynamic symbols) extends past the end of the file", i)
		}
		n := s.Size / es
		buf := make([]byte, 256*es)
		for j := uint64(0); j < n; {
			k := min(n-j, 256)
			off := int64(s.Off + j*es)
			if m, err := f.r.ReadAt(buf[:k*es], off); m < int(k*es) {
				return nil, ioError(f.name, "dynamic symbols", off, err)
			}
			for e := uint64(0); e < k; e++ {
				refs = append(refs, uint64(f.hdr.bo.Uint32(buf[e*es:])))
			}
			j += k
		}
	}
	return refs, nil
}

// pathEntries returns the indices in f.dyns of DT_RUNPATH entries, then of
// DT_RPATH entries.
func (f *file) pathEntries() []int {
	var ix []int
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		for i, d := range f.dyns {
			if d.Tag == tag {
				ix = append(ix, i)
			}
		}
	}
	return ix
}

// freeString reports whether the string at s of length n (without its NUL)
// may be overwritten: nothing in refs points into it. An offset pointing at
// its NUL still finds an empty string afterwards.
func freeString(s, n uint64, refs []uint64) bool {
	for _, r := range refs {
		if r >= s && r < s+n {
			return false
		}
	}
	return true
}

// withRunpath returns f's dynamic entries with entry keep (an index in
// f.dyns, or -1 for the first DT_RUNPATH or else DT_RPATH) made a DT_RUNPATH
// (or f.pathTag, when set) of value val and the other DT_RUNPATH and
// DT_RPATH entries removed, or one appended when there was none.
func (f *file) withRunpath(keep int, val uint64) []dyn {
	tag := elf.DT_RUNPATH
	if f.pathTag != 0 {
		tag = f.pathTag
	}
	if paths := f.pathEntries(); keep < 0 && len(paths) > 0 {
		keep = paths[0]
	}
	out := make([]dyn, 0, len(f.dyns)+1)
	for i, d := range f.dyns {
		if d.Tag == elf.DT_RUNPATH || d.Tag == elf.DT_RPATH {
			if i == keep {
				out = append(out, dyn{tag, val})
			}
			continue
		}
		out = append(out, d)
	}
	if keep < 0 {
		out = append(out, dyn{tag, val})
	}
	return out
}

// encodeDyns encodes ds followed by DT_NULL entries up to slots entries.
func (f *file) encodeDyns(ds []dyn, slots int) []byte {
	es := f.dynSize()
	b := make([]byte, slots*es)
	for i, d := range ds {
		f.encodeDyn(b[i*es:], d)
	}
	return b
}

// planInPlace plans writing runpath over an existing DT_RUNPATH or DT_RPATH
// string, or returns nil when none can take it.
func (f *file) planInPlace(runpath string, refs []uint64) (*plan, error) {
	paths := f.pathEntries()
	if len(paths) == 0 {
		return nil, nil
	}
	for _, i := range paths {
		s := f.dyns[i].Val
		old, err := f.str(s)
		if err != nil {
			return nil, err
		}
		if len(runpath) > len(old) || !freeString(s, uint64(len(old)), refs) {
			continue
		}
		p := &plan{keep: f.size, size: f.size}
		b := make([]byte, len(old)+1)
		copy(b, runpath)
		p.write(f.strOff+int64(s), b)
		ds := f.withRunpath(i, s)
		p.write(int64(f.progs[f.dynIx].Off), f.encodeDyns(ds, f.dynSlots))
		return p, nil
	}
	return nil, nil
}

// spareDyns is the number of DT_NULL entries left free in a new dynamic
// table after its terminator, for later editing in place.
const spareDyns = 4

// A blob is a section moved into the new segment, out of the way of a
// growing program header table: a table the loader finds through its
// dynamic tag alone.
type blob struct {
	sec   int        // section index
	tag   elf.DynTag // DT_HASH or DT_GNU_HASH
	src   int64      // its offset in the source file
	size  uint64     // its size
	align uint64     // its alignment
}

// locatorTag returns the dynamic tag that alone locates a section of type
// t, or 0: such a section can move if the tag moves with it.
func locatorTag(t elf.SectionType) elf.DynTag {
	switch t {
	case elf.SHT_HASH:
		return elf.DT_HASH
	case elf.SHT_GNU_HASH:
		return elf.DT_GNU_HASH
	case elf.SHT_DYNSYM:
		return elf.DT_SYMTAB
	case elf.SHT_GNU_VERSYM:
		return elf.DT_VERSYM
	case elf.SHT_GNU_VERNEED:
		return elf.DT_VERNEED
	case elf.SHT_GNU_VERDEF:
		return elf.DT_VERDEF
	}
	return 0
}

// movable returns section i as a blob if it can be moved: a table that
// only its dynamic tag refers to (symbols, their hash tables and versions),
// or a note that only program headers of its exact extent refer to.
func (f *file) movable(st *sectionTable, i int) (blob, bool) {
	s := st.secs[i]
	if s.Flags&elf.SHF_ALLOC == 0 || s.Flags&elf.SHF_WRITE != 0 {
		return blob{}, false
	}
	tag := locatorTag(s.Type)
	switch {
	case tag != 0:
		if v, ok := f.dynVal(tag); !ok || v != s.Addr {
			return blob{}, false
		}
	case s.Type == elf.SHT_NOTE:
	default:
		return blob{}, false
	}
	for _, p := range f.progs {
		if p.Type == elf.PT_LOAD || !overlaps(p.Off, p.Filesz, s.Off, s.Off+s.Size) {
			continue
		}
		if tag != 0 || p.Type != elf.PT_NOTE && p.Type != ptGnuProperty || p.Off != s.Off || p.Filesz != s.Size {
			return blob{}, false
		}
	}
	if off, ok := f.vaddrToOff(s.Addr, s.Size); !ok || uint64(off) != s.Off {
		return blob{}, false
	}
	return blob{sec: i, tag: tag, src: int64(s.Off), size: s.Size, align: min(max(s.Addralign, 1), 16)}, true
}

// ptGnuProperty is PT_GNU_PROPERTY, which debug/elf does not name.
const ptGnuProperty elf.ProgType = 0x6474e553

// noteSection reports whether note segment p is exactly one section.
func (f *file) noteSection(st *sectionTable, p prog) bool {
	for _, s := range st.secs {
		if s.Type == elf.SHT_NOTE && s.Off == p.Off && s.Size == p.Filesz {
			return true
		}
	}
	return false
}

func overlaps(off, n, start, end uint64) bool {
	return n > 0 && off < end && start < off+n
}

// growPhdrs reports whether the program header table can take one more
// entry where it is, and which sections must move out of its way. Without
// section headers it cannot know, and says no.
func (f *file) growPhdrs(st *sectionTable) (bool, []blob) {
	h := &f.hdr
	if len(st.secs) == 0 || h.phnum == 0 {
		return false, nil
	}
	start := h.phoff + uint64(h.phnum)*uint64(h.phentsize)
	end := start + uint64(h.phentsize)
	if end > uint64(f.size) {
		return false, nil
	}
	for _, p := range f.progs {
		switch p.Type {
		case elf.PT_LOAD:
			// The table must stay within the segment that maps it.
			if h.phoff >= p.Off && h.phoff < p.Off+p.Filesz && end > p.Off+p.Filesz {
				return false, nil
			}
		case elf.PT_PHDR, elf.PT_NULL:
		case elf.PT_NOTE, ptGnuProperty:
			// A note moves with its section (see movable); one that
			// covers no whole section cannot.
			if overlaps(p.Off, p.Filesz, start, end) && !f.noteSection(st, p) {
				return false, nil
			}
		default:
			if overlaps(p.Off, p.Filesz, start, end) {
				return false, nil
			}
		}
	}
	var moved []blob
	for i, s := range st.secs {
		if i == 0 || i == st.str || s.Type == elf.SHT_NOBITS || !overlaps(s.Off, s.Size, start, end) {
			continue // the dynamic string table moves anyway
		}
		b, ok := f.movable(st, i)
		if !ok {
			return false, nil
		}
		moved = append(moved, b)
	}
	return true, moved
}

// isExec reports whether the file is a program (it has an ELF interpreter,
// or is ET_EXEC), not a library.
func (f *file) isExec() bool {
	for _, p := range f.progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return f.hdr.Type == elf.ET_EXEC
}

// firstLoadDelta is the first PT_LOAD's virtual address minus its file
// offset: what a kernel before 5.18 adds to e_phoff to find the program
// headers in memory (AT_PHDR).
func (f *file) firstLoadDelta() uint64 {
	for _, p := range f.progs {
		if p.Type == elf.PT_LOAD {
			return p.Vaddr - p.Off
		}
	}
	return 0
}

// execSegmentBase returns a file offset, at or after minBase, for a new
// segment holding an executable's program headers at its start, such that
// its virtual address (offset + firstLoadDelta) is above every existing
// segment (vend, rounded up to align) and congruent to it modulo align.
func (f *file) execSegmentBase(minBase, vend, align uint64) (uint64, bool) {
	delta := f.firstLoadDelta()
	if align == 0 || delta%align != 0 {
		return 0, false
	}
	lo := alignUp(vend, align)
	base := minBase
	if lo > delta && lo-delta > base {
		base = alignUp(lo-delta, 16)
	}
	// The gap between the old end of file and base stays a hole.
	if base-minBase > 1<<30 || base+delta < base {
		return 0, false
	}
	return base, true
}

// planSegment plans the general case: a PT_LOAD segment at the end of the
// file (a new one, or the one an earlier patch added) holding the dynamic
// table, the dynamic string table, any tables moved out of the program
// header table's way and, as a last resort, the program header table.
//
// The new PT_LOAD entry takes, in this order of preference: a PT_NULL
// entry; room after the program header table, free or made free by moving
// the symbol, hash and version tables there; a copy of the table, one entry
// longer, in the new segment (GNU strip cannot rewrite this kind); and only
// for an executable that has no place for that copy, a PT_NOTE entry.
//
// It is long because it is the patcher's one layout decision (where the new
// dynamic section and strings go, for every program-header shape), kept in
// one place so that every case is read against the others.
func (f *file) planSegment(runpath string, st *sectionTable, refs []uint64) (*plan, error) {
	h := &f.hdr
	progs := append([]prog(nil), f.progs...)
	var (
		base    int64  // file offset of the segment
		vbase   uint64 // its virtual address
		align   uint64 // its p_align
		loadIx  int    // index in progs of its PT_LOAD entry
		phInSeg bool   // the program header table is (to be) in the segment
		grown   bool   // the program header table grows in place
		moved   []blob // sections (to be) in the segment
		strLen  = f.strSize
		newIdx  = f.strSize // where runpath goes in the new string table
	)
	if ours, carried := f.ourSegment(st); ours >= 0 {
		o := f.progs[ours]
		base, vbase, align, loadIx, moved = int64(o.Off), o.Vaddr, o.Align, ours, carried
		phInSeg = h.phnum > 0 && h.phoff >= o.Off
		// Reclaim the old runpath when nothing follows it but NULs.
		if paths := f.pathEntries(); len(paths) > 0 {
			if s := f.dyns[paths[0]].Val; s > 0 && f.freeTail(s, refs) {
				strLen, newIdx = s, s
			}
		}
	} else {
		base = int64(alignUp(uint64(f.size), 16))
		align = 0x1000
		var vend uint64
		last := -1
		for i, p := range f.progs {
			if p.Type != elf.PT_LOAD {
				continue
			}
			end := p.Vaddr + p.Memsz
			if end < p.Vaddr {
				return nil, f.formatError(-1, "segment %d wraps around the address space", i)
			}
			vend = max(vend, end)
			if p.Align > align && p.Align <= 1<<30 && p.Align&(p.Align-1) == 0 {
				align = p.Align
			}
			last = i
		}
		if last < 0 {
			return nil, f.formatError(-1, "no loadable segment")
		}
		vbase = alignUp(vend, align) + uint64(base)%align
		if vbase < vend {
			return nil, f.formatError(-1, "no address space left for a new segment")
		}
		slot := -1
		for i, p := range f.progs {
			if p.Type == elf.PT_NULL {
				slot = i
				break
			}
		}
		if slot < 0 {
			grown, moved = f.growPhdrs(st)
		}
		// No PT_NOTE entry is taken: the notes (the GNU build-id, the ABI
		// tag, the GNU property note) must stay reachable through the
		// program headers, where dl_iterate_phdr-based crash reporters,
		// systemd-coredump and debuginfod look. The table moves into the
		// new segment instead. In an executable it must then be where a
		// kernel before 5.18 computes AT_PHDR from e_phoff (the first
		// segment's address minus its offset, plus e_phoff): the segment's
		// file offset is chosen so (execSegmentBase).
		if slot < 0 && !grown && f.isExec() {
			b, ok := f.execSegmentBase(alignUp(uint64(f.size), 16), vend, align)
			if ok {
				base, vbase = int64(b), b+f.firstLoadDelta()
			} else {
				// No address that keeps the kernel's arithmetic right:
				// take the last PT_NOTE entry, as before.
				for i, p := range f.progs {
					if p.Type == elf.PT_NOTE {
						slot = i
					}
				}
			}
		}
		if slot >= 0 {
			progs = append(progs[:slot], progs[slot+1:]...)
			if slot < last {
				last--
			}
		} else if !grown {
			phInSeg = true
		}
		progs = append(progs[:last+1], append([]prog{{Type: elf.PT_LOAD}}, progs[last+1:]...)...)
		loadIx = last + 1
	}
	if len(progs) >= 0xffff {
		return nil, f.formatError(-1, "too many program headers")
	}

	// Lay out the segment: program headers, dynamic table, string table,
	// moved sections.
	var off uint64
	phBytes := uint64(len(progs)) * uint64(h.phentsize)
	if phInSeg {
		off = phBytes
	}
	dynOff := alignUp(off, 16)
	ds := f.withRunpath(-1, newIdx)
	slots := len(ds) + 1 + spareDyns
	dynBytes := uint64(slots * f.dynSize())
	strOff := dynOff + dynBytes
	strSize := newIdx + uint64(len(runpath)) + 1
	off = strOff + strSize
	blobOff := make([]uint64, len(moved))
	for i, b := range moved {
		off = alignUp(off, b.align)
		blobOff[i] = off
		off += b.size
	}
	segSize := off
	if end := vbase + segSize; end < vbase || !f.is64() && (end > 1<<32 || uint64(base)+segSize > 1<<32) {
		return nil, f.formatError(-1, "no room for a new segment in a 32-bit file")
	}
	for i := range ds {
		switch ds[i].Tag {
		case elf.DT_STRTAB:
			ds[i].Val = vbase + strOff
		case elf.DT_STRSZ:
			ds[i].Val = strSize
		}
		for j, b := range moved {
			if ds[i].Tag == b.tag {
				ds[i].Val = vbase + blobOff[j]
			}
		}
	}

	progs[loadIx] = prog{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_W, Off: uint64(base),
		Vaddr: vbase, Paddr: vbase, Filesz: segSize, Memsz: segSize, Align: align}
	for i := range progs {
		p := &progs[i]
		switch {
		case p.Type == elf.PT_DYNAMIC:
			p.Off, p.Vaddr, p.Paddr = uint64(base)+dynOff, vbase+dynOff, vbase+dynOff
			p.Filesz, p.Memsz = dynBytes, dynBytes
		case p.Type == elf.PT_PHDR && phInSeg:
			p.Off, p.Vaddr, p.Paddr = uint64(base), vbase, vbase
			p.Filesz, p.Memsz = phBytes, phBytes
		case p.Type == elf.PT_PHDR && grown:
			p.Filesz, p.Memsz = phBytes, phBytes
		case p.Type == elf.PT_NOTE || p.Type == ptGnuProperty:
			for j, b := range moved {
				if b.tag == 0 && p.Off == uint64(b.src) && p.Filesz == b.size {
					p.Off, p.Vaddr, p.Paddr = uint64(base)+blobOff[j], vbase+blobOff[j], vbase+blobOff[j]
					break
				}
			}
		}
	}

	p := &plan{keep: f.size, size: base + int64(segSize)}
	if base < f.size {
		p.keep = base
	}
	p.copies = append(p.copies, copyOp{dst: base + int64(strOff), src: f.strOff, n: int64(strLen)})
	for i, b := range moved {
		p.copies = append(p.copies, copyOp{dst: base + int64(blobOff[i]), src: b.src, n: int64(b.size)})
	}
	p.write(base+int64(strOff)+int64(newIdx), append([]byte(runpath), 0))
	p.write(base+int64(dynOff), f.encodeDyns(ds, slots))

	phoff := h.phoff
	if phInSeg {
		phoff = uint64(base)
	}
	phdrs := make([]byte, phBytes)
	for i, q := range progs {
		f.encodeProg(phdrs[i*h.phentsize:], q)
	}
	p.write(int64(phoff), phdrs)
	if phoff != h.phoff || len(progs) != h.phnum {
		p.writeHeader(f, phoff, len(progs))
	}

	if st.dyn >= 0 {
		s := st.secs[st.dyn]
		s.Off, s.Addr, s.Size = uint64(base)+dynOff, vbase+dynOff, dynBytes
		p.writeSection(f, st, st.dyn, s)
	}
	if st.str >= 0 {
		s := st.secs[st.str]
		s.Off, s.Addr, s.Size = uint64(base)+strOff, vbase+strOff, strSize
		p.writeSection(f, st, st.str, s)
	}
	for i, b := range moved {
		s := st.secs[b.sec]
		s.Off, s.Addr = uint64(base)+blobOff[i], vbase+blobOff[i]
		p.writeSection(f, st, b.sec, s)
	}
	return p, nil
}

// freeTail reports whether the dynamic string table holds nothing from s to
// its end but one string and NULs, and nothing else refers there.
func (f *file) freeTail(s uint64, refs []uint64) bool {
	if s >= f.strSize || f.strSize-s > maxString {
		return false
	}
	for _, r := range refs {
		if r >= s && r < f.strSize {
			return false
		}
	}
	b, err := f.read(f.strOff+int64(s), f.strSize-s, "dynamic string table")
	if err != nil {
		return false
	}
	i := bytes.IndexByte(b, 0)
	return i >= 0 && len(bytes.Trim(b[i:], "\x00")) == 0
}

// writeHeader plans writing e_phoff and e_phnum.
func (p *plan) writeHeader(f *file, phoff uint64, phnum int) {
	bo := f.hdr.bo
	if f.is64() {
		b := make([]byte, 8)
		bo.PutUint64(b, phoff)
		p.write(32, b)
		b = make([]byte, 2)
		bo.PutUint16(b, uint16(phnum))
		p.write(56, b)
		return
	}
	b := make([]byte, 4)
	bo.PutUint32(b, uint32(phoff))
	p.write(28, b)
	b = make([]byte, 2)
	bo.PutUint16(b, uint16(phnum))
	p.write(44, b)
}

// writeSection plans writing section header i.
func (p *plan) writeSection(f *file, st *sectionTable, i int, s section) {
	b := make([]byte, f.shdrSize())
	f.encodeSection(b, s)
	p.write(st.off+int64(i*f.hdr.shentsize), b)
}

// ourSegment returns the index of the PT_LOAD that an earlier planSegment
// added, or -1, and the moved sections it holds: the last segment in the
// file and in memory, writable, ending at the end of the file, holding the
// dynamic table and string table and nothing else but moved tables and
// maybe the program header table.
func (f *file) ourSegment(st *sectionTable) (int, []blob) {
	best := -1
	for i, p := range f.progs {
		if p.Type == elf.PT_LOAD && (best < 0 || p.Off > f.progs[best].Off) {
			best = i
		}
	}
	if best < 0 {
		return -1, nil
	}
	o := f.progs[best]
	end := o.Off + o.Filesz
	if end != uint64(f.size) || o.Memsz != o.Filesz || o.Flags&elf.PF_W == 0 {
		return -1, nil
	}
	inside := func(off, n uint64) bool { return off >= o.Off && off <= end && n <= end-off }
	dynp := f.progs[f.dynIx]
	if !inside(dynp.Off, dynp.Filesz) || !inside(uint64(f.strOff), f.strSize) {
		return -1, nil
	}
	h := &f.hdr
	if ph := uint64(h.phnum) * uint64(h.phentsize); h.phoff < o.Off && h.phoff+ph > o.Off {
		return -1, nil
	}
	if h.shoff != 0 && h.shoff+uint64(len(st.secs))*uint64(h.shentsize) > o.Off {
		return -1, nil
	}
	var carried []blob
	for j, s := range st.secs {
		if j == st.dyn || j == st.str || s.Type == elf.SHT_NOBITS || s.Size == 0 || s.Off+s.Size <= o.Off {
			continue
		}
		b, ok := f.movable(st, j)
		if !ok || !inside(s.Off, s.Size) {
			return -1, nil
		}
		carried = append(carried, b)
	}
	for i, p := range f.progs {
		if i == best || p.Type == elf.PT_DYNAMIC || p.Type == elf.PT_PHDR || p.Type == elf.PT_NULL ||
			p.Filesz == 0 && p.Memsz == 0 {
			continue
		}
		if p.Type == elf.PT_LOAD && p.Vaddr >= o.Vaddr {
			return -1, nil
		}
		if p.Off+p.Filesz <= o.Off {
			continue
		}
		note := false
		for _, b := range carried {
			note = note || b.tag == 0 && p.Off == uint64(b.src) && p.Filesz == b.size
		}
		if !note {
			return -1, nil
		}
	}
	for _, d := range f.dyns {
		if !isAddrTag(d.Tag) || d.Tag == elf.DT_STRTAB || d.Val < o.Vaddr || d.Val >= o.Vaddr+o.Memsz {
			continue
		}
		ok := false
		for _, b := range carried {
			ok = ok || b.tag == d.Tag
		}
		if !ok {
			return -1, nil
		}
	}
	return best, carried
}

// isAddrTag reports whether tag's value is an address.
func isAddrTag(tag elf.DynTag) bool {
	switch tag {
	case elf.DT_PLTGOT, elf.DT_HASH, elf.DT_STRTAB, elf.DT_SYMTAB, elf.DT_RELA, elf.DT_INIT, elf.DT_FINI,
		elf.DT_REL, elf.DT_JMPREL, elf.DT_INIT_ARRAY, elf.DT_FINI_ARRAY, elf.DT_PREINIT_ARRAY,
		elf.DT_SYMTAB_SHNDX, dtRelr, elf.DT_VERSYM, elf.DT_VERDEF, elf.DT_VERNEED:
		return true
	}
	return tag >= elf.DT_ADDRRNGLO && tag <= elf.DT_ADDRRNGHI
}

func alignUp(x, a uint64) uint64 {
	if a <= 1 {
		return x
	}
	return (x + a - 1) &^ (a - 1)
}

// dtRelr is DT_RELR, which debug/elf does not name.
const dtRelr elf.DynTag = 36
