package elfscan

import (
	"debug/elf"
	"io"

	"github.com/nixglhost/nixglhost/internal/rawfile"
)

// VersionNeed is one library's entry in the symbol version needs
// (.gnu.version_r): the library's file name and the version names the
// object needs from it, in file order.
type VersionNeed struct {
	File     string   // e.g. "libc.so.6"
	Versions []string // e.g. "GLIBC_2.2.5", "GLIBC_2.34"
}

// Info is what the dynamic loader reads from an ELF file before loading it.
type Info struct {
	Ident
	Interp       string        // PT_INTERP, "" if none
	Soname       string        // DT_SONAME, "" if none
	Needed       []string      // DT_NEEDED, in order
	Runpath      string        // DT_RUNPATH
	HasRunpath   bool          // whether there is a DT_RUNPATH (it may be empty)
	Rpath        string        // DT_RPATH
	HasRpath     bool          // whether there is a DT_RPATH (it may be empty)
	VersionNeeds []VersionNeed // symbol version needs, in file order
	VersionDefs  []string      // version definitions, in file order, without the base (file name) one
}

// Read reads the Info of the ELF file at path. It reads the ELF header, the
// program headers, the dynamic segment and the strings and version tables
// the dynamic segment names, never the whole file.
func Read(path string) (*Info, error) {
	return readPath(path, ReadFrom)
}

// readPath opens the file at path (rawfile.Open) and hands read a page
// reader of it, its size and its name: what Read, ReadNotes and
// ReadImportedSymbols share.
func readPath[T any](path string, read func(r io.ReaderAt, size int64, name string) (T, error)) (T, error) {
	var zero T
	f, err := rawfile.Open(path, 0)
	if err != nil {
		return zero, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return zero, err
	}
	return read(newPageReader(f, st.Size()), st.Size(), path)
}

// ReadFrom reads the Info of the ELF file of size bytes in r, as Read does;
// name is the file's name for error messages.
func ReadFrom(r io.ReaderAt, size int64, name string) (*Info, error) {
	f, err := open(r, size, name)
	if err != nil {
		return nil, err
	}
	return f.info()
}

func (f *file) info() (*Info, error) {
	in := &Info{Ident: f.hdr.Ident}
	for _, p := range f.progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		s, err := f.cstring(int64(p.Off), p.Filesz, "PT_INTERP")
		if err != nil {
			return nil, err
		}
		in.Interp = s
		break
	}
	for _, d := range f.dyns {
		if !isStringTag(d.Tag) {
			continue
		}
		s, err := f.str(d.Val)
		if err != nil {
			return nil, err
		}
		switch d.Tag {
		case elf.DT_NEEDED:
			in.Needed = append(in.Needed, s)
		case elf.DT_SONAME:
			in.Soname = s
		case elf.DT_RUNPATH:
			in.Runpath, in.HasRunpath = s, true
		case elf.DT_RPATH:
			in.Rpath, in.HasRpath = s, true
		}
	}
	var err error
	if in.VersionNeeds, err = f.versionNeeds(nil); err != nil {
		return nil, err
	}
	if in.VersionDefs, err = f.versionDefs(nil); err != nil {
		return nil, err
	}
	return in, nil
}

// versionTable locates the version table that tag (DT_VERNEED or
// DT_VERDEF) points to and returns its file range: from its start to the end
// of the PT_LOAD holding it. count is the entry count from numTag.
func (f *file) versionTable(tag, numTag elf.DynTag) (off int64, end uint64, count uint64, ok bool, err error) {
	addr, ok := f.dynVal(tag)
	if !ok {
		return 0, 0, 0, false, nil
	}
	count, _ = f.dynVal(numTag)
	if count > maxVersions {
		return 0, 0, 0, false, f.formatError(-1, "%s count %d too large", numTag, count)
	}
	off, ok = f.vaddrToOff(addr, 1)
	if !ok {
		return 0, 0, 0, false, f.formatError(-1, "%s (%#x) is not in the file", tag, addr)
	}
	// The table ends at the latest where the file image of its segment ends.
	end = uint64(f.size)
	for _, p := range f.progs {
		if p.Type == elf.PT_LOAD && addr >= p.Vaddr && addr-p.Vaddr < p.Filesz {
			end = p.Off + p.Filesz
			break
		}
	}
	return off, end, count, true, nil
}

// readAt reads n bytes at off, which must lie before end.
func (f *file) readAt(buf []byte, off int64, end uint64, what string) error {
	if off < 0 || uint64(off) > end || uint64(len(buf)) > end-uint64(off) {
		return f.formatError(off, "%s extends past its segment", what)
	}
	if m, err := f.r.ReadAt(buf, off); m < len(buf) {
		return ioError(f.name, what, off, err)
	}
	return nil
}

// versionNeeds walks .gnu.version_r. When visit is not nil it is called
// with every string index the table refers to, and no strings are read.
func (f *file) versionNeeds(visit func(uint64)) ([]VersionNeed, error) {
	var needs []VersionNeed
	err := f.walkNeeds(func(fileIx uint64) error {
		if visit != nil {
			visit(fileIx)
			return nil
		}
		s, err := f.str(fileIx)
		needs = append(needs, VersionNeed{File: s})
		return err
	}, func(nameIx uint64, _ uint16) error {
		if visit != nil {
			visit(nameIx)
			return nil
		}
		s, err := f.str(nameIx)
		needs[len(needs)-1].Versions = append(needs[len(needs)-1].Versions, s)
		return err
	})
	if err != nil {
		return nil, err
	}
	return needs, nil
}

// walkNeeds walks .gnu.version_r, calling need with the file name's string
// index of each library entry, then aux with the version name's string
// index and version index (vna_other) of each of its versions.
func (f *file) walkNeeds(need func(fileIx uint64) error, aux func(nameIx uint64, other uint16) error) error {
	off, end, count, ok, err := f.versionTable(elf.DT_VERNEED, elf.DT_VERNEEDNUM)
	if !ok || err != nil {
		return err
	}
	bo := f.hdr.bo
	var b [16]byte
	walked := 0
	for i := uint64(0); i < count; i++ {
		if walked++; walked > maxVersions {
			return f.formatError(off, "too many version needs")
		}
		if err := f.readAt(b[:], off, end, "version need"); err != nil {
			return err
		}
		// Elf_Verneed: vn_version, vn_cnt (2 bytes each), vn_file, vn_aux, vn_next (4 each).
		cnt := int(bo.Uint16(b[2:]))
		if err := need(uint64(bo.Uint32(b[4:]))); err != nil {
			return err
		}
		a := bo.Uint32(b[8:])
		next := bo.Uint32(b[12:])
		aoff := off + int64(a)
		for j := 0; j < cnt; j++ {
			if walked++; walked > maxVersions {
				return f.formatError(aoff, "too many version need entries")
			}
			if err := f.readAt(b[:], aoff, end, "version need auxiliary entry"); err != nil {
				return err
			}
			// Elf_Vernaux: vna_hash (4), vna_flags, vna_other (2 each), vna_name, vna_next (4 each).
			if err := aux(uint64(bo.Uint32(b[8:])), bo.Uint16(b[vnaOtherOff:])); err != nil {
				return err
			}
			anext := bo.Uint32(b[12:])
			if anext == 0 {
				break
			}
			aoff += int64(anext)
		}
		if next == 0 {
			break
		}
		off += int64(next)
	}
	return nil
}

// versionDefs walks .gnu.version_d, returning the names of the version
// definitions other than the base one. visit is as for versionNeeds.
func (f *file) versionDefs(visit func(uint64)) ([]string, error) {
	var defs []string
	err := f.walkDefs(func(_, flags uint16, first bool, nameIx uint64) error {
		if visit != nil {
			visit(nameIx)
			return nil
		}
		if !first || flags&verFlgBase != 0 {
			return nil
		}
		s, err := f.str(nameIx)
		defs = append(defs, s)
		return err
	})
	if err != nil {
		return nil, err
	}
	return defs, nil
}

// walkDefs walks .gnu.version_d, calling aux for each Elf_Verdaux entry
// with its definition's index (vd_ndx) and flags, whether it is the
// definition's first entry (which names it; the others name its parents)
// and its name's string index.
func (f *file) walkDefs(aux func(ndx, flags uint16, first bool, nameIx uint64) error) error {
	off, end, count, ok, err := f.versionTable(elf.DT_VERDEF, elf.DT_VERDEFNUM)
	if !ok || err != nil {
		return err
	}
	bo := f.hdr.bo
	var b [20]byte
	walked := 0
	for i := uint64(0); i < count; i++ {
		if walked++; walked > maxVersions {
			return f.formatError(off, "too many version definitions")
		}
		if err := f.readAt(b[:], off, end, "version definition"); err != nil {
			return err
		}
		// Elf_Verdef: vd_version, vd_flags, vd_ndx, vd_cnt (2 bytes each),
		// vd_hash, vd_aux, vd_next (4 each).
		flags := bo.Uint16(b[2:])
		ndx := bo.Uint16(b[vdNdxOff:])
		cnt := int(bo.Uint16(b[6:]))
		a := bo.Uint32(b[12:])
		next := bo.Uint32(b[16:])
		aoff := off + int64(a)
		for j := 0; j < cnt; j++ {
			if walked++; walked > maxVersions {
				return f.formatError(aoff, "too many version definition entries")
			}
			// Elf_Verdaux: vda_name, vda_next (4 bytes each).
			if err := f.readAt(b[:8], aoff, end, "version definition auxiliary entry"); err != nil {
				return err
			}
			if err := aux(ndx, flags, j == 0, uint64(bo.Uint32(b[0:]))); err != nil {
				return err
			}
			anext := bo.Uint32(b[4:])
			if anext == 0 {
				break
			}
			aoff += int64(anext)
		}
		if next == 0 {
			break
		}
		off += int64(next)
	}
	return nil
}

// verFlgBase marks the version definition of the file itself.
const verFlgBase = 0x1
