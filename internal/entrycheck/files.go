package entrycheck

// This file checks lib/ and deps/ file by file: links, copies, shims and
// their search paths.

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
)

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
