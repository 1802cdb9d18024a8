package doctor

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/ianlancetaylor/demangle"
	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// checkProgram describes PROGRAM (r.Program) as the loader will see it:
// its architecture against the driver's, its interpreter, and the glibc
// and libstdc++ versions the driver needs against its own.
func checkProgram(f *facts, r *Report) {
	do, prog, sel, cl := f.do, f.prog, f.pl.Selection, f.pl.Closure
	if do.ProgramPath == "" {
		return
	}
	pr := &ProgramReport{Path: do.ProgramPath, ELF: do.Program, GlibcTooNew: []VersionProblem{}, CXXTooNew: []VersionProblem{}}
	r.Program = pr
	if prog == nil {
		return
	}
	pr.Class, pr.Machine, pr.Interp = prog.Class.String(), prog.Machine.String(), prog.Interp
	switch {
	case prog.Interp == "":
		pr.InterpKind = "static"
	case f.nixProg:
		pr.InterpKind = "nix-store"
	default:
		pr.InterpKind = "fhs"
		pr.NixLD = do.NixLD
	}
	if f.driverID != nil && !prog.Ident.Compatible(*f.driverID) && len(sel.Files) > 0 {
		r.add(SeverityBlocking, TopicArchitecture,
			fmt.Sprintf("the program is %s %s but the driver is %s %s", prog.Class, prog.Machine, f.driverID.Class, f.driverID.Machine),
			"point -d at the driver's libraries for the program's architecture")
	}
	if prog.Interp != "" && !pr.NixLD {
		if _, err := filepath.EvalSymlinks(prog.Interp); err != nil {
			if pr.InterpKind == "fhs" {
				r.add(SeverityBlocking, TopicInterpreter, fmt.Sprintf("the program's interpreter %s does not exist: an FHS binary cannot start here", prog.Interp),
					"on NixOS enable nix-ld (programs.nix-ld.enable = true), or run a Nix build of the program")
			} else {
				r.add(SeverityBlocking, TopicInterpreter, fmt.Sprintf("the program's interpreter %s does not exist (store path missing or garbage-collected?)", prog.Interp),
					"rebuild or re-fetch the program")
			}
		}
	}
	if f.libcDir != "" {
		checkGlibc(r, pr, f.root, f.libcDir, sel, cl)
		checkCXX(r, pr, f.root, f.libcDir, prog, sel, cl)
	}
	checkMesaLoaders(prog, cl, r.add)
}

// needer is a file whose version needs are checked.
type needer struct {
	real string
	dep  bool
	info *elfscan.Info
}

func needers(sel *hostdrivers.Selection, cl *hostdrivers.Closure) []needer {
	var out []needer
	for _, f := range sel.Files {
		if f.ELF() != nil {
			out = append(out, needer{f.Real, false, f.ELF()})
		}
	}
	for _, d := range cl.Deps {
		if d.ELF() != nil {
			out = append(out, needer{d.Real, true, d.ELF()})
		}
	}
	return out
}

// defsCache reads the version definitions of libraries in one directory.
type defsCache struct {
	dir  string
	defs map[string][]string
}

func (c *defsCache) get(name string) ([]string, bool) {
	if d, ok := c.defs[name]; ok {
		return d, d != nil
	}
	info, err := elfscan.Read(filepath.Join(c.dir, name))
	if err != nil {
		c.defs[name] = nil
		return nil, false
	}
	c.defs[name] = info.VersionDefs
	return info.VersionDefs, true
}

// checkGlibc compares the GLIBC_ versions the driver files and hidden
// dependencies need with those the program's glibc (in libcDir) defines.
func checkGlibc(r *Report, pr *ProgramReport, root, libcDir string, sel *hostdrivers.Selection, cl *hostdrivers.Closure) {
	dc := &defsCache{dir: libcDir, defs: map[string][]string{}}
	libcDefs, ok := dc.get("libc.so.6")
	if !ok {
		return
	}
	pr.Libc = filepath.Join(libcDir, "libc.so.6")
	pr.Glibc = hostdrivers.MaxVersion(libcDefs, "GLIBC_")
	for _, n := range needers(sel, cl) {
		var worst *VersionProblem
		for _, vn := range n.info.VersionNeeds {
			if !catalog.IsGlibcFamily(vn.File) {
				continue
			}
			defs, ok := dc.get(vn.File)
			if !ok {
				defs = libcDefs
			}
			for _, v := range vn.Versions {
				f, num, ok := hostdrivers.SymbolVersion(v)
				if !ok || f != "GLIBC_" {
					continue
				}
				if pr.DriverGlibc == "" || hostdrivers.CompareVersions(num, pr.DriverGlibc) > 0 {
					pr.DriverGlibc, pr.DriverGlibcBy = num, n.real
				}
				if slices.Contains(defs, v) {
					continue
				}
				if worst == nil || hostdrivers.CompareVersions(num, strings.TrimPrefix(worst.Version, "GLIBC_")) > 0 {
					worst = &VersionProblem{File: n.real, Dependency: n.dep, Library: vn.File, Version: v}
				}
			}
		}
		if worst != nil {
			worst.Symbols = symbolsAt(ldpath.HostPath(root, n.real), worst.Library, worst.Version, 3)
			pr.GlibcTooNew = append(pr.GlibcTooNew, *worst)
		}
	}
	sortProblems(pr.GlibcTooNew)
	if len(pr.GlibcTooNew) > 0 {
		r.Findings = append(r.Findings, Finding{
			Severity: SeverityBlocking, Topic: TopicGlibc,
			Message: fmt.Sprintf("%s but the program's glibc is %s (%s): the loader will stop with \"version `%s' not found\"",
				describeProblems(pr.GlibcTooNew), orUnknown(pr.Glibc), pr.Libc, pr.GlibcTooNew[0].Version),
			Fix: fmt.Sprintf("run a build of the program with glibc %s or newer (a newer nixpkgs)", strings.TrimPrefix(highest(pr.GlibcTooNew), "GLIBC_")),
		})
	}
}

// mesaPrivate are the Mesa libraries a program may link itself (nixpkgs'
// Mesa) that the host's Mesa drivers also load: an already loaded soname
// is reused, so the host's drivers get the program's copy, of another
// Mesa build, while the interface between them is internal to one build.
var mesaPrivate = []string{"libgbm.so.1", "libglapi.so.0"}

// checkMesaLoaders warns when the program links its own copy of a Mesa
// library the entry's Mesa drivers take from the host (see mesaPrivate).
func checkMesaLoaders(prog *elfscan.Info, cl *hostdrivers.Closure, add func(sev Severity, topic Topic, msg, fix string)) {
	for _, n := range mesaPrivate {
		if !slices.Contains(prog.Needed, n) {
			continue
		}
		for _, d := range cl.Deps {
			if d.Name != n {
				continue
			}
			add(SeverityWarning, TopicMesa,
				fmt.Sprintf("the program links its own %s and the host's Mesa drivers need the host's (%s, for %s): the loader hands them the program's, of another Mesa build, and Mesa's interface between the two is internal: EGL on GBM (KMS) may fail", n, d.Real, strings.Join(d.For, ", ")),
				"render through the program's own Mesa (nixpkgs' mesa.drivers) instead of the host's, or leave Mesa out (no --mesa, where the host has an NVIDIA driver)")
		}
	}
}

// checkCXX compares the GLIBCXX_ and CXXABI_ versions the driver files and
// hidden dependencies need with the libstdc++ the program loads itself (an
// already loaded soname is reused, so theirs is what they get).
func checkCXX(r *Report, pr *ProgramReport, root, libcDir string, prog *elfscan.Info, sel *hostdrivers.Selection, cl *hostdrivers.Closure) {
	const soname = "libstdc++.so.6"
	if !slices.Contains(prog.Needed, soname) {
		return
	}
	var dirs []string
	rp := prog.Runpath
	if !prog.HasRunpath {
		rp = prog.Rpath
	}
	origin := filepath.Dir(pr.ELF)
	for _, d := range strings.Split(rp, ":") {
		d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", origin), "$ORIGIN", origin)
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	dirs = append(dirs, libcDir)
	var defs []string
	for _, d := range dirs {
		if info, err := elfscan.Read(filepath.Join(d, soname)); err == nil {
			pr.Libstdcxx, defs = filepath.Join(d, soname), info.VersionDefs
			break
		}
	}
	if pr.Libstdcxx == "" {
		return
	}
	pr.Glibcxx = hostdrivers.MaxVersion(defs, "GLIBCXX_")
	for _, n := range needers(sel, cl) {
		if path.Base(n.real) == soname || n.info.Soname == soname {
			continue
		}
		var worst *VersionProblem
		for _, vn := range n.info.VersionNeeds {
			if vn.File != soname {
				continue
			}
			for _, v := range vn.Versions {
				f, num, ok := hostdrivers.SymbolVersion(v)
				if !ok || f != "GLIBCXX_" && f != "CXXABI_" || slices.Contains(defs, v) {
					continue
				}
				if worst == nil || cxxAbove(f, num, worst.Version) {
					worst = &VersionProblem{File: n.real, Dependency: n.dep, Library: soname, Version: v}
				}
			}
		}
		if worst != nil {
			worst.Symbols = symbolsAt(ldpath.HostPath(root, n.real), soname, worst.Version, 3)
			pr.CXXTooNew = append(pr.CXXTooNew, *worst)
		}
	}
	sortProblems(pr.CXXTooNew)
	if len(pr.CXXTooNew) > 0 {
		r.Findings = append(r.Findings, Finding{
			Severity: SeverityBlocking, Topic: TopicLibstdcxx,
			Message: fmt.Sprintf("%s but the program's libstdc++ (%s) stops at GLIBCXX_%s: the loader will stop with \"version `%s' not found\"",
				describeProblems(pr.CXXTooNew), pr.Libstdcxx, orUnknown(pr.Glibcxx), pr.CXXTooNew[0].Version),
			Fix: "run a build of the program with a newer gcc's libstdc++ (a newer nixpkgs)",
		})
	}
}

// cxxAbove reports whether version family+num is worth naming before
// other: GLIBCXX_ ones before CXXABI_ ones, then the higher.
func cxxAbove(family, num, other string) bool {
	of, on, _ := hostdrivers.SymbolVersion(other)
	if family != of {
		return family == "GLIBCXX_"
	}
	return hostdrivers.CompareVersions(num, on) > 0
}

// sortProblems puts driver files before hidden dependencies, then the
// highest version first, keeping discovery order among equals.
func sortProblems(ps []VersionProblem) {
	slices.SortStableFunc(ps, func(a, b VersionProblem) int {
		if a.Dependency != b.Dependency {
			if a.Dependency {
				return 1
			}
			return -1
		}
		fa, na, _ := hostdrivers.SymbolVersion(a.Version)
		fb, nb, _ := hostdrivers.SymbolVersion(b.Version)
		if fa != fb {
			return strings.Compare(fb, fa)
		}
		return hostdrivers.CompareVersions(nb, na)
	})
}

// highest returns the highest Version among ps.
func highest(ps []VersionProblem) string {
	best := ps[0].Version
	for _, p := range ps[1:] {
		_, a, _ := hostdrivers.SymbolVersion(p.Version)
		_, b, _ := hostdrivers.SymbolVersion(best)
		if hostdrivers.CompareVersions(a, b) > 0 {
			best = p.Version
		}
	}
	return best
}

// describeProblems names the first problem (file, version, symbols) and
// counts the others.
func describeProblems(ps []VersionProblem) string {
	p := ps[0]
	what := path.Base(p.File)
	if p.Dependency {
		what += " (a host library the driver loads, " + p.File + ")"
	}
	s := fmt.Sprintf("%s needs %s from %s", what, p.Version, p.Library)
	if len(p.Symbols) > 0 {
		s += " (for " + strings.Join(p.Symbols, ", ") + ")"
	}
	if len(ps) > 1 {
		var others []string
		for i, q := range ps[1:] {
			if i == 3 {
				others = append(others, "...")
				break
			}
			others = append(others, path.Base(q.File))
		}
		s += fmt.Sprintf(", and %s (%s),", plural(len(ps)-1, "more file"), strings.Join(others, ", "))
	}
	return s
}

// symbolsAt returns up to max names (demangled) of the symbols the ELF
// file at hp imports from library with version version.
func symbolsAt(hp, library, version string, max int) []string {
	syms, err := elfscan.ReadImportedSymbols(hp)
	if err != nil {
		return []string{}
	}
	out := []string{}
	for _, s := range syms {
		if s.Version != version || s.Library != "" && s.Library != library {
			continue
		}
		n := demangle.Filter(s.Name)
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
		if len(out) == max {
			break
		}
	}
	return out
}
