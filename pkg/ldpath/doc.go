// Package ldpath answers the dynamic loader's questions relative to a root
// directory: which directories /etc/ld.so.conf (with its includes) names, what
// /etc/ld.so.cache maps each soname to, how LD_LIBRARY_PATH splits, and where
// the loader would find a given soname for a given ELF machine.
//
// Every path it is given or returns is interpreted inside the root, so the same
// code serves the real host (root "/") and fake host trees in tests. It only
// reads; it never writes under the root, and it never trusts a count read from
// a file without checking it against the file's size.
package ldpath
