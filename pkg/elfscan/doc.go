// Package elfscan reads the parts of an ELF file that the dynamic loader cares
// about (class, byte order, machine, type, PT_INTERP, DT_SONAME, DT_NEEDED,
// DT_RUNPATH, DT_RPATH, symbol version needs and definitions) and writes copies
// of ELF files with a new DT_RUNPATH.
//
// It trusts nothing it reads: every count and offset taken from a file is
// checked against the file's size before it is used, allocations and walks
// are capped, and malformed input is reported as an error naming the file,
// never a panic. It reads only the headers, the dynamic segment and the
// string, symbol and version tables that segment names, never a whole file,
// and it never writes to the file it reads: a patched copy is written beside
// its destination and renamed into place.
package elfscan
