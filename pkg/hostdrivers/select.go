package hostdrivers

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// DriverFile is one real driver file chosen for the entry.
type DriverFile struct {
	// Real is the host file, inside the root.
	Real string `json:"source"`
	// Base is the name the file gets in the entry (the real file's name).
	Base string `json:"name"`
	// Links are the other names it is known by (soname, development link),
	// recreated as symlinks beside it.
	Links []string `json:"links,omitempty"`
	// API is the catalogue API of the file.
	API catalog.API `json:"api"`
	// Version is the driver version of the file, or "".
	Version string `json:"version,omitempty"`
	// Origin is the discovery source it came from.
	Origin Origin `json:"origin"`
	// ID identifies the host file.
	ID FileID `json:"id"`
	// Mode is "link" (a symlink to the host file), "patched" (a copy
	// with a new DT_RUNPATH or DT_RPATH) or "shim" (see ModeShim).
	Mode Mode `json:"mode"`
	// Preload are, for a shim, the hidden dependencies it names after
	// the host file, for libraries whose own DT_RUNPATH stops the search
	// through the shim's DT_RPATH (see markChained).
	Preload []string `json:"preload,omitempty"`

	entry catalog.Entry
	info  *elfscan.Info
}

// Selection is the consistent driver chosen among the candidates.
type Selection struct {
	// Version is the chosen driver version ("" for unversioned drivers
	// such as WSL's and Jetson's).
	Version string
	// Reason says why this version was chosen.
	Reason string
	// Versions lists every driver version seen, in discovery order (a
	// cuda_compat version not among them).
	Versions []string
	// Compat is the cuda_compat libcuda used in place of the host's, inside
	// the root, or "".
	Compat string
	// CompatChecks are the verdicts on every cuda_compat libcuda given
	// with -d (CompatUsable against the kernel driver), in the order they
	// were weighed: the doctor reports these, it does not judge again.
	CompatChecks []CompatCheck
	// Files are the chosen files, in discovery order.
	Files []*DriverFile
	// Skipped lists what was left out and why.
	Skipped []Skipped
}

// CompatCheck is the verdict on one cuda_compat libcuda.
type CompatCheck struct {
	// Path is the libcuda inside the root; Version its driver version.
	Path    string
	Version string
	// Note is its forward-compatibility note (nil when unreadable: Err).
	Note *CompatNote
	Err  error
	// Usable and Reason are CompatUsable's answer; Chosen says the
	// selection took it.
	Usable bool
	Reason string
	Chosen bool
}

// selectDriver reads the ELF identity of each candidate's real file, drops
// those that do not suit target, judges each cuda_compat libcuda against
// the kernel driver (the Plan's one reading of it, which the doctor
// reports), picks one driver version (the kernel module's, moduleVersion,
// when present, else the first one found in priority order), and returns
// one DriverFile per real file with the names it is known by.
func selectDriver(root string, cands []Candidate, target elfscan.Ident, moduleVersion string, kernel Kernel) (*Selection, error) {
	sel := &Selection{}
	reals := readReals(root, cands, target, sel)
	cs := chooseCompat(root, reals, kernel, sel)
	if cs.compat != nil {
		// The compat libcuda's driver goes first.
		var first, rest []*realFile
		for _, r := range reals {
			if cs.in(r) {
				first = append(first, r)
			} else {
				rest = append(rest, r)
			}
		}
		reals = append(first, rest...)
	}
	chooseVersion(sel, reals, moduleVersion, cs)
	assembleFiles(sel, reals, cs)
	return sel, nil
}

// realFile is one real file among the candidates, with every name it was
// found under and its ELF headers (nil for a data file).
type realFile struct {
	c     Candidate
	names []string
	info  *elfscan.Info
}

// readReals merges the candidates that are one file (by real path, or
// hard links in one directory: Debian's Mesa ships its DRI drivers as
// thirteen names of one 25 MB file, copied once) and reads their ELF
// headers, skipping into sel what cannot be read or is of another
// architecture than target.
func readReals(root string, cands []Candidate, target elfscan.Ident, sel *Selection) []*realFile {
	var reals []*realFile
	byReal := map[string]*realFile{}
	byID := map[FileID]*realFile{}
	bad := map[string]bool{}
	for _, c := range cands {
		r := byReal[c.Real]
		if r == nil && c.ID != (FileID{}) && c.Dir == path.Dir(c.Real) {
			if x := byID[c.ID]; x != nil && x.c.Dir == c.Dir {
				r = x
			}
		}
		if r != nil {
			r.names = append(r.names, c.Name)
			continue
		}
		if bad[c.Real] {
			continue
		}
		hp := ldpath.HostPath(root, c.Real)
		var info *elfscan.Info
		if c.Entry.Kind != catalog.KindData {
			i, err := elfscan.Read(hp)
			if err != nil {
				sel.Skipped = append(sel.Skipped, Skipped{path.Join(c.Dir, c.Name), err.Error(), SkipBadELF})
				bad[c.Real] = true
				continue
			}
			if !i.Ident.Compatible(target) {
				sel.Skipped = append(sel.Skipped, Skipped{path.Join(c.Dir, c.Name), fmt.Sprintf("wrong architecture: %s %s, program is %s %s", i.Class, i.Machine, target.Class, target.Machine), SkipWrongArch})
				bad[c.Real] = true
				continue
			}
			info = i
		}
		r = &realFile{c: c, names: []string{c.Name}, info: info}
		byReal[c.Real] = r
		byID[c.ID] = r
		reals = append(reals, r)
	}
	return reals
}

// compatSet is the cuda_compat choice: the libcuda taken (nil for none),
// those refused, and the kernel driver they were judged against.
type compatSet struct {
	compat   *realFile
	rejected []*realFile
	kernel   Kernel
}

// sameDriver reports whether b belongs to the driver of the compat
// libcuda a: the files of its version, or for Jetson's unversioned names
// (libcuda.so.1.1) the unversioned files of its directory.
func sameDriver(a, b *realFile) bool {
	if a.c.Version != "" {
		return b.c.Version == a.c.Version
	}
	return b.c.Version == "" && b.c.Dir == a.c.Dir
}

// in reports whether r belongs to the compat libcuda's driver.
func (cs *compatSet) in(r *realFile) bool { return cs.compat != nil && sameDriver(cs.compat, r) }

// rejectedBy returns the refused compat libcuda whose driver r belongs to.
func (cs *compatSet) rejectedBy(r *realFile) *realFile {
	for _, x := range cs.rejected {
		if sameDriver(x, r) {
			return x
		}
	}
	return nil
}

// chooseCompat judges each cuda_compat libcuda given with -d (a newer
// libcuda whose ELF note says where it runs) against the kernel driver,
// recording every verdict in sel.CompatChecks: the first usable one goes
// first, with the files of its driver beside it, whatever the order of the
// flags.
func chooseCompat(root string, reals []*realFile, kernel Kernel, sel *Selection) *compatSet {
	cs := &compatSet{kernel: kernel}
	for _, r := range reals {
		if r.c.Origin != OriginFlag || r.c.Entry.Name != "libcuda" {
			continue
		}
		note, err := ReadCompatNote(ldpath.HostPath(root, r.c.Real))
		if err != nil {
			sel.CompatChecks = append(sel.CompatChecks, CompatCheck{Path: r.c.Real, Version: r.c.Version, Err: err, Reason: "unreadable forward-compatibility note"})
			continue
		}
		if note == nil {
			continue
		}
		ok, why := CompatUsable(cs.kernel, note, r.c.Version)
		sel.CompatChecks = append(sel.CompatChecks, CompatCheck{Path: r.c.Real, Version: r.c.Version, Note: note, Usable: ok, Reason: why, Chosen: ok && cs.compat == nil})
		if cs.compat != nil {
			// Judged for the report; the first usable one is taken.
			continue
		}
		if !ok {
			sel.Skipped = append(sel.Skipped, Skipped{r.c.Real, "cuda_compat libcuda " + compatName(r.c) + " not used: " + why, SkipCompatUnusable})
			cs.rejected = append(cs.rejected, r)
			continue
		}
		cs.compat = r
		sel.Compat = r.c.Real
	}
	return cs
}

// chooseVersion lists the driver versions seen (a compat driver's and a
// refused one's aside) and chooses one: the kernel module's when it is
// among them, else the first in search order; sel.Reason says why.
func chooseVersion(sel *Selection, reals []*realFile, moduleVersion string, cs *compatSet) {
	seen := map[string]bool{}
	for _, r := range reals {
		if v := r.c.Version; v != "" && !cs.in(r) && cs.rejectedBy(r) == nil && !seen[v] {
			seen[v] = true
			sel.Versions = append(sel.Versions, v)
		}
	}
	switch {
	case len(sel.Versions) == 0 && len(reals) > 0 && !slices.ContainsFunc(reals, func(r *realFile) bool { return !r.c.Entry.Mesa }):
		sel.Reason = "Mesa's drivers (Mesa's files carry no driver version)"
	case len(sel.Versions) == 0:
		sel.Reason = "no versioned driver files (an unversioned driver, as on WSL or Jetson)"
	case moduleVersion != "" && seen[moduleVersion]:
		sel.Version = moduleVersion
		sel.Reason = "matches the kernel module version " + moduleVersion
	case moduleVersion != "":
		sel.Version = sel.Versions[0]
		sel.Reason = fmt.Sprintf("the kernel module is %s but no userspace driver of that version was found; using the first found, %s", moduleVersion, sel.Version)
	case len(sel.Versions) == 1:
		sel.Version = sel.Versions[0]
		sel.Reason = "the only version found"
	default:
		sel.Version = sel.Versions[0]
		sel.Reason = "no kernel module version known; the first version found in search order"
	}
	if cs.compat != nil {
		sel.Reason += "; the cuda_compat libcuda " + compatName(cs.compat.c) + " goes first (" + compatWhy(cs.kernel) + ")"
	}
}

// assembleFiles turns the real files of the chosen driver into sel.Files,
// each with the names lib/ links to it (its sonames and NixOS's bare .so
// name), skipping into sel what another version, the compat driver or an
// earlier file of the same name leaves out.
func assembleFiles(sel *Selection, reals []*realFile, cs *compatSet) {
	compatFamily := map[string]bool{}
	claimed := map[string]bool{}
	for _, r := range reals {
		if x := cs.rejectedBy(r); x != nil && !cs.in(r) {
			if r.c.Entry.Name != "libcuda" {
				sel.Skipped = append(sel.Skipped, Skipped{r.c.Real, "part of the cuda_compat driver " + compatName(x.c) + ", not used", SkipCompatPart})
			}
			continue
		}
		if cs.in(r) {
			compatFamily[r.c.Entry.Name] = true
		} else if compatFamily[r.c.Entry.Name] {
			sel.Skipped = append(sel.Skipped, Skipped{r.c.Real, "replaced by the cuda_compat " + r.c.Entry.Name + " " + compatName(cs.compat.c), SkipCompatReplaced})
			continue
		} else if r.c.Version != "" && r.c.Version != sel.Version {
			sel.Skipped = append(sel.Skipped, Skipped{r.c.Real, "driver version " + r.c.Version + " not chosen (" + sel.Version + " was)", SkipOtherVersion})
			continue
		}
		base := path.Base(r.c.Real)
		if claimed[base] {
			sel.Skipped = append(sel.Skipped, Skipped{r.c.Real, "a file named " + base + " was already found earlier in search order", SkipShadowed})
			continue
		}
		names := append([]string(nil), r.names...)
		if r.info != nil && r.info.Soname != "" {
			names = append(names, r.info.Soname)
		}
		// NixOS's driver package gives every library its bare .so name
		// too, and Nix-packaged tools dlopen it (Triton and cudarc:
		// libcuda.so), whether or not the host has that link.
		if r.info != nil {
			if bare := bareName(base); bare != "" {
				names = append(names, bare)
			}
		}
		var links []string
		for _, n := range names {
			if n == base || claimed[n] || !linkName(n) {
				continue
			}
			claimed[n] = true
			links = append(links, n)
		}
		claimed[base] = true
		sel.Files = append(sel.Files, &DriverFile{
			Real: r.c.Real, Base: base, Links: dedupe(links), API: r.c.Entry.API,
			Version: r.c.Version, Origin: r.c.Origin, ID: r.c.ID, Mode: ModeLink,
			entry: r.c.Entry, info: r.info,
		})
	}
}

// bareName returns the unversioned name of a library file name
// ("libcuda.so" for "libcuda.so.535.261.03"), or "" when it has none.
func bareName(n string) string {
	i := strings.Index(n, ".so.")
	if i <= 0 {
		return ""
	}
	return n[:i+len(".so")]
}

// linkName reports whether n is safe as a file name in the entry.
func linkName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.Contains(n, "/")
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// compatName names a cuda_compat libcuda in messages: its driver version,
// or its path when its name has none (Jetson's libcuda.so.1.1).
func compatName(c Candidate) string {
	if c.Version != "" {
		return c.Version
	}
	return c.Real
}

// compatWhy says in a few words why the kernel driver k can use a
// cuda_compat libcuda.
func compatWhy(k Kernel) string {
	if k.Kind == KernelNVGPU {
		return fmt.Sprintf("Jetson L4T R%d takes the CUDA upgrade package", k.L4TMajor())
	}
	return "the module's branch is one it supports"
}
