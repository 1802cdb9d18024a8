package elfscan

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
)

// ReplaceRodataString overwrites, in the ELF file at path, every
// NUL-terminated string of its read-only data sections (.rodata and
// .rodata.*) that begins with prefix followed by the string's end or a ':'
// (a search path list whose first element is prefix), with repl padded with
// NUL bytes to the old string's length. repl must not be longer than the
// string it replaces; such a string is left as it is. It returns how many
// strings were replaced. The file's size and layout do not change: this is
// for the compiled-in default search paths of a copy (Mesa's DRI driver
// directory), never for a host file.
//
// A linker may keep a string that is the tail of another ("dri" inside
// "/usr/lib/dri") only once, as the end of the longer one; rewriting the
// longer one would then change the shorter one too. A match whose bytes
// after its first something in the file refers to (a *TailMergedError) is
// refused: nothing is written and the error says where. What counts as a
// reference: a pointer-sized value anywhere in the file's loaded sections
// or relocations (an absolute address, a relocation's addend), and the
// code's own ways of taking an address: x86-64's lea of a RIP-relative
// address, i386's lea of a GOT-relative one, arm64's ADRP and ADD pairs.
func ReplaceRodataString(path, prefix, repl string) (int, error) {
	if prefix == "" {
		return 0, fmt.Errorf("%s: empty prefix", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	n, err := replaceRodata(f, st.Size(), f, prefix, repl)
	if err != nil {
		return n, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// TailMergedError is ReplaceRodataString's refusal of a string whose tail
// is another string the file refers to.
type TailMergedError struct {
	String string // the string that matched
	Off    int64  // its offset in the file
	Ref    uint64 // the address referred to, inside the string
}

func (e *TailMergedError) Error() string {
	return fmt.Sprintf("string %q at offset %#x is not rewritten: the file refers to its tail at address %#x (a string the linker merged into it)", e.String, e.Off, e.Ref)
}

// rodataMatch is one string replaceRodata would rewrite.
type rodataMatch struct {
	str  string
	off  int64  // file offset
	addr uint64 // virtual address
}

// replaceRodata is ReplaceRodataString on a file of size bytes read from
// r and written through w: it finds the matches, checks that none has a
// tail something refers to, then writes.
func replaceRodata(r io.ReaderAt, size int64, w io.WriterAt, prefix, repl string) (int, error) {
	ef, err := openSections(r, size)
	if err != nil {
		return 0, err
	}
	var ms []rodataMatch
	for _, s := range ef.secs {
		if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_WRITE != 0 || s.Flags&elf.SHF_ALLOC == 0 ||
			!(s.name == ".rodata" || strings.HasPrefix(s.name, ".rodata.")) {
			continue
		}
		data, err := ef.data(s)
		if err != nil {
			return 0, err
		}
		for off := 0; ; {
			i := bytes.Index(data[off:], []byte(prefix))
			if i < 0 {
				break
			}
			start := off + i
			off = start + 1
			// A string's start: the section's start or after a NUL.
			if start > 0 && data[start-1] != 0 {
				continue
			}
			end := bytes.IndexByte(data[start:], 0)
			if end < 0 {
				break
			}
			str := data[start : start+end]
			if len(str) > len(prefix) && str[len(prefix)] != ':' || len(repl) > len(str) {
				continue
			}
			ms = append(ms, rodataMatch{string(str), int64(s.Off) + int64(start), s.Addr + uint64(start)})
			off = start + end
		}
	}
	if len(ms) == 0 {
		return 0, nil
	}
	if err := checkTails(ef, ms); err != nil {
		return 0, err
	}
	for i, m := range ms {
		buf := make([]byte, len(m.str))
		copy(buf, repl)
		if _, err := w.WriteAt(buf, m.off); err != nil {
			return i, err
		}
	}
	return len(ms), nil
}

// sectionFile is an ELF file's sections as elfscan's bounded reader reads
// them (no debug/elf reader in the release binary: see doc.go).
type sectionFile struct {
	f    *file
	secs []namedSection
}

// namedSection is a section header with its name.
type namedSection struct {
	section
	name string
}

// openSections reads the ELF header and the section headers and names of
// the file of size bytes read from r.
func openSections(r io.ReaderAt, size int64) (*sectionFile, error) {
	f, err := open(r, size, "")
	if err != nil {
		return nil, err
	}
	secs, _, err := f.sectionHeaders()
	if err != nil || len(secs) == 0 {
		return &sectionFile{f: f}, err
	}
	names, err := f.sectionNames(secs)
	if err != nil {
		return nil, err
	}
	sf := &sectionFile{f: f, secs: make([]namedSection, len(secs))}
	for i, s := range secs {
		sf.secs[i] = namedSection{s, names[i]}
	}
	return sf, nil
}

// data reads a section of at most maxSection bytes.
func (sf *sectionFile) data(s namedSection) ([]byte, error) {
	if err := sf.f.inFile(s.section, "section "+s.name); err != nil {
		return nil, err
	}
	if s.Size > maxSection {
		return nil, fmt.Errorf("section %s too large", s.name)
	}
	data := make([]byte, s.Size)
	if m, err := sf.f.r.ReadAt(data, int64(s.Off)); m < len(data) {
		return nil, ioError("", "section "+s.name, int64(s.Off), err)
	}
	return data, nil
}

// section returns the section called name, or nil.
func (sf *sectionFile) section(name string) *namedSection {
	for i := range sf.secs {
		if sf.secs[i].name == name {
			return &sf.secs[i]
		}
	}
	return nil
}

// checkTails returns a *TailMergedError for the first match whose tail (an
// address after its first byte and before its NUL) the file refers to.
//
// It is long because it holds one case per machine's way of taking an
// address (x86-64, i386, arm64) beside the generic ones, so that what counts
// as a reference is read in one place.
func checkTails(ef *sectionFile, ms []rodataMatch) error {
	inside := func(a uint64) *rodataMatch {
		for i := range ms {
			if a > ms[i].addr && a < ms[i].addr+uint64(len(ms[i].str)) {
				return &ms[i]
			}
		}
		return nil
	}
	h := &ef.f.hdr
	bo := h.bo
	var gotAddr uint64
	for _, name := range []string{".got.plt", ".got"} {
		if s := ef.section(name); s != nil {
			gotAddr = s.Addr
			break
		}
	}
	ref := func(a uint64) error {
		if m := inside(a); m != nil {
			return &TailMergedError{m.str, m.off, a}
		}
		return nil
	}
	if err := relocRefs(ef, bo, ref); err != nil {
		return err
	}
	for _, s := range ef.secs {
		if s.Type == elf.SHT_NOBITS || s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		exec := s.Flags&elf.SHF_EXECINSTR != 0
		if !exec && (h.Type == elf.ET_DYN || s.Flags&elf.SHF_WRITE == 0) {
			// A shared object's pointers all have relocations.
			continue
		}
		data, err := ef.data(s)
		if err != nil {
			return err
		}
		if h.Type != elf.ET_DYN {
			// A program's absolute addresses: pointer-sized words of its
			// data, 32-bit immediates at any byte of its code.
			w, step := 4, 4
			if exec {
				step = 1
			} else if h.Class == elf.ELFCLASS64 {
				w, step = 8, 8
			}
			for p := 0; p+w <= len(data); p += step {
				v := uint64(bo.Uint32(data[p:]))
				if w == 8 {
					v = bo.Uint64(data[p:])
				}
				if err := ref(v); err != nil {
					return err
				}
			}
		}
		if s.Flags&elf.SHF_EXECINSTR == 0 {
			continue
		}
		switch h.Machine {
		case elf.EM_X86_64:
			// lea reg, [rip+disp32]: 8d, a ModRM of mod 00 and r/m 101,
			// then the displacement, which ends the instruction.
			for p := 2; p+4 <= len(data); p++ {
				if data[p-2] != 0x8d || data[p-1]&0xc7 != 0x05 {
					continue
				}
				next := s.Addr + uint64(p) + 4
				if err := ref(next + uint64(int64(int32(bo.Uint32(data[p:]))))); err != nil {
					return err
				}
			}
		case elf.EM_386:
			// Position-independent code names data by its distance from
			// the GOT (@GOTOFF): lea reg, [base+disp32], a ModRM of mod
			// 10 (with a SIB byte when its r/m is 100).
			if gotAddr == 0 {
				break
			}
			for p := 2; p+4 <= len(data); p++ {
				m := data[p-1]
				sib := p >= 3 && data[p-3] == 0x8d && data[p-2]&0xc7 == 0x84
				if !sib && (data[p-2] != 0x8d || m&0xc0 != 0x80 || m&0x07 == 0x04) {
					continue
				}
				if err := ref(uint64(uint32(gotAddr) + bo.Uint32(data[p:]))); err != nil {
					return err
				}
			}
		case elf.EM_AARCH64:
			if err := arm64Refs(s.Addr, data, bo, ref); err != nil {
				return err
			}
		}
	}
	return nil
}

// relocRefs calls ref with the address each relocation of ef puts in
// place, as far as it can be read without applying the relocation: a RELA
// entry's addend, or the word a REL entry's offset names.
func relocRefs(ef *sectionFile, bo binary.ByteOrder, ref func(uint64) error) error {
	is64 := ef.f.hdr.Class == elf.ELFCLASS64
	for _, s := range ef.secs {
		if s.Type != elf.SHT_RELA && s.Type != elf.SHT_REL {
			continue
		}
		data, err := ef.data(s)
		if err != nil {
			return err
		}
		size := 8 // Elf32_Rel; Elf64_Rel is twice that, a Rela half again
		if is64 {
			size = 16
		}
		if s.Type == elf.SHT_RELA {
			size += size / 2
		}
		for p := 0; p+size <= len(data); p += size {
			if s.Type == elf.SHT_RELA {
				if is64 {
					if err := ref(bo.Uint64(data[p+16:])); err != nil {
						return err
					}
				} else if err := ref(uint64(bo.Uint32(data[p+8:]))); err != nil {
					return err
				}
				continue
			}
			var off uint64
			if is64 {
				off = bo.Uint64(data[p:])
			} else {
				off = uint64(bo.Uint32(data[p:]))
			}
			for _, t := range ef.secs {
				if t.Type == elf.SHT_NOBITS || t.Flags&elf.SHF_ALLOC == 0 || off < t.Addr || off-t.Addr >= t.Size {
					continue
				}
				w := 4
				if is64 {
					w = 8
				}
				b := make([]byte, w)
				if off-t.Addr+uint64(w) > t.Size || ef.f.inFile(t.section, "section "+t.name) != nil {
					break
				}
				if _, err := ef.f.r.ReadAt(b, int64(t.Off+off-t.Addr)); err != nil {
					break
				}
				v := uint64(bo.Uint32(b))
				if is64 {
					v = bo.Uint64(b)
				}
				if err := ref(v); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// arm64Refs calls ref with each address an ADRP and a following ADD
// (immediate, within eight instructions, of the ADRP's register) form.
func arm64Refs(base uint64, data []byte, bo binary.ByteOrder, ref func(uint64) error) error {
	for p := 0; p+4 <= len(data); p += 4 {
		w := bo.Uint32(data[p:])
		if w&0x9f000000 != 0x90000000 { // ADRP
			continue
		}
		rd := w & 31
		imm := int64((w>>5)&0x7ffff)<<2 | int64((w>>29)&3)
		imm = imm << 43 >> 43 // sign-extend 21 bits
		page := (base+uint64(p))&^0xfff + uint64(imm<<12)
		for q := p + 4; q+4 <= len(data) && q <= p+32; q += 4 {
			a := bo.Uint32(data[q:])
			if a&0xffc00000 == 0x91000000 && (a>>5)&31 == rd { // ADD Xd, Xn, #imm12
				if err := ref(page + uint64((a>>10)&0xfff)); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}
