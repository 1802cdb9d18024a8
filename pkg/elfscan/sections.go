package elfscan

import (
	"bytes"
	"debug/elf"
	"io"
)

// More limits, for what is read through the section headers.
const (
	maxSections = 1 << 16 // most section headers read
	maxNotes    = 1 << 16 // largest note section read (a cuda_compat note is a few hundred bytes)
	maxSymbols  = 1 << 20 // most dynamic symbols walked
	maxSection  = 1 << 30 // largest section ReplaceRodataString reads
	symChunk    = 256     // dynamic symbols read at a time
	shnXindex   = 0xffff  // SHN_XINDEX: the real index is elsewhere
	versymHide  = 0x8000  // the hidden bit of a .gnu.version entry
	vnaOtherOff = 6       // offset of vna_other in Elf_Vernaux
	vdNdxOff    = 4       // offset of vd_ndx in Elf_Verdef
	elfNoteHdr  = 12      // namesz, descsz, type: 4 bytes each
	noteAlign   = 4       // name and descriptor are padded to 4 bytes
)

// Note is one entry of an ELF note section: who defines it (the owner's
// name, without its NUL), its type in that owner's numbering, and its
// descriptor, as stored.
type Note struct {
	Owner string
	Type  uint32
	Desc  []byte
}

// ImportedSymbol is a global dynamic symbol an ELF file uses and does not
// define. Version is the symbol version it asks for ("" when none) and
// Library the file that version is needed from (DT_VERNEED; "" when the
// version is one of the file's own definitions or it has none).
type ImportedSymbol struct {
	Name    string
	Version string
	Library string
}

// sectionHeaders reads the section header table, empty when the file has
// none, and returns it with the table's file offset.
func (f *file) sectionHeaders() ([]section, int64, error) {
	h := &f.hdr
	if h.shoff == 0 {
		return nil, 0, nil
	}
	if h.shentsize < f.shdrSize() {
		// readHeader checks it only when e_shnum is not 0.
		return nil, 0, f.formatError(-1, "section header entry size %d too small", h.shentsize)
	}
	num := h.shnum
	if num == 0 {
		// Extended section numbering: the count is section 0's sh_size.
		b, err := f.read(int64(h.shoff), uint64(f.shdrSize()), "section header 0")
		if err != nil {
			return nil, 0, err
		}
		n := f.decodeSection(b).Size
		if n > maxSections {
			return nil, 0, f.formatError(int64(h.shoff), "too many sections (%d)", n)
		}
		num = int(n)
	}
	off, total, err := f.tableRange(h.shoff, num, h.shentsize, "section header table")
	if err != nil {
		return nil, 0, err
	}
	b, err := f.read(off, total, "section header table")
	if err != nil {
		return nil, 0, err
	}
	secs := make([]section, num)
	for i := range secs {
		secs[i] = f.decodeSection(b[i*h.shentsize:])
	}
	return secs, off, nil
}

// sectionNames returns the names of secs, from the section name string
// table that the ELF header names.
func (f *file) sectionNames(secs []section) ([]string, error) {
	ix := f.hdr.shstrndx
	if ix == shnXindex && len(secs) > 0 {
		ix = int(secs[0].Link)
	}
	if ix <= 0 || ix >= len(secs) {
		return nil, f.formatError(-1, "section name table index %d out of range (%d sections)", ix, len(secs))
	}
	tab := secs[ix]
	// One read of the whole table (f.read checks it against the file and
	// caps it), then the names are cut from memory.
	b, err := f.read(int64(tab.Off), tab.Size, "section name table")
	if err != nil {
		return nil, err
	}
	names := make([]string, len(secs))
	for i, s := range secs {
		if uint64(s.Name) >= tab.Size {
			return nil, f.formatError(int64(tab.Off), "section %d's name (%d) is outside the name table (%d bytes)", i, s.Name, tab.Size)
		}
		n := bytes.IndexByte(b[s.Name:], 0)
		if n < 0 {
			return nil, f.formatError(int64(tab.Off)+int64(s.Name), "unterminated section name")
		}
		names[i] = string(b[s.Name : s.Name+uint32(n)])
	}
	return names, nil
}

// inFile checks that the bytes of s lie within the file.
func (f *file) inFile(s section, what string) error {
	if s.Off > uint64(f.size) || s.Size > uint64(f.size)-s.Off {
		return f.formatError(int64(s.Off), "%s (%d bytes) extends past the end of the file", what, s.Size)
	}
	return nil
}

// ReadNotes returns the notes of the note section called section in the
// ELF file at path, or nil when it has no such section (or one of another
// type). The section may hold at most 64 KiB: a larger one is an error.
func ReadNotes(path, section string) ([]Note, error) {
	return readPath(path, func(r io.ReaderAt, size int64, name string) ([]Note, error) {
		return ReadNotesFrom(r, size, name, section)
	})
}

// ReadNotesFrom is ReadNotes on the ELF file of size bytes in r; name is
// the file's name for error messages.
func ReadNotesFrom(r io.ReaderAt, size int64, name, section string) ([]Note, error) {
	f, err := open(r, size, name)
	if err != nil {
		return nil, err
	}
	secs, _, err := f.sectionHeaders()
	if err != nil || len(secs) == 0 {
		return nil, err
	}
	names, err := f.sectionNames(secs)
	if err != nil {
		return nil, err
	}
	for i, s := range secs {
		if names[i] != section || s.Type != elf.SHT_NOTE {
			continue
		}
		if s.Size > maxNotes {
			return nil, f.formatError(int64(s.Off), "note section %s too large (%d bytes)", section, s.Size)
		}
		b, err := f.read(int64(s.Off), s.Size, "note section "+section)
		if err != nil {
			return nil, err
		}
		return f.parseNotes(b, int64(s.Off))
	}
	return nil, nil
}

// parseNotes splits the contents of a note section at off into its notes.
// Trailing bytes too short for a note header are ignored, as readelf does.
func (f *file) parseNotes(b []byte, off int64) ([]Note, error) {
	bo := f.hdr.bo
	pad := func(n uint64) uint64 { return (n + noteAlign - 1) &^ (noteAlign - 1) }
	var notes []Note
	for pos := uint64(0); uint64(len(b))-pos >= elfNoteHdr; {
		namesz, descsz := uint64(bo.Uint32(b[pos:])), uint64(bo.Uint32(b[pos+4:]))
		typ := bo.Uint32(b[pos+8:])
		rest := uint64(len(b)) - pos - elfNoteHdr
		// Both sizes are below 1<<32: their padded sum cannot overflow.
		if pad(namesz) > rest || descsz > rest-pad(namesz) {
			return nil, f.formatError(off+int64(pos), "note of %d+%d bytes overruns its section", namesz, descsz)
		}
		name := b[pos+elfNoteHdr : pos+elfNoteHdr+namesz]
		desc := b[pos+elfNoteHdr+pad(namesz) : pos+elfNoteHdr+pad(namesz)+descsz]
		notes = append(notes, Note{Owner: string(bytes.TrimRight(name, "\x00")), Type: typ, Desc: desc})
		next := elfNoteHdr + pad(namesz) + pad(descsz)
		if next > uint64(len(b))-pos {
			break
		}
		pos += next
	}
	return notes, nil
}

// ReadImportedSymbols returns the global dynamic symbols the ELF file at
// path uses and does not define, in symbol table order, with the versions
// they ask for (as debug/elf's File.ImportedSymbols does, from a bounded
// read: at most a million symbols, names capped as all strings are).
func ReadImportedSymbols(path string) ([]ImportedSymbol, error) {
	return readPath(path, ReadImportedSymbolsFrom)
}

// ReadImportedSymbolsFrom is ReadImportedSymbols on the ELF file of size
// bytes in r; name is the file's name for error messages.
func ReadImportedSymbolsFrom(r io.ReaderAt, size int64, name string) ([]ImportedSymbol, error) {
	f, err := open(r, size, name)
	if err != nil {
		return nil, err
	}
	secs, _, err := f.sectionHeaders()
	if err != nil {
		return nil, err
	}
	sym, versym := -1, -1
	for i, s := range secs {
		switch {
		case s.Type == elf.SHT_DYNSYM && sym < 0:
			sym = i
		case s.Type == elf.SHT_GNU_VERSYM && versym < 0:
			versym = i
		}
	}
	if sym < 0 {
		return nil, nil
	}
	return f.importedSymbols(secs, sym, versym)
}

// symVersion is what a version index names.
type symVersion struct{ name, library string }

// versionIndex maps the version indices of the file's version needs and
// definitions to their names (and, for a need, its library).
func (f *file) versionIndex() (map[uint16]symVersion, error) {
	ix := map[uint16]symVersion{}
	var lib string
	err := f.walkNeeds(func(fileIx uint64) error {
		var err error
		lib, err = f.str(fileIx)
		return err
	}, func(nameIx uint64, other uint16) error {
		s, err := f.str(nameIx)
		ix[other] = symVersion{s, lib}
		return err
	})
	if err != nil {
		return nil, err
	}
	err = f.walkDefs(func(ndx, flags uint16, first bool, nameIx uint64) error {
		if !first {
			return nil
		}
		s, err := f.str(nameIx)
		if _, ok := ix[ndx]; !ok {
			ix[ndx] = symVersion{s, ""}
		}
		return err
	})
	return ix, err
}

func (f *file) importedSymbols(secs []section, sym, versym int) ([]ImportedSymbol, error) {
	s := secs[sym]
	es := uint64(f.symSize())
	if err := f.inFile(s, "dynamic symbol table"); err != nil {
		return nil, err
	}
	n := s.Size / es
	if n > maxSymbols {
		return nil, f.formatError(int64(s.Off), "too many dynamic symbols (%d)", n)
	}
	if int(s.Link) <= 0 || int(s.Link) >= len(secs) {
		return nil, f.formatError(int64(s.Off), "dynamic symbols' string table %d out of range", s.Link)
	}
	strs := secs[s.Link]
	if err := f.inFile(strs, "dynamic symbols' string table"); err != nil {
		return nil, err
	}
	var vers []byte
	if versym >= 0 {
		v := secs[versym]
		// One entry per symbol; a shorter table leaves the rest unversioned.
		b, err := f.read(int64(v.Off), min(v.Size, 2*n), "symbol version table")
		if err != nil {
			return nil, err
		}
		vers = b
	}
	index, err := f.versionIndex()
	if err != nil {
		return nil, err
	}
	bo := f.hdr.bo
	var out []ImportedSymbol
	buf := make([]byte, symChunk*es)
	// Entry 0 is the undefined symbol: skip it, as debug/elf does.
	for j := min(n, 1); j < n; {
		k := min(n-j, symChunk)
		off := int64(s.Off + j*es)
		if m, err := f.r.ReadAt(buf[:k*es], off); m < int(k*es) {
			return nil, ioError(f.name, "dynamic symbols", off, err)
		}
		for e := uint64(0); e < k; e++ {
			b := buf[e*es:]
			nameIx := uint64(bo.Uint32(b))
			var info byte
			var shndx uint16
			if f.is64() {
				info, shndx = b[4], bo.Uint16(b[6:])
			} else {
				info, shndx = b[12], bo.Uint16(b[14:])
			}
			if elf.ST_BIND(info) != elf.STB_GLOBAL || elf.SectionIndex(shndx) != elf.SHN_UNDEF {
				continue
			}
			if nameIx >= strs.Size {
				return nil, f.formatError(off+int64(e*es), "symbol name %d outside its string table (%d bytes)", nameIx, strs.Size)
			}
			name, err := f.cstring(int64(strs.Off+nameIx), strs.Size-nameIx, "symbol name")
			if err != nil {
				return nil, err
			}
			is := ImportedSymbol{Name: name}
			// Indices 0 (local) and 1 (global, the base version) name none.
			if i := 2 * (j + e); i+2 <= uint64(len(vers)) {
				if x := bo.Uint16(vers[i:]) &^ versymHide; x > 1 {
					v := index[x]
					is.Version, is.Library = v.name, v.library
				}
			}
			out = append(out, is)
		}
		j += k
	}
	return out, nil
}

func (f *file) symSize() int {
	if f.is64() {
		return 24
	}
	return 16
}
