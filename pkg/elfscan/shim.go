package elfscan

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
)

// shimAlign is the alignment of a shim's one PT_LOAD: the largest page
// size of the machines nixglhost serves (64 KiB, arm64 and ppc64), so
// that every page size divides it.
const shimAlign = 0x10000

// WriteShim writes at dst a new shared object that holds no code, no data
// and no symbols, only a dynamic section: the DT_NEEDED entries needed, in
// order, and a DT_RPATH of rpath. Its ELF identity (class, byte order,
// machine, OS ABI, flags) is that of the ELF file src, so that a loader
// takes it wherever it takes src.
//
// A shim stands in for a library that is loaded by path (a plug-in
// dlopened from a directory) when what the library loads must be found
// through a search path it lacks. Its first DT_NEEDED names the library
// itself ("$ORIGIN/..." or an absolute path); glibc searches the shim's
// DT_RPATH for the names that library and its own DT_NEEDED libraries
// load, all the way down, as long as each has no DT_RUNPATH of its own;
// the names after the first are loaded (breadth first) before any of
// theirs, so that such a library's needs are met already. dlsym on the
// shim's handle finds the library's symbols: a handle's lookups cover its
// dependencies. See docs/DESIGN.md, "Mesa".
func WriteShim(src, dst string, needed []string, rpath string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	var hdr [64]byte
	_, err = io.ReadFull(f, hdr[:])
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: ELF header: %w", src, err)
	}
	b, err := shimBytes(hdr[:], needed, rpath)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := out.Write(b); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	return nil
}

// shimBytes builds the shim for the ELF header hdr (of at least 64 bytes,
// or 52 for ELFCLASS32).
//
// It is long because it lays out one ELF file byte by byte (headers, dynamic
// section, strings) and the offsets depend on each other; it is straight-
// line code.
func shimBytes(hdr []byte, needed []string, rpath string) ([]byte, error) {
	if string(hdr[:4]) != elf.ELFMAG {
		return nil, fmt.Errorf("not an ELF file")
	}
	class, data := elf.Class(hdr[elf.EI_CLASS]), elf.Data(hdr[elf.EI_DATA])
	var bo binary.ByteOrder
	switch data {
	case elf.ELFDATA2LSB:
		bo = binary.LittleEndian
	case elf.ELFDATA2MSB:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("unknown byte order %d", data)
	}
	var w int // the word size: addresses, offsets, dynamic entries' halves
	switch class {
	case elf.ELFCLASS32:
		w = 4
	case elf.ELFCLASS64:
		w = 8
	default:
		return nil, fmt.Errorf("unknown ELF class %d", class)
	}
	machine := elf.Machine(bo.Uint16(hdr[18:]))
	if machine == elf.EM_MIPS {
		// MIPS's loader needs dynamic entries of its own (DT_MIPS_*).
		return nil, fmt.Errorf("no shim for %s", machine)
	}
	flagsAt := 36
	if w == 8 {
		flagsAt = 48
	}
	flags := bo.Uint32(hdr[flagsAt:])
	if len(needed) == 0 {
		return nil, fmt.Errorf("a shim needs a library")
	}
	for _, n := range needed {
		if n == "" || strings.IndexByte(n, 0) >= 0 {
			return nil, fmt.Errorf("bad DT_NEEDED name %q", n)
		}
	}
	if strings.IndexByte(rpath, 0) >= 0 {
		return nil, fmt.Errorf("bad DT_RPATH %q", rpath)
	}

	// Layout, addresses equal to file offsets: the ELF header, three
	// program headers, the GNU hash table (no symbols), the symbol table
	// (its null symbol), the strings, the dynamic section.
	ehSize, phSize, shSize, symSize := 52, 32, 40, 16
	if w == 8 {
		ehSize, phSize, shSize, symSize = 64, 56, 64, 24
	}
	const nPhdr = 3
	hashOff := ehSize + nPhdr*phSize
	hashSize := 16 + w + 4 // nbuckets, symoffset, bloom size, shift; one bloom word; one bucket
	symOff := alignTo(hashOff+hashSize, w)
	strOff := symOff + symSize
	strs := []byte{0}
	nameAt := make([]int, len(needed))
	for i, n := range needed {
		nameAt[i] = len(strs)
		strs = append(append(strs, n...), 0)
	}
	rpathAt := len(strs)
	strs = append(append(strs, rpath...), 0)
	dynOff := alignTo(strOff+len(strs), w)
	type dyn struct {
		tag elf.DynTag
		val uint64
	}
	var dyns []dyn
	for _, at := range nameAt {
		dyns = append(dyns, dyn{elf.DT_NEEDED, uint64(at)})
	}
	dyns = append(dyns,
		dyn{elf.DT_RPATH, uint64(rpathAt)},
		dyn{elf.DT_GNU_HASH, uint64(hashOff)},
		dyn{elf.DT_STRTAB, uint64(strOff)},
		dyn{elf.DT_STRSZ, uint64(len(strs))},
		dyn{elf.DT_SYMTAB, uint64(symOff)},
		dyn{elf.DT_SYMENT, uint64(symSize)},
		dyn{elf.DT_NULL, 0})
	dynSize := len(dyns) * 2 * w
	size := dynOff + dynSize
	b := make([]byte, size)

	word := func(off int, v uint64) {
		if w == 8 {
			bo.PutUint64(b[off:], v)
		} else {
			bo.PutUint32(b[off:], uint32(v))
		}
	}
	// The ELF header: the identity is src's, the rest describes this file.
	copy(b, hdr[:elf.EI_NIDENT])
	for i := elf.EI_ABIVERSION + 1; i < elf.EI_NIDENT; i++ {
		b[i] = 0
	}
	bo.PutUint16(b[16:], uint16(elf.ET_DYN))
	bo.PutUint16(b[18:], uint16(machine))
	bo.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	// e_entry 0, e_phoff, e_shoff 0.
	word(24+w, uint64(ehSize))
	bo.PutUint32(b[24+3*w:], flags)
	at := 24 + 3*w + 4
	bo.PutUint16(b[at:], uint16(ehSize))
	bo.PutUint16(b[at+2:], uint16(phSize))
	bo.PutUint16(b[at+4:], nPhdr)
	bo.PutUint16(b[at+6:], uint16(shSize)) // e_shentsize; there are no sections
	// The program headers.
	phdr := func(i int, typ elf.ProgType, pflags elf.ProgFlag, off, size, align uint64) {
		p := ehSize + i*phSize
		if w == 8 {
			bo.PutUint32(b[p:], uint32(typ))
			bo.PutUint32(b[p+4:], uint32(pflags))
			for j, v := range []uint64{off, off, off, size, size, align} {
				bo.PutUint64(b[p+8+8*j:], v)
			}
			return
		}
		for j, v := range []uint64{uint64(typ), off, off, off, size, size, uint64(pflags), align} {
			bo.PutUint32(b[p+4*j:], uint32(v))
		}
	}
	phdr(0, elf.PT_LOAD, elf.PF_R|elf.PF_W, 0, uint64(size), shimAlign)
	phdr(1, elf.PT_DYNAMIC, elf.PF_R|elf.PF_W, uint64(dynOff), uint64(dynSize), uint64(w))
	phdr(2, elf.PT_GNU_STACK, elf.PF_R|elf.PF_W, 0, 0, 16)
	// The GNU hash table of no symbols: one bucket, empty; one bloom
	// word, zero, which every lookup fails.
	bo.PutUint32(b[hashOff:], 1)   // nbuckets
	bo.PutUint32(b[hashOff+4:], 1) // symoffset: the null symbol is not hashed
	bo.PutUint32(b[hashOff+8:], 1) // bloom words
	bo.PutUint32(b[hashOff+12:], 6)
	// The null symbol is all zeros; so are the bloom word and the bucket.
	copy(b[strOff:], strs)
	for i, d := range dyns {
		word(dynOff+2*i*w, uint64(d.tag))
		word(dynOff+2*i*w+w, d.val)
	}
	return b, nil
}

// alignTo rounds x up to a multiple of a.
func alignTo(x, a int) int {
	return (x + a - 1) / a * a
}
