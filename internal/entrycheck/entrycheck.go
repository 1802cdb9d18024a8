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

// libDir checks lib/ and its backend directories.
func (c *checker) libDir() {
	lib := filepath.Join(c.dir, "lib")
	ents, err := os.ReadDir(lib)
	if err != nil {
		return
	}
	for _, e := range ents {
		rel := path.Join("lib", e.Name())
		switch {
		case e.IsDir() && (e.Name() == "gbm" || e.Name() == "vdpau"):
			c.backends(e.Name())
			continue
		case e.IsDir():
			c.add(VendorOnly, rel, "a directory other than gbm/ and vdpau/")
			continue
		}
		if isLibc(e.Name()) {
			c.add(NoLibc, rel, "a glibc family library in lib/")
		}
		if _, ok := c.deps[e.Name()]; ok {
			c.add(DepsHidden, rel, "a dependency exposed in lib/")
		} else if isGeneric(e.Name()) {
			c.add(VendorOnly, rel, "a generic library a program links")
		}
		host, ok := c.lib[e.Name()]
		if _, dep := c.deps[e.Name()]; !ok && !dep {
			c.add(VendorOnly, rel, "not a driver file the manifest names")
		}
		c.file(rel, e.Type(), host, c.libMode[e.Name()], c.lib, c.driverPath)
	}
}

// file checks rel, a file of lib/ or deps/ of type typ: a symbolic link
// to a sibling named in names, or to host (the recorded host file, for a
// file's own name in mode link), or a regular file (mode patched) whose
// search path want accepts.
func (c *checker) file(rel string, typ fs.FileMode, host, mode string, names map[string]string, want func(rel string, in *elfscan.Info)) {
	p := filepath.Join(c.dir, rel)
	switch {
	case typ&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			c.add(LinksStayIn, rel, "%v", err)
			return
		}
		switch {
		case path.IsAbs(target):
			if target != host || mode != modeLink {
				c.add(LinksStayIn, rel, "a link to %s, which the manifest does not record for it (host file %q, mode %q)", target, host, mode)
			}
		case strings.Contains(target, "/"):
			c.add(LinksStayIn, rel, "a link to %s, outside its directory", target)
		case names[target] == "":
			c.add(LinksStayIn, rel, "a link to %s, which the manifest does not name", target)
		}
		if mode == modePatched {
			c.add(ManifestTrue, rel, "a link, the manifest records a patched copy")
		}
		c.notLibc(rel, p)
	case typ.IsRegular():
		if mode != modePatched && mode != modeShim {
			c.add(ManifestTrue, rel, "a regular file, the manifest records mode %q", mode)
		}
		in, err := elfscan.Read(p)
		if err != nil {
			c.add(SearchPath, rel, "%v", err)
			return
		}
		if isLibc(in.Soname) {
			c.add(NoLibc, rel, "soname %s is glibc's", in.Soname)
		}
		if mode == modeShim {
			c.shim(rel, in)
			return
		}
		want(rel, in)
	default:
		c.add(Layout, rel, "neither a link nor a regular file (%s)", typ)
	}
}

// notLibc checks that the file a link leads to is no glibc library.
func (c *checker) notLibc(rel, p string) {
	if real, err := filepath.EvalSymlinks(p); err == nil && isLibc(filepath.Base(real)) {
		c.add(NoLibc, rel, "leads to %s", real)
	}
}

// shim checks a shim in lib/ (Mesa's plug-ins): it loads the host file
// through deps/plugins/ under its own name, and serves it and what it
// loads with a DT_RPATH of the driver search path, no DT_RUNPATH.
func (c *checker) shim(rel string, in *elfscan.Info) {
	if !in.HasRpath || in.Rpath != DriverRunpath || in.HasRunpath {
		c.add(SearchPath, rel, "a shim with DT_RPATH %q (%t), DT_RUNPATH %q (%t); want DT_RPATH %s alone",
			in.Rpath, in.HasRpath, in.Runpath, in.HasRunpath, DriverRunpath)
	}
	want := "$ORIGIN/../deps/" + shimDir + "/" + path.Base(rel)
	if len(in.Needed) == 0 || in.Needed[0] != want {
		c.add(SearchPath, rel, "a shim whose first DT_NEEDED is %q, want %s", in.Needed, want)
	}
}

// mesaLoaders are the stems of Mesa's DRI loaders, whose copies carry
// their search path as a DT_RPATH in every entry (the chain that serves
// the DRI drivers they load; see docs/DESIGN.md, "Mesa").
var mesaLoaders = []string{"libEGL_mesa", "libGLX_mesa"}

// driverPath checks the search path of a driver file's patched copy.
func (c *checker) driverPath(rel string, in *elfscan.Info) {
	if c.selfContained() || slices.Contains(mesaLoaders, stem(path.Base(rel))) {
		if !in.HasRpath || in.Rpath != DriverRunpath || in.HasRunpath {
			c.add(SearchPath, rel, "a self-contained entry's copy with DT_RPATH %q (%t), DT_RUNPATH %q (%t); want DT_RPATH %s alone",
				in.Rpath, in.HasRpath, in.Runpath, in.HasRunpath, DriverRunpath)
		}
		return
	}
	if !in.HasRunpath || in.Runpath != DriverRunpath || in.HasRpath {
		c.add(SearchPath, rel, "a wrapper entry's copy with DT_RUNPATH %q (%t), DT_RPATH %q (%t); want DT_RUNPATH %s alone",
			in.Runpath, in.HasRunpath, in.Rpath, in.HasRpath, DriverRunpath)
	}
}

// runpathIs returns a check that the copy has DT_RUNPATH want and no DT_RPATH.
func (c *checker) runpathIs(want string) func(string, *elfscan.Info) {
	return func(rel string, in *elfscan.Info) {
		if !in.HasRunpath || in.Runpath != want || in.HasRpath {
			c.add(SearchPath, rel, "DT_RUNPATH %q (%t), DT_RPATH %q (%t); want DT_RUNPATH %s alone",
				in.Runpath, in.HasRunpath, in.Rpath, in.HasRpath, want)
		}
	}
}

// backends checks lib/<sub>: links to ../<driver file> or copies of one.
func (c *checker) backends(sub string) {
	ents, err := os.ReadDir(filepath.Join(c.dir, "lib", sub))
	if err != nil {
		c.add(Layout, path.Join("lib", sub), "%v", err)
		return
	}
	for _, e := range ents {
		rel := path.Join("lib", sub, e.Name())
		p := filepath.Join(c.dir, rel)
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if name, ok := strings.CutPrefix(target, "../"); err != nil || !ok || strings.Contains(name, "/") || c.lib[name] == "" {
				c.add(LinksStayIn, rel, "a backend link to %q, not to a driver file of lib/", target)
			}
			c.notLibc(rel, p)
		case e.Type().IsRegular():
			in, err := elfscan.Read(p)
			if err != nil {
				c.add(SearchPath, rel, "%v", err)
				continue
			}
			if c.lib[e.Name()] == "" && c.lib[in.Soname] == "" {
				c.add(VendorOnly, rel, "a backend copy of %q, not of a driver file", in.Soname)
			}
			c.runpathIs(BackendRunpath)(rel, in)
		default:
			c.add(VendorOnly, rel, "neither a backend link nor a backend copy (%s)", e.Type())
		}
	}
}

// depsDir checks deps/.
func (c *checker) depsDir() {
	ents, err := os.ReadDir(filepath.Join(c.dir, "deps"))
	if err != nil {
		return
	}
	for _, e := range ents {
		rel := path.Join("deps", e.Name())
		if isLibc(e.Name()) {
			c.add(NoLibc, rel, "a glibc family library in deps/")
		}
		if e.Name() == shimDir && e.IsDir() {
			c.plugins()
			continue
		}
		host, ok := c.deps[e.Name()]
		if !ok {
			c.add(DepsHidden, rel, "not a dependency the manifest names")
		}
		if e.IsDir() {
			c.add(Layout, rel, "a directory in deps/")
			continue
		}
		c.file(rel, e.Type(), host, c.depMode[e.Name()], c.deps, c.runpathIs(DepRunpath))
	}
	for _, d := range c.m.Deps {
		if isLibc(d.Name) {
			c.add(NoLibc, path.Join("deps", d.Name), "the manifest names a glibc family dependency")
		}
	}
}

// shimDir is deps/' directory of the host files the shims load.
const shimDir = "plugins"

// plugins checks deps/plugins/: each entry a link to the recorded host
// file of the shim of its name in lib/.
func (c *checker) plugins() {
	dir := path.Join("deps", shimDir)
	ents, err := os.ReadDir(filepath.Join(c.dir, dir))
	if err != nil {
		c.add(Layout, dir, "%v", err)
		return
	}
	for _, e := range ents {
		rel := path.Join(dir, e.Name())
		target, err := os.Readlink(filepath.Join(c.dir, rel))
		switch {
		case err != nil:
			c.add(LinksStayIn, rel, "not a link (%s)", e.Type())
		case c.libMode[e.Name()] != modeShim:
			c.add(DepsHidden, rel, "not the host file of a shim the manifest names")
		case target != c.lib[e.Name()]:
			c.add(LinksStayIn, rel, "a link to %s; the manifest records %s for the shim", target, c.lib[e.Name()])
		}
		c.notLibc(rel, filepath.Join(c.dir, rel))
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
