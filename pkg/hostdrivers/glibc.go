package hostdrivers

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
)

// This file is what the launch path knows of glibc versions: the needs an
// entry records at build time and the cheap checks a launch makes against
// the program's own glibc (the doctor makes the thorough ones).

// SymbolVersion splits a symbol version name into its family prefix and dotted
// number ("GLIBC_2.34" -> "GLIBC_", "2.34"); ok is false for names that
// are not numbered (GLIBC_PRIVATE).
func SymbolVersion(v string) (family, num string, ok bool) {
	i := strings.LastIndexByte(v, '_')
	if i < 0 || i == len(v)-1 {
		return "", "", false
	}
	num = v[i+1:]
	for _, c := range num {
		if c != '.' && (c < '0' || c > '9') {
			return "", "", false
		}
	}
	return v[:i+1], num, true
}

// MaxVersion returns the highest version of family among vs ("" if none),
// as the dotted number.
func MaxVersion(vs []string, family string) string {
	best := ""
	for _, v := range vs {
		if f, n, ok := SymbolVersion(v); ok && f == family && (best == "" || CompareVersions(n, best) > 0) {
			best = n
		}
	}
	return best
}

// GlibcNeed is the highest GLIBC_ version one file of a cache entry needs
// from the glibc family, recorded in the manifest at build time so that
// the launch path can compare it with the program's glibc without reading
// the driver.
type GlibcNeed struct {
	// File is the driver file's name in lib/, or the dependency's soname.
	File string `json:"file"`
	// Version is the version name ("GLIBC_2.34").
	Version string `json:"version"`
}

// glibcNeeds computes the manifest's GlibcNeeds for the chosen files and
// their hidden dependencies.
func glibcNeeds(files []*DriverFile, deps []*Dep) []GlibcNeed {
	var out []GlibcNeed
	one := func(name string, info *elfscan.Info) {
		if info == nil {
			return
		}
		var all []string
		for _, vn := range info.VersionNeeds {
			if catalog.IsGlibcFamily(vn.File) {
				all = append(all, vn.Versions...)
			}
		}
		if m := MaxVersion(all, "GLIBC_"); m != "" {
			out = append(out, GlibcNeed{name, "GLIBC_" + m})
		}
	}
	for _, f := range files {
		one(f.Base, f.info)
	}
	for _, d := range deps {
		one(d.Name, d.info)
	}
	return out
}

// ModuleMismatch says whether the loaded NVIDIA kernel module (module)
// cannot serve the chosen userspace driver (driver): both known and
// different, with no usable cuda_compat libcuda chosen to bridge them. It
// is the one rule the launch's warning and the doctor's finding follow.
func ModuleMismatch(module, driver string, compatChosen bool) bool {
	return module != "" && driver != "" && module != driver && !compatChosen
}

// LaunchWarnings returns one line per blocking finding that the launch path
// can see cheaply, without reading any driver file: the kernel module
// against the entry's driver version, LD_PRELOAD entries naming a glibc
// library, and (for entries whose manifest records GlibcNeeds) the entry's
// GLIBC_ needs against the version definitions of the libc.so.6 beside the
// program's interpreter interp ("" for none). LD_LIBRARY_PATH hazards are
// GlibcHazards'. A nil manifest gives nil.
func LaunchWarnings(m *Manifest, interp string, environ []string) []string {
	if m == nil {
		return nil
	}
	var out []string
	if ModuleMismatch(m.ModuleVersion, m.DriverVersion, m.Compat != "") {
		out = append(out, fmt.Sprintf("kernel module %s is loaded but the userspace driver is %s: expect \"Driver/library version mismatch\" (run nixglhost --doctor)", m.ModuleVersion, m.DriverVersion))
	}
	libcDir := ""
	if interp != "" {
		if real, err := filepath.EvalSymlinks(interp); err == nil {
			libcDir = filepath.Dir(real)
		}
	}
	pre, _ := LookupEnv(environ, "LD_PRELOAD")
	for _, p := range strings.FieldsFunc(pre, func(c rune) bool { return c == ':' || c == ' ' || c == '\t' }) {
		if catalog.IsGlibcFamily(path.Base(p)) && filepath.Dir(p) != libcDir {
			out = append(out, "LD_PRELOAD names "+p+", a glibc library: the program may load the host's glibc and fail")
		}
	}
	if libcDir != "" && len(m.GlibcNeeds) > 0 {
		if info, err := elfscan.Read(filepath.Join(libcDir, "libc.so.6")); err == nil {
			have := MaxVersion(info.VersionDefs, "GLIBC_")
			var worst *GlibcNeed
			n := 0
			for i, g := range m.GlibcNeeds {
				_, num, ok := SymbolVersion(g.Version)
				if !ok || have == "" || CompareVersions(num, have) <= 0 {
					continue
				}
				n++
				if _, w, _ := SymbolVersion(m.GlibcNeeds[i].Version); worst == nil || CompareVersions(w, strings.TrimPrefix(worst.Version, "GLIBC_")) > 0 {
					worst = &m.GlibcNeeds[i]
				}
			}
			if worst != nil {
				more := ""
				if n > 1 {
					more = fmt.Sprintf(" (and %d more files)", n-1)
				}
				out = append(out, fmt.Sprintf("%s needs %s but the program's glibc is %s%s: expect \"version `%s' not found\" (run nixglhost --doctor)", worst.File, worst.Version, have, more, worst.Version))
			}
		}
	}
	return out
}

// LookupEnv returns the value of k in env (as os.Environ), the last one when
// it is there twice, as the C library's getenv does.
func LookupEnv(env []string, k string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], k+"="); ok {
			return v, true
		}
	}
	return "", false
}
