package hostdrivers

// This file is the ELF identity of the programs an entry serves.

import (
	"debug/elf"
	"runtime"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
)

// target returns the program's ELF identity, or this machine's.
func (o *Options) target() elfscan.Ident {
	if o.Target.Machine != elf.EM_NONE {
		return o.Target
	}
	return NativeIdent()
}

// Companion returns the identity of the 32-bit programs a program of
// identity t may start on the same machine (x86-64: i386, as Steam and
// Wine do), and false when there is none. NixOS serves them from
// /run/opengl-driver-32; a launch prepares their entry beside the main one
// (see docs/DESIGN.md, "32-bit programs").
func Companion(t elfscan.Ident) (elfscan.Ident, bool) {
	if t.Machine != elf.EM_X86_64 || t.Class != elf.ELFCLASS64 {
		return elfscan.Ident{}, false
	}
	return elfscan.Ident{Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Type: elf.ET_DYN, Machine: elf.EM_386}, true
}

// NativeIdent is the ELF identity of programs built for the machine
// nixglhost itself was built for.
func NativeIdent() elfscan.Ident {
	id := elfscan.Ident{Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Type: elf.ET_DYN}
	switch runtime.GOARCH {
	case "amd64":
		id.Machine = elf.EM_X86_64
	case "arm64":
		id.Machine = elf.EM_AARCH64
	case "386":
		id.Class, id.Machine = elf.ELFCLASS32, elf.EM_386
	case "arm":
		id.Class, id.Machine = elf.ELFCLASS32, elf.EM_ARM
	case "riscv64":
		id.Machine = elf.EM_RISCV
	case "ppc64le":
		id.Machine = elf.EM_PPC64
	}
	return id
}
