package archrun

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
)

// TinyProgram returns a complete static ELF executable for arch (a GOARCH
// name For knows) that does nothing but exit with status: one PT_LOAD
// segment mapping the file, the code right after the program header. It is
// what For executes to learn whether the kernel runs arch: building it
// needs no compiler, and running it needs no loader or libc, so only the
// kernel's (or binfmt_misc's) ability is measured. It returns nil for an
// unknown arch.
//
// It is long because it writes one tiny ELF program byte by byte.
func TinyProgram(arch string, status byte) []byte {
	var (
		code    []byte
		machine elf.Machine
		class   = elf.ELFCLASS64
		base    uint64
		flags   uint32
	)
	le := binary.LittleEndian
	words := func(ws ...uint32) []byte {
		b := make([]byte, 0, 4*len(ws))
		for _, w := range ws {
			b = le.AppendUint32(b, w)
		}
		return b
	}
	switch arch {
	case "amd64":
		machine, base = elf.EM_X86_64, 0x400000
		// mov edi, status; mov eax, 60 (exit); syscall
		code = []byte{0xbf, status, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05}
	case "386":
		machine, class, base = elf.EM_386, elf.ELFCLASS32, 0x08048000
		// mov ebx, status; mov eax, 1 (exit); int 0x80
		code = []byte{0xbb, status, 0, 0, 0, 0xb8, 1, 0, 0, 0, 0xcd, 0x80}
	case "arm64":
		machine, base = elf.EM_AARCH64, 0x400000
		// movz x0, #status; movz x8, #93 (exit); svc #0
		code = words(0xd2800000|uint32(status)<<5, 0xd2800000|93<<5|8, 0xd4000001)
	case "arm":
		// EABI version 5: the kernel and qemu then take the system call
		// number from r7.
		machine, class, base, flags = elf.EM_ARM, elf.ELFCLASS32, 0x10000, 0x05000000
		// mov r0, #status; mov r7, #1 (exit); svc #0
		code = words(0xe3a00000|uint32(status), 0xe3a07001, 0xef000000)
	default:
		return nil
	}

	var b bytes.Buffer
	ident := [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(class), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)}
	b.Write(ident[:])
	put16 := func(v uint16) { b.Write(le.AppendUint16(nil, v)) }
	put32 := func(v uint32) { b.Write(le.AppendUint32(nil, v)) }
	addr := func(v uint64) { // a word of the class's size
		if class == elf.ELFCLASS64 {
			b.Write(le.AppendUint64(nil, v))
		} else {
			put32(uint32(v))
		}
	}
	ehsize, phsize := uint64(52), uint64(32)
	if class == elf.ELFCLASS64 {
		ehsize, phsize = 64, 56
	}
	size := ehsize + phsize + uint64(len(code))
	put16(uint16(elf.ET_EXEC))
	put16(uint16(machine))
	put32(uint32(elf.EV_CURRENT))
	addr(base + ehsize + phsize) // e_entry
	addr(ehsize)                 // e_phoff
	addr(0)                      // e_shoff
	put32(flags)
	put16(uint16(ehsize))
	put16(uint16(phsize))
	put16(1) // e_phnum
	put16(0) // e_shentsize
	put16(0) // e_shnum
	put16(0) // e_shstrndx

	// The one PT_LOAD; the fields are ordered differently in the classes.
	put32(uint32(elf.PT_LOAD))
	if class == elf.ELFCLASS64 {
		put32(uint32(elf.PF_R | elf.PF_X))
	}
	addr(0)    // p_offset
	addr(base) // p_vaddr
	addr(base) // p_paddr
	addr(size) // p_filesz
	addr(size) // p_memsz
	if class == elf.ELFCLASS32 {
		put32(uint32(elf.PF_R | elf.PF_X))
	}
	addr(0x1000) // p_align
	b.Write(code)
	return b.Bytes()
}
