// Package ldpath answers the dynamic loader's questions relative to a root
// directory: which directories /etc/ld.so.conf (with its includes) names, what
// /etc/ld.so.cache maps each soname to, how LD_LIBRARY_PATH splits, and where
// the loader would find a given soname for a given ELF machine.
//
// Every path it is given or returns is interpreted inside the root (symbolic
// links are followed as if the root were "/"), so the same code serves the
// real host (root "/") and fake host trees in tests; only HostPath's result
// and the path handed to a Searcher's Accept function are host paths. It only
// reads; it never writes under the root, and it never trusts a count or
// offset read from a file without checking it against the file's size.
//
// Its rules are glibc's (2.36, checked in the tests against the machine's
// ldconfig and loader), without RPATH/RUNPATH (per object), glibc-hwcaps
// subdirectory selection (per CPU) and the kernel-version check of cache
// entries.
package ldpath
