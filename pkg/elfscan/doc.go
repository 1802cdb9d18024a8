// Package elfscan reads the parts of an ELF file that the dynamic loader cares
// about (class, byte order, machine, type, PT_INTERP, DT_SONAME, DT_NEEDED,
// DT_RUNPATH, DT_RPATH, symbol version needs and definitions), the notes of a
// named note section, the symbols a file imports with their versions, and
// writes copies of ELF files with a new DT_RUNPATH. It is the only ELF reader
// in nixglhost (cmd/nixglhost's TestOneELFReader): debug/elf lends its
// constants and types only.
//
// It trusts nothing it reads: every count and offset taken from a file is
// checked against the file's size before it is used, allocations and walks
// are capped, and malformed input is reported as an error naming the file,
// never a panic. It reads only the headers, the dynamic segment, the
// string, symbol and version tables and the sections asked for, never a
// whole file, and it never writes to the file it reads: a patched copy is
// written beside its destination and renamed into place.
package elfscan
