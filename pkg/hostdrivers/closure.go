package hostdrivers

import (
	"os"
	"path"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// Dep is a generic host library the driver needs, kept in the entry's
// hidden deps/ directory.
type Dep struct {
	// Name is the soname the driver asks for.
	Name string `json:"name"`
	// Real is the host file it resolves to, inside the root.
	Real string `json:"source"`
	// ID identifies the host file.
	ID FileID `json:"id"`
	// Mode is "link" or "patched" (a copy whose DT_RUNPATH is $ORIGIN,
	// because it needs another library of deps/).
	Mode Mode `json:"mode"`
	// For lists the files that load it (driver files or other deps).
	For []string `json:"for"`

	info *elfscan.Info
}

// Closure is the set of generic host libraries a selection loads.
type Closure struct {
	// Deps are the libraries found on the host, in discovery order.
	Deps []*Dep
	// Missing are names some driver file loads that the host lacks, with
	// the file that asks for them. Most are dlopened optionally (a
	// headless server has no libwayland-client); none is fatal.
	Missing []Skipped
}

// Hidden computes the closure of what the selected files load (DT_NEEDED
// and the catalogue's dlopen names), resolved with s on the host, minus the
// glibc family, the dispatch libraries the program brings, and the driver's
// own files. It then marks which driver files and deps need a patched copy.
//
// It is long because it is one breadth-first walk of the closure, as the
// loader does it; split, the queue and the results would have to be passed
// around.
func Hidden(root string, sel *Selection, s *ldpath.Searcher) *Closure {
	cl := &Closure{}
	exposed := map[string]bool{}
	for _, f := range sel.Files {
		exposed[f.Base] = true
		for _, l := range f.Links {
			exposed[l] = true
		}
	}
	byName := map[string]*Dep{}
	missing := map[string]bool{}
	type want struct{ name, by string }
	var queue []want
	for _, f := range sel.Files {
		for _, n := range loads(f.info, f.entry) {
			queue = append(queue, want{n, f.Base})
		}
	}
	for len(queue) > 0 {
		w := queue[0]
		queue = queue[1:]
		n := w.name
		if !linkName(n) || exposed[n] || ProgramProvides(n) || catalog.IsDispatch(n) {
			continue
		}
		if d := byName[n]; d != nil {
			d.For = appendOnce(d.For, w.by)
			continue
		}
		if _, ok := catalog.Classify(n); ok {
			// A driver file the chosen driver lacks (another version's,
			// or an optional component): never taken from elsewhere.
			if !missing[n] {
				missing[n] = true
				cl.Missing = append(cl.Missing, Skipped{n, "driver component not found (needed by " + w.by + ")", SkipNoComponent})
			}
			continue
		}
		p, err := s.Find(n)
		if err != nil {
			if !missing[n] {
				missing[n] = true
				cl.Missing = append(cl.Missing, Skipped{n, "not found on the host (loaded by " + w.by + ")", SkipNotOnHost})
			}
			continue
		}
		real, err := ldpath.Resolve(root, p)
		if err != nil {
			real = p
		}
		hp := ldpath.HostPath(root, real)
		fi, err := os.Stat(hp)
		if err != nil {
			cl.Missing = append(cl.Missing, Skipped{n, err.Error(), CodeOf(err)})
			missing[n] = true
			continue
		}
		info, err := elfscan.Read(hp)
		if err != nil {
			cl.Missing = append(cl.Missing, Skipped{n, err.Error(), CodeOf(err)})
			missing[n] = true
			continue
		}
		d := &Dep{Name: n, Real: real, ID: fileID(fi), Mode: ModeLink, For: []string{w.by}, info: info}
		byName[n] = d
		cl.Deps = append(cl.Deps, d)
		for _, m := range info.Needed {
			queue = append(queue, want{m, n})
		}
	}
	// A file needs a patched copy when something it loads lives in deps/.
	for _, f := range sel.Files {
		for _, n := range loads(f.info, f.entry) {
			if byName[n] != nil {
				f.Mode = ModePatched
				break
			}
		}
	}
	for _, d := range cl.Deps {
		for _, n := range d.info.Needed {
			if byName[n] != nil {
				d.Mode = ModePatched
				break
			}
		}
	}
	return cl
}

// loads returns what a driver file loads: its DT_NEEDED, then the names the
// catalogue says it dlopens.
func loads(info *elfscan.Info, e catalog.Entry) []string {
	var out []string
	if info != nil {
		out = append(out, info.Needed...)
	}
	return append(out, e.Dlopens...)
}

func appendOnce(s []string, x string) []string {
	for _, y := range s {
		if y == x {
			return s
		}
	}
	return append(s, x)
}

// ProgramProvides reports whether a library always comes from the program's
// own runtime, never from the host: the glibc family, and libgcc_s.so.1,
// which nixpkgs' glibc ships in its own lib/ (for pthread_cancel), so a Nix
// program's loader finds it by its default search. Counting it here keeps
// libnvidia-rtcore and libcudadebugger, which need it, symlinks to the host.
func ProgramProvides(name string) bool {
	return catalog.IsGlibcFamily(name) || name == "libgcc_s.so.1"
}

// completeFromHost adds to sel the driver libraries its files NEED
// (DT_NEEDED: not the optional dlopen names) that the -d directories lack,
// found on the host's search path as the host's loader would find them, of
// the program's architecture and of the chosen driver version. It returns
// what it added (Origin OriginHostSearch).
func completeFromHost(root string, sel *Selection, s *ldpath.Searcher, target elfscan.Ident) []*DriverFile {
	have := map[string]bool{}
	for _, f := range sel.Files {
		have[f.Base] = true
		for _, l := range f.Links {
			have[l] = true
		}
	}
	var added []*DriverFile
	queue := append([]*DriverFile(nil), sel.Files...)
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		if f.info == nil {
			continue
		}
		names := append([]string(nil), f.info.Needed...)
		if sel.Version != "" {
			for _, c := range f.entry.Components {
				names = append(names, c+".so."+sel.Version)
			}
		}
		for _, n := range names {
			ent, ok := catalog.Classify(n)
			if !ok || have[n] || ent.Kind == catalog.KindData || ProgramProvides(n) || catalog.IsDispatch(n) {
				continue
			}
			have[n] = true
			p, err := s.Find(n)
			if err != nil {
				continue
			}
			real, err := ldpath.Resolve(root, p)
			if err != nil {
				continue
			}
			hp := ldpath.HostPath(root, real)
			fi, err := os.Stat(hp)
			if err != nil {
				continue
			}
			info, err := elfscan.Read(hp)
			if err != nil || !info.Ident.Compatible(target) {
				continue
			}
			base := path.Base(real)
			if v := catalog.DriverVersion(base); sel.Version != "" && v != "" && v != sel.Version {
				continue
			}
			if base != n && have[base] {
				continue
			}
			have[base] = true
			var links []string
			for _, l := range []string{n, info.Soname, bareName(base)} {
				if l != "" && l != base && !have[l] && linkName(l) {
					have[l] = true
					links = append(links, l)
				}
			}
			df := &DriverFile{Real: real, Base: base, Links: links, API: ent.API, Version: catalog.DriverVersion(base),
				Origin: OriginHostSearch, ID: fileID(fi), Mode: ModeLink, entry: ent, info: info}
			sel.Files = append(sel.Files, df)
			added = append(added, df)
			queue = append(queue, df)
		}
	}
	return added
}
