// Package entrycheck checks a built cache entry against the invariants of
// docs/DESIGN.md, the way every test of every mode that makes an entry
// (the wrapper's launch, system mode, the pre-build hook, the CDI spec, the
// 32-bit companion, Mesa) checks it: one conformance check, so an invariant
// is checked the same way everywhere.
//
// It reads the entry as it lies on disk (its manifest.json decoded here, not
// through pkg/hostdrivers' types, so that the producer's own code is not its
// judge) and the host files the manifest names; it writes nothing. It is
// for tests only: Entry returns the violations, Check reports them on a
// testing.TB.
package entrycheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
)

// Invariant names a rule of docs/DESIGN.md an entry must keep.
type Invariant string

// The invariants Entry checks.
const (
	// NoLibc: no member of the glibc family, and no libgcc_s, anywhere in
	// the entry (invariant 1).
	NoLibc Invariant = "no-libc"
	// VendorOnly: lib/ holds the manifest's driver files (and their GBM
	// and VDPAU backends) only, never a generic library a program links
	// (invariant 2).
	VendorOnly Invariant = "lib-vendor-only"
	// DepsHidden: the generic libraries are in deps/, each one a
	// dependency the manifest names, none of them in lib/ (invariant 2).
	DepsHidden Invariant = "deps-hidden"
	// SearchPath: a patched driver copy carries DT_RUNPATH
	// $ORIGIN:$ORIGIN/../deps in a wrapper entry and the same as DT_RPATH
	// (and no DT_RUNPATH) in a self-contained one; a backend copy
	// $ORIGIN/..:$ORIGIN/../../deps; a patched dependency $ORIGIN.
	SearchPath Invariant = "search-path"
	// VendorFilesResolve: every library a vendor file (EGL, Vulkan,
	// OpenCL) names is an ELF file of the entry's lib/, as its loader
	// would resolve the name.
	VendorFilesResolve Invariant = "vendor-files-resolve"
	// ManifestTrue: the manifest names the entry (its key), every file it
	// names is there, in the mode it records, and every host file it
	// names still has the recorded identity (invariant 6).
	ManifestTrue Invariant = "manifest-true"
	// LinksStayIn: a symbolic link leads to a sibling of its directory
	// (lib/ for its backends) or to the host file the manifest records
	// for that name; share/ and etc/ hold no link.
	LinksStayIn Invariant = "links-stay-in"
	// Layout: the entry holds lib/, deps/, share/, etc/ and manifest.json
	// and nothing else, each a real directory or file.
	Layout Invariant = "layout"
)

// Runpaths of the files an entry patches (docs/DESIGN.md, "Cache entry
// layout" and "Self-contained entries").
const (
	DriverRunpath  = "$ORIGIN:$ORIGIN/../deps"
	BackendRunpath = "$ORIGIN/..:$ORIGIN/../../deps"
	DepRunpath     = "$ORIGIN"
)

// Violation is one broken invariant: which, where (relative to the
// entry), and what was found.
type Violation struct {
	Invariant Invariant
	Path      string
	Msg       string
}

func (v Violation) String() string { return fmt.Sprintf("%s: %s: %s", v.Invariant, v.Path, v.Msg) }

// Error lists the violations of the entry at Entry.
type Error struct {
	Entry      string
	Violations []Violation
}

// Error returns all the violations, one a line.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cache entry %s breaks %d invariant(s):", e.Entry, len(e.Violations))
	for _, v := range e.Violations {
		b.WriteString("\n  " + v.String())
	}
	return b.String()
}

// Check fails t with every violation of the entry at dir.
func Check(t testing.TB, dir string) {
	t.Helper()
	if err := Entry(dir); err != nil {
		t.Error(err)
	}
}

// manifest is the part of an entry's manifest.json the checks read.
type manifest struct {
	Key    string `json:"key"`
	Root   string `json:"root"`
	Mode   string `json:"mode"`
	SeenAt string `json:"seen_at"`
	Files  []struct {
		Real  string   `json:"source"`
		Base  string   `json:"name"`
		Links []string `json:"links"`
		ID    fileID   `json:"id"`
		Mode  string   `json:"mode"`
	} `json:"files"`
	Deps []struct {
		Name string `json:"name"`
		Real string `json:"source"`
		ID   fileID `json:"id"`
		Mode string `json:"mode"`
	} `json:"deps"`
	Data []struct {
		Dest string `json:"dest"`
	} `json:"data"`
}

// fileID is a host file's recorded identity.
type fileID struct {
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
}

// The manifest's words for a file's mode and an entry's.
const (
	modeLink      = "link"
	modePatched   = "patched"
	modeShim      = "shim"
	entryWrapper  = "wrapper"
	entrySelfCont = "self-contained"
)

// checker accumulates the violations of one entry.
type checker struct {
	dir string
	m   manifest
	out []Violation
	// lib maps each name the manifest gives lib/ to the host file of its
	// driver file; deps the same for deps/.
	lib, deps map[string]string
	// libMode and depMode are the recorded modes of the files' own names.
	libMode, depMode map[string]string
}

func (c *checker) add(inv Invariant, rel, format string, args ...any) {
	c.out = append(c.out, Violation{inv, rel, fmt.Sprintf(format, args...)})
}

// Entry checks the cache entry at dir and returns nil, an *Error listing
// every violation, or the error that kept it from reading the manifest.
func Entry(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return fmt.Errorf("cache entry %s: %w", dir, err)
	}
	c := &checker{dir: dir, lib: map[string]string{}, deps: map[string]string{},
		libMode: map[string]string{}, depMode: map[string]string{}}
	if err := json.Unmarshal(b, &c.m); err != nil {
		return fmt.Errorf("cache entry %s: manifest: %w", dir, err)
	}
	c.index()
	c.layout()
	c.manifestTrue()
	c.libDir()
	c.depsDir()
	c.dataDirs()
	if len(c.out) == 0 {
		return nil
	}
	return &Error{dir, c.out}
}

// hostPath is the host file p (a path inside the manifest's root).
func (c *checker) hostPath(p string) string {
	if c.m.Root == "" || c.m.Root == "/" {
		return p
	}
	return filepath.Join(c.m.Root, p)
}

func (c *checker) selfContained() bool { return c.m.Mode == entrySelfCont }

func (c *checker) index() {
	for _, f := range c.m.Files {
		c.lib[f.Base] = c.hostPath(f.Real)
		c.libMode[f.Base] = f.Mode
		for _, l := range f.Links {
			c.lib[l] = c.hostPath(f.Real)
		}
	}
	for _, d := range c.m.Deps {
		base := path.Base(d.Real)
		c.deps[base] = c.hostPath(d.Real)
		c.deps[d.Name] = c.hostPath(d.Real)
		if _, ok := c.depMode[base]; !ok {
			c.depMode[base] = d.Mode
		}
	}
}

// layout checks the entry's top level and its mode.
func (c *checker) layout() {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		c.add(Layout, ".", "%v", err)
		return
	}
	for _, e := range ents {
		switch {
		case e.Name() == "manifest.json" && e.Type().IsRegular():
		case slices.Contains([]string{"lib", "deps", "share", "etc"}, e.Name()) && e.IsDir():
		default:
			c.add(Layout, e.Name(), "not part of an entry (%s)", e.Type())
		}
	}
	for _, d := range []string{"lib", "deps"} {
		if fi, err := os.Lstat(filepath.Join(c.dir, d)); err != nil || !fi.IsDir() {
			c.add(Layout, d, "missing")
		}
	}
	switch c.m.Mode {
	case entryWrapper:
		if c.m.SeenAt != "" {
			c.add(Layout, "manifest.json", "a wrapper entry seen at %s", c.m.SeenAt)
		}
	case entrySelfCont:
		if !path.IsAbs(c.m.SeenAt) {
			c.add(Layout, "manifest.json", "a self-contained entry with no absolute seen_at (%q)", c.m.SeenAt)
		}
	default:
		c.add(Layout, "manifest.json", "mode %q is neither %s nor %s", c.m.Mode, entryWrapper, entrySelfCont)
	}
}

// manifestTrue checks the key and the recorded host file identities.
func (c *checker) manifestTrue() {
	if c.m.Key != filepath.Base(c.dir) {
		c.add(ManifestTrue, "manifest.json", "key %q does not name the entry %s", c.m.Key, filepath.Base(c.dir))
	}
	check := func(rel, host string, want fileID) {
		fi, err := os.Stat(host)
		if err != nil {
			c.add(ManifestTrue, rel, "host file: %v", err)
			return
		}
		got := fileID{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			got.Dev, got.Ino = uint64(st.Dev), st.Ino
		}
		if got != want {
			c.add(ManifestTrue, rel, "host file %s is %+v, the manifest records %+v", host, got, want)
		}
	}
	for _, f := range c.m.Files {
		check(path.Join("lib", f.Base), c.hostPath(f.Real), f.ID)
		for _, n := range append([]string{f.Base}, f.Links...) {
			if _, err := os.Lstat(filepath.Join(c.dir, "lib", n)); err != nil {
				c.add(ManifestTrue, path.Join("lib", n), "named by the manifest, missing: %v", err)
			}
		}
	}
	for _, d := range c.m.Deps {
		check(path.Join("deps", d.Name), c.hostPath(d.Real), d.ID)
		for _, n := range []string{d.Name, path.Base(d.Real)} {
			if _, err := os.Lstat(filepath.Join(c.dir, "deps", n)); err != nil {
				c.add(ManifestTrue, path.Join("deps", n), "named by the manifest, missing: %v", err)
			}
		}
	}
	for _, d := range c.m.Data {
		if fi, err := os.Lstat(filepath.Join(c.dir, d.Dest)); err != nil || !fi.Mode().IsRegular() {
			c.add(ManifestTrue, d.Dest, "vendor file named by the manifest is not a regular file of the entry (%v)", err)
		}
	}
}

// dataDirs checks share/ and etc/: regular files the manifest lists, no
// links, each library they name resolvable in lib/.
func (c *checker) dataDirs() {
	listed := map[string]bool{}
	for _, d := range c.m.Data {
		listed[d.Dest] = true
	}
	for _, top := range []string{"share", "etc"} {
		root := filepath.Join(c.dir, top)
		if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(c.dir, p)
			switch {
			case err != nil:
				c.add(Layout, rel, "%v", err)
			case d.Type()&fs.ModeSymlink != 0:
				c.add(LinksStayIn, rel, "a link among the vendor files")
			case d.Type().IsRegular() && !listed[rel]:
				c.add(ManifestTrue, rel, "a vendor file the manifest does not list")
			case d.Type().IsRegular():
				c.vendorFile(rel)
			}
			return nil
		})
	}
}

// vendorFile checks that every library the vendor file rel names is an
// ELF file of lib/, resolved as its loader resolves it.
func (c *checker) vendorFile(rel string) {
	b, err := os.ReadFile(filepath.Join(c.dir, rel))
	if err != nil {
		c.add(VendorFilesResolve, rel, "%v", err)
		return
	}
	var refs []string
	if strings.HasSuffix(rel, ".json") {
		refs, err = libraryPaths(b)
		if err != nil {
			c.add(VendorFilesResolve, rel, "%v", err)
			return
		}
	} else {
		refs = []string{string(bytes.TrimSpace(b))}
	}
	if len(refs) == 0 {
		c.add(VendorFilesResolve, rel, "names no library")
	}
	for _, ref := range refs {
		var name string
		switch {
		case path.IsAbs(ref):
			n, ok := strings.CutPrefix(ref, path.Join(c.m.SeenAt, "lib")+"/")
			if c.m.SeenAt == "" || !ok {
				c.add(VendorFilesResolve, rel, "names %s, outside the entry's lib/ (seen at %q)", ref, c.m.SeenAt)
				continue
			}
			name = n
		case strings.Contains(ref, "/"):
			// The Vulkan loader resolves a relative path against the
			// JSON file's directory.
			r, err := filepath.Rel("lib", path.Join(path.Dir(rel), ref))
			if err != nil || strings.HasPrefix(r, "..") {
				c.add(VendorFilesResolve, rel, "names %s, outside the entry's lib/", ref)
				continue
			}
			name = r
		default:
			name = ref
		}
		if strings.Contains(name, "/") || c.lib[name] == "" {
			c.add(VendorFilesResolve, rel, "names %s, not a driver file of lib/", ref)
			continue
		}
		if _, err := elfscan.ReadIdent(filepath.Join(c.dir, "lib", name)); err != nil {
			c.add(VendorFilesResolve, rel, "names %s: %v", ref, err)
		}
	}
}

// libraryPaths returns the library_path values of an EGL, EGL platform or
// Vulkan manifest: of its ICD, its layer, or each of its layers.
func libraryPaths(b []byte) ([]string, error) {
	type lib struct {
		LibraryPath string `json:"library_path"`
	}
	var doc struct {
		ICD    *lib  `json:"ICD"`
		Layer  *lib  `json:"layer"`
		Layers []lib `json:"layers"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var out []string
	for _, l := range append([]lib{}, doc.Layers...) {
		out = append(out, l.LibraryPath)
	}
	for _, l := range []*lib{doc.ICD, doc.Layer} {
		if l != nil {
			out = append(out, l.LibraryPath)
		}
	}
	return out, nil
}

// stem returns a library name's part before ".so" ("libm" for libm.so.6
// and libm-2.31.so, "ld-linux-x86-64" for ld-linux-x86-64.so.2).
func stem(name string) string {
	s, _, _ := strings.Cut(path.Base(name), ".so")
	if i := strings.LastIndex(s, "-2."); i > 0 {
		s = s[:i] // glibc's old file names: libm-2.31.so
	}
	return s
}

// isLibc reports whether name is a library of the glibc family (its
// loader, libc and the libraries glibc ships beside it, every NSS module)
// or libgcc_s: what a Nix program brings and an entry never holds.
func isLibc(name string) bool {
	s := stem(name)
	switch {
	case s == "":
		return false
	case strings.HasPrefix(s, "ld-linux"), strings.HasPrefix(s, "libnss_"), s == "ld64", s == "ld":
		return true
	}
	return slices.Contains([]string{"libc", "libm", "libdl", "libpthread", "librt", "libresolv", "libutil",
		"libanl", "libnsl", "libBrokenLocale", "libmvec", "libc_malloc_debug", "libthread_db", "libmemusage",
		"libpcprofile", "libSegFault", "libcrypt", "libcidn", "libgcc_s"}, s)
}

// isGeneric reports whether name is a library a program links itself (a
// dispatch library or loader, or a generic library of a driver's), which
// in lib/ would shadow the program's own.
func isGeneric(name string) bool {
	s := stem(name)
	if slices.Contains([]string{"libGL", "libEGL", "libGLX", "libGLdispatch", "libOpenGL", "libGLESv1_CM",
		"libGLESv2", "libvulkan", "libOpenCL", "libgbm", "libglapi", "libva", "libvdpau", "libstdc++",
		"libz", "libexpat", "libxml2", "libz3", "libffi", "libelf", "libsensors"}, s) {
		return true
	}
	for _, p := range []string{"libdrm", "libva-", "libX", "libxcb", "libwayland-", "libLLVM", "libicu"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
