package hostdrivers

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// markSelfContained chooses the driver files of a self-contained entry that
// must be patched copies (see docs/DESIGN.md, "Self-contained entries").
// Nothing sets LD_LIBRARY_PATH there, so whatever a file loads (DT_NEEDED,
// or dlopen by name) is found through a search path: the copies carry a
// DT_RPATH ($ORIGIN and deps/), which glibc also searches for the
// libraries that a copy's DT_NEEDED libraries load in turn. So a file needs
// a copy only when it loads something and can be loaded other than through
// some other driver file's DT_NEEDED: an entry point (libcuda, the glvnd
// vendor libraries, the ICDs...) or a library another one dlopens (a
// dlopen starts a new chain). The driver's internal libraries that only
// arrive through DT_NEEDED (libnvidia-glcore, -glsi, -tls) and the leaves
// that load nothing (libnvidia-nvvm, -ptxjitcompiler, -glvkspirv) stay
// symlinks to the host.
//
// What a file dlopens is its catalogue entry's Dlopens and Components plus
// every other driver library of the selection whose name it mentions
// ("libnvidia-ptxjitcompiler.so.1" in libcuda): reading the files costs a
// cold build about as much as reading the driver once, and a name the
// catalogue does not know yet (a newer driver's) still makes a copy.
//
// It is long because it is one fixed point over the closure (which copies a
// self-contained entry needs), whose rules only make sense together.
func markSelfContained(root string, sel *Selection, cl *Closure, log *slog.Logger) error {
	var libs []*DriverFile
	byFileName := map[string]*DriverFile{}
	byFamily := map[string][]*DriverFile{}
	for _, f := range sel.Files {
		if f.info == nil {
			continue
		}
		libs = append(libs, f)
		byFileName[f.Base] = f
		for _, l := range f.Links {
			byFileName[l] = f
		}
		byFamily[f.entry.Name] = append(byFamily[f.entry.Name], f)
	}
	deps := map[string]bool{}
	for _, d := range cl.Deps {
		deps[d.Name] = true
	}
	families := make([]string, 0, len(byFamily))
	for n := range byFamily {
		families = append(families, n)
	}
	sort.Strings(families)

	type node struct {
		loads    []string      // what it loads that the entry holds, for the log
		needs    []*DriverFile // the driver files its DT_NEEDED names
		neededBy bool          // another driver file's DT_NEEDED names it
		dlopened []string      // the driver files that dlopen it
	}
	nodes := map[*DriverFile]*node{}
	for _, f := range libs {
		nodes[f] = &node{}
	}
	for _, f := range libs {
		n := nodes[f]
		for _, name := range f.info.Needed {
			if g := byFileName[name]; g != nil && g != f {
				nodes[g].neededBy = true
				n.needs = append(n.needs, g)
				n.loads = append(n.loads, name)
			} else if deps[name] {
				n.loads = append(n.loads, name)
			}
		}
		for _, name := range f.entry.Dlopens {
			if deps[name] {
				n.loads = append(n.loads, name)
			}
		}
		opened := append([]string(nil), f.entry.Components...)
		others := make([]string, 0, len(families))
		for _, fam := range families {
			if fam != f.entry.Name {
				others = append(others, fam)
			}
		}
		m, err := mentionsIn(ldpath.HostPath(root, f.Real), others)
		if err != nil {
			return err
		}
		opened = append(opened, m...)
		for _, fam := range opened {
			for _, g := range byFamily[fam] {
				// What f's DT_NEEDED already loaded, a dlopen by f finds
				// loaded: no new chain.
				if g == f || slices.Contains(n.needs, g) {
					continue
				}
				nodes[g].dlopened = appendOnce(nodes[g].dlopened, f.Base)
				n.loads = appendOnce(n.loads, g.Base)
			}
		}
	}
	for _, f := range libs {
		n := nodes[f]
		internal := f.entry.API == catalog.APICore || f.entry.API == catalog.APITegra
		inherits := internal && n.neededBy && len(n.dlopened) == 0
		switch {
		case len(n.loads) == 0:
			f.Mode = ModeLink
			log.Debug("self-contained: a leaf, linked", "name", f.Base)
		case inherits:
			f.Mode = ModeLink
			log.Debug("self-contained: loaded only through DT_NEEDED, linked", "name", f.Base, "loads", n.loads)
		default:
			f.Mode = ModePatched
			log.Debug("self-contained: a patched copy", "name", f.Base, "loads", n.loads, "dlopened by", n.dlopened, "entry point", !internal)
		}
	}
	return nil
}

// mentionChunk is how much of a file mentionsIn reads at a time.
const mentionChunk = 1 << 20

// mentionsIn returns, sorted, the names among names that the file at path
// mentions as a library: followed by ".so".
func mentionsIn(path string, names []string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	found, err := mentions(f, names, mentionChunk)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return found, nil
}

// mentions is mentionsIn on what r holds, read chunk bytes at a time: it
// finds each ".so" and looks for a name ending just before it, so one pass
// serves every name.
func mentions(r io.Reader, names []string, chunk int) ([]string, error) {
	want := map[string]bool{}
	var lens []int
	maxLen := 0
	for _, n := range names {
		if n == "" || want[n] {
			continue
		}
		want[n] = true
		if !slices.Contains(lens, len(n)) {
			lens = append(lens, len(n))
		}
		maxLen = max(maxLen, len(n))
	}
	if len(want) == 0 {
		return nil, nil
	}
	const suffix = ".so"
	seen := map[string]bool{}
	// buf holds the last bytes of the previous chunk (see keep), then the
	// chunk: a name that straddles two reads is still whole in it.
	buf := make([]byte, 0, maxLen+len(suffix)+chunk)
	carry := 0
	for {
		buf = buf[:carry+chunk]
		n, err := io.ReadFull(r, buf[carry:])
		buf = buf[:carry+n]
		// Look for ".so" starting at or after carry-len(".so")+1, so that
		// one straddling the boundary is found once, in this round.
		from := max(0, carry-len(suffix)+1)
		for i := from; ; {
			j := bytes.Index(buf[i:], []byte(suffix))
			if j < 0 {
				break
			}
			at := i + j
			for _, l := range lens {
				if at >= l {
					if s := buf[at-l : at]; want[string(s)] {
						seen[string(s)] = true
					}
				}
			}
			i = at + 1
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		// Keep what a name ending before a ".so" of the next round may
		// start in: maxLen bytes, plus the suffix's first bytes.
		keep := min(len(buf), maxLen+len(suffix)-1)
		copy(buf, buf[len(buf)-keep:])
		carry = keep
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// copyRpath reports whether a patched copy of f carries its search path as
// a DT_RPATH, which glibc also searches for what the libraries its
// DT_NEEDED loads load in turn: every copy of a self-contained entry
// (see markSelfContained) and Mesa's copies in any entry (see markChained).
func copyRpath(selfContained bool, f *DriverFile) bool {
	return f.Mode == ModePatched && (selfContained || f.entry.Mesa)
}

// markChained keeps out of the entry's copies what glibc's DT_RPATH chain
// finds anyway (see docs/DESIGN.md, "Mesa"). It runs once the closure and
// the driver files' modes are known, and:
//
//   - turns each Mesa plug-in that would be a patched copy (the DRI and
//     VA-API drivers, the Vulkan ICDs and layer, the VDPAU drivers: all
//     loaded by path, none edited) into a shim (elfscan.WriteShim): a few
//     hundred bytes in lib/ whose DT_NEEDED loads the host file and whose
//     DT_RPATH serves it and everything under it. Mesa's DRI loaders
//     (libEGL_mesa, libGLX_mesa) stay copies, since their bytes change,
//     with a DT_RPATH (copyRpath);
//   - links a hidden dependency, instead of copying it, when everything
//     that can load it does so through a DT_NEEDED chain that starts at a
//     DT_RPATH of Mesa's (a shim or a copy of copyRpath), nothing the
//     catalogue knows dlopens it (Dlopens, Optional), and it has no
//     DT_RUNPATH of its own (which would stop the chain for what it
//     loads). NVIDIA's libraries dlopen names of their own choosing (580's
//     glcore: libwayland-client), and a library dlopened starts no chain:
//     what their copies reach keeps its copy. One with a DT_RUNPATH (Debian's libLLVM: $ORIGIN/../lib) is
//     linked too when only shims reach it: they name what it loads after
//     the host file (Preload), so that it is loaded, breadth first, before
//     it is asked for. libgbm keeps its copy (its DRI path is rewritten).
//
// What the chain cannot prove stays a copy, as before: a dependency that a
// DT_RUNPATH copy, a symlinked driver library or an NVIDIA library reaches,
// or one the catalogue says is dlopened.
//
// It is long because it applies, in one pass, the rules DESIGN's "Mesa"
// section lists in that order (shims, preloads, links); split, the rules
// would be read apart from the order that makes them sound.
func markChained(sel *Selection, cl *Closure, selfContained bool, log *slog.Logger) {
	driDir := mesaDRIDir(sel)
	byName := map[string]*Dep{}
	for _, d := range cl.Deps {
		byName[d.Name] = d
	}
	inEntry := map[string]bool{}
	for _, f := range sel.Files {
		inEntry[f.Base] = true
		for _, l := range f.Links {
			inEntry[l] = true
		}
	}
	for _, f := range sel.Files {
		if f.entry.Mesa && !f.entry.DRILoader && f.Mode == ModePatched && f.info != nil && f.info.Machine != elf.EM_MIPS {
			f.Mode = ModeShim
		}
	}
	// A node is a driver file or a dependency; its loaders are the nodes
	// whose DT_NEEDED names it.
	type node struct {
		root     bool // a shim, or a copy with a DT_RPATH
		dlopened bool
		loaders  []*node
		covered  bool
		reach    map[*DriverFile]bool // the shims that reach it
		nonShim  bool                 // a root that is not a shim reaches it
		nonMesa  bool                 // a root that is not Mesa's reaches it
	}
	fileNode := map[*DriverFile]*node{}
	depNode := map[*Dep]*node{}
	for _, f := range sel.Files {
		fileNode[f] = &node{root: f.Mode == ModeShim || copyRpath(selfContained, f)}
	}
	for _, d := range cl.Deps {
		depNode[d] = &node{covered: true}
	}
	for _, f := range sel.Files {
		if f.info == nil {
			continue
		}
		for _, name := range f.info.Needed {
			if d := byName[name]; d != nil {
				depNode[d].loaders = append(depNode[d].loaders, fileNode[f])
			}
		}
		for _, names := range [][]string{f.entry.Dlopens, f.entry.Optional} {
			for _, name := range names {
				if d := byName[name]; d != nil {
					depNode[d].dlopened = true
				}
			}
		}
	}
	for _, d := range cl.Deps {
		for _, name := range d.info.Needed {
			if e := byName[name]; e != nil && e != d {
				depNode[e].loaders = append(depNode[e].loaders, depNode[d])
			}
		}
	}
	// Covered: loaded only through DT_NEEDED from roots or covered
	// dependencies (the largest such set).
	for changed := true; changed; {
		changed = false
		for _, d := range cl.Deps {
			n := depNode[d]
			if !n.covered {
				continue
			}
			ok := !n.dlopened && len(n.loaders) > 0
			for _, l := range n.loaders {
				ok = ok && (l.root || l.covered)
			}
			if !ok {
				n.covered, changed = false, true
			}
		}
	}
	// Which roots reach each dependency through DT_NEEDED.
	for _, f := range sel.Files {
		if !fileNode[f].root || f.info == nil {
			continue
		}
		queue := append([]string(nil), f.info.Needed...)
		seen := map[*Dep]bool{}
		for len(queue) > 0 {
			d := byName[queue[0]]
			queue = queue[1:]
			if d == nil || seen[d] {
				continue
			}
			seen[d] = true
			n := depNode[d]
			n.nonMesa = n.nonMesa || !f.entry.Mesa
			if f.Mode == ModeShim {
				if n.reach == nil {
					n.reach = map[*DriverFile]bool{}
				}
				n.reach[f] = true
			} else {
				n.nonShim = true
			}
			queue = append(queue, d.info.Needed...)
		}
	}
	preload := func(s *DriverFile, names []string) {
		for _, name := range names {
			if byName[name] != nil || inEntry[name] {
				s.Preload = appendOnce(s.Preload, name)
			}
		}
	}
	// A shim's host file with a DT_RUNPATH of its own: its loads are
	// preloaded.
	for _, f := range sel.Files {
		if f.Mode == ModeShim && f.info.HasRunpath {
			preload(f, f.info.Needed)
		}
	}
	for _, d := range cl.Deps {
		n := depNode[d]
		if d.Mode != ModePatched || !n.covered || n.nonMesa || driDir != "" && strings.HasPrefix(d.Name, "libgbm.so") {
			continue
		}
		if d.info.HasRunpath {
			if n.nonShim || len(n.reach) == 0 {
				continue
			}
			for _, f := range sel.Files {
				if !n.reach[f] {
					continue
				}
				// What the host file itself needs is loaded (breadth
				// first) before anything it needs asks for its own.
				var names []string
				for _, name := range d.info.Needed {
					if f.info.HasRunpath || !slices.Contains(f.info.Needed, name) {
						names = append(names, name)
					}
				}
				preload(f, names)
			}
		}
		d.Mode = ModeLink
		log.Debug("hidden dependency found through a DT_RPATH chain, linked", "name", d.Name, "runpath", d.info.HasRunpath)
	}
	for _, f := range sel.Files {
		if f.Mode == ModeShim {
			log.Debug("a shim loads the host file", "name", f.Base, "preload", f.Preload)
		}
	}
}
