package elfscan

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/nixglhost/nixglhost/internal/rawfile"
)

// Ident is the cheap identity of an ELF file, taken from its ELF header
// alone (the first 64 bytes at most).
type Ident struct {
	Class   elf.Class   // ELFCLASS32 or ELFCLASS64
	Data    elf.Data    // ELFDATA2LSB or ELFDATA2MSB
	Machine elf.Machine // e_machine, e.g. EM_X86_64 or EM_AARCH64
	Type    elf.Type    // e_type, e.g. ET_DYN or ET_EXEC
}

// Compatible reports whether a program of identity i can load an object of
// identity o: the same class, byte order and machine.
func (i Ident) Compatible(o Ident) bool {
	return i.Class == o.Class && i.Data == o.Data && i.Machine == o.Machine
}

// ByteOrder returns the byte order named by i.Data, or nil when it names none.
func (i Ident) ByteOrder() binary.ByteOrder {
	switch i.Data {
	case elf.ELFDATA2LSB:
		return binary.LittleEndian
	case elf.ELFDATA2MSB:
		return binary.BigEndian
	}
	return nil
}

// FormatError reports a malformed ELF file: what is wrong (Msg), where
// (Off, the file offset, or -1 when it has none) and in which file (Path).
// The functions of this package return it as a *FormatError.
type FormatError struct {
	Path string
	Off  int64
	Msg  string
}

// Error returns the message, naming the file.
func (e *FormatError) Error() string {
	s := e.Msg
	if e.Off >= 0 {
		s = fmt.Sprintf("%s at offset %#x", e.Msg, e.Off)
	}
	if e.Path == "" {
		return "elf: " + s
	}
	return e.Path + ": elf: " + s
}

// identSize is the number of header bytes ReadIdent needs: e_ident,
// e_type and e_machine.
const identSize = 20

// ReadIdent reads the identity of the ELF file at path. It reads at most the
// ELF header.
func ReadIdent(path string) (Ident, error) {
	f, err := rawfile.Open(path, 0)
	if err != nil {
		return Ident{}, err
	}
	defer f.Close()
	id, err := readIdent(f, path)
	if err != nil {
		return Ident{}, err
	}
	return id, nil
}

// ReadIdentFrom reads the identity of the ELF file in r. It reads at most the
// ELF header.
func ReadIdentFrom(r io.ReaderAt) (Ident, error) {
	return readIdent(r, "")
}

func readIdent(r io.ReaderAt, name string) (Ident, error) {
	var b [identSize]byte
	n, err := r.ReadAt(b[:], 0)
	if n < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			if n >= 4 && string(b[:4]) != elf.ELFMAG {
				return Ident{}, &FormatError{name, 0, "bad magic number"}
			}
			return Ident{}, &FormatError{name, int64(n), "file too short for an ELF header"}
		}
		return Ident{}, ioError(name, "ELF header", 0, err)
	}
	return parseIdent(b[:], name)
}

// parseIdent decodes the first identSize bytes of an ELF header.
func parseIdent(b []byte, name string) (Ident, error) {
	if string(b[:4]) != elf.ELFMAG {
		return Ident{}, &FormatError{name, 0, "bad magic number"}
	}
	id := Ident{Class: elf.Class(b[elf.EI_CLASS]), Data: elf.Data(b[elf.EI_DATA])}
	switch id.Class {
	case elf.ELFCLASS32, elf.ELFCLASS64:
	default:
		return Ident{}, &FormatError{name, elf.EI_CLASS, fmt.Sprintf("unknown ELF class %d", b[elf.EI_CLASS])}
	}
	bo := id.ByteOrder()
	if bo == nil {
		return Ident{}, &FormatError{name, elf.EI_DATA, fmt.Sprintf("unknown ELF data encoding %d", b[elf.EI_DATA])}
	}
	if v := elf.Version(b[elf.EI_VERSION]); v != elf.EV_CURRENT {
		return Ident{}, &FormatError{name, elf.EI_VERSION, fmt.Sprintf("unknown ELF version %d", v)}
	}
	id.Type = elf.Type(bo.Uint16(b[16:]))
	id.Machine = elf.Machine(bo.Uint16(b[18:]))
	return id, nil
}

// ioError wraps an I/O error met while reading what at off.
func ioError(name, what string, off int64, err error) error {
	if err == nil {
		err = io.ErrUnexpectedEOF // a short read that did not say why
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FormatError{name, off, what + " extends past the end of the file"}
	}
	if name == "" {
		return fmt.Errorf("reading %s at offset %#x: %w", what, off, err)
	}
	return fmt.Errorf("%s: reading %s at offset %#x: %w", name, what, off, err)
}
