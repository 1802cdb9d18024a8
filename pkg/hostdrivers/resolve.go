package hostdrivers

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"slices"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// Plan is every decision about one cache entry, made once by Resolve from
// the inputs (Options: flags, environment, the mode's policy) and the host
// as seen under the root. Building writes what it says; the launch, system
// mode, the pre-build hook, CDI and the doctor read it, and none of them
// decides again (see docs/DESIGN.md, "One Resolve").
type Plan struct {
	// Root is the host tree every path is relative to.
	Root string
	// Target is the identity of the programs the entry serves.
	Target elfscan.Ident
	// Mode is the entry's kind (wrapper or self-contained) and SeenAt
	// where a self-contained entry's vendor files say it is seen.
	Mode   EntryMode
	SeenAt string
	// Module is the loaded NVIDIA kernel module's version ("" for none),
	// Roles what the host's GPUs do (read once: the Mesa decision reads
	// it), and Kernel the GPU's kernel driver among them (Roles.GPU).
	Module string
	Roles  Roles
	Kernel Kernel
	// Sources are the directories searched, with their origin; Dropped
	// those not searched, with why.
	Sources []Source
	Dropped []Skipped
	// Candidates are the driver files found there; Scanned the files the
	// scan left out, with why.
	Candidates []Candidate
	Scanned    []Skipped
	// Selection is the driver chosen among the candidates, with its
	// reasons (the cuda_compat verdict and Mesa's inclusion among them).
	Selection *Selection
	// Closure is what the selection loads from the host (deps/).
	Closure *Closure
	// Vendor are the vendor files the entry will hold, kept from the host
	// (rewritten) or made; VendorSkipped the host's files left out, with
	// why.
	Vendor        []VendorFile
	VendorSkipped []Skipped
	// VDPAULinks are the lib/vdpau-<platform> links of a 32-bit entry
	// with a VDPAU driver, name to target (see vdpauPlatformLinks).
	VDPAULinks [][2]string
	// Key names the entry in the cache ("" when there is no driver).
	Key string

	// data are the host's vendor files as scanned (the key fingerprints
	// them); leftOut the candidates the plan did not consider (Mesa's
	// beside NVIDIA's): their files need no watch.
	data    []dataCand
	leftOut []Candidate
	// searchErr says the host's library search could not be set up.
	searchErr error
	// watches are what the hot path checks before it trusts this plan's
	// entry again (recorded when the session asked for them).
	watches []watch
}

// Resolve turns the inputs o into a Plan: where to look (discovery), what
// is there (scan), what to take (selection, with the cuda_compat verdict
// and Mesa's inclusion), what it loads from the host (closure), the vendor
// files and the entry's key. It reads the host and writes nothing.
//
// When the host has no usable driver, the plan is returned with a
// *NoDriverError. When the host's library search cannot be set up, the
// plan holds the selection and an empty closure, with the error. Other
// errors (an explicit directory that cannot be searched, an untrusted
// file in root's modes) come with a nil plan.
func Resolve(o *Options) (*Plan, error) {
	return new(Session).resolve(o, false)
}

// resolve is Resolve; with watch, the plan also holds its watches: every
// host path a decision depended on, with what it was, which the hot path's
// index checks before it trusts the plan's entry again.
func (s *Session) resolve(o *Options, watch bool) (*Plan, error) {
	var w *watchSet
	if watch {
		w = new(watchSet)
	}
	pl, err := s.resolveWith(o, w)
	if pl != nil && w != nil {
		pl.watches = w.list
	}
	return pl, err
}

// resolveWith is resolve, recording the watches in w (nil: none).
func (s *Session) resolveWith(o *Options, w *watchSet) (*Plan, error) {
	log := o.logger()
	root := o.root()
	roles := ReadRoles(root)
	pl := &Plan{Root: root, Target: o.target(), Mode: o.entryMode(), SeenAt: o.seenAt(), Module: s.moduleVersion(root), Roles: roles, Kernel: roles.GPU()}
	srcs, dropped, err := sources(o, w)
	if err != nil {
		return nil, err
	}
	pl.Sources, pl.Dropped = srcs, dropped
	pl.Candidates, pl.Scanned = scan(root, srcs, w)
	for _, s := range pl.Scanned {
		log.Debug("skipped", "path", s.Path, "reason", s.Reason)
	}
	if len(pl.Candidates) == 0 {
		log.Debug("no driver files found")
		pl.Selection, pl.Closure = &Selection{}, &Closure{}
		return pl, &NoDriverError{Target: pl.Target}
	}
	pl.data = scanData(root, srcs, w)
	if err := pl.choose(o, pl.Module, pl.Candidates); err != nil {
		return nil, err
	}
	if len(pl.leftOut) > 0 {
		files := map[string]bool{}
		for _, c := range pl.leftOut {
			files[ldpath.HostPath(root, c.Real)] = true
		}
		w.drop(files)
	}
	if len(pl.Selection.Files) == 0 {
		log.Debug("no usable driver file found")
		nd := &NoDriverError{Target: pl.Target}
		for _, s := range pl.Selection.Skipped {
			if s.Code == SkipWrongArch {
				nd.WrongArch = append(nd.WrongArch, s)
			}
		}
		return pl, nd
	}
	if o.TrustedFilesOnly {
		// A vendor file names the library every program loads.
		if err := checkTrustedData(root, pl.data); err != nil {
			return nil, err
		}
	}
	pl.Vendor, pl.VendorSkipped, err = decideVendor(root, pl.data, exposedNames(pl.Selection), pl.Selection.Version, pl.SeenAt)
	if err != nil {
		return nil, err
	}
	for _, s := range pl.VendorSkipped {
		log.Debug("vendor file left out", "path", s.Path, "reason", s.Reason)
	}
	pl.VDPAULinks = vdpauPlatformLinks(pl.Target, exposedNames(pl.Selection), o.VDPAUPeer)
	pl.Key = planKey(root, pl.Target, pl.Module, o.SelfContained, pl.SeenAt, pl.Selection, pl.Closure, pl.data, pl.VDPAULinks)
	return pl, pl.searchErr
}

// Exposed returns every name the entry's lib/ will hold: each chosen
// file's name and its links, and the backends in their subdirectories
// ("gbm/nvidia-drm_gbm.so", relative to lib/).
func (pl *Plan) Exposed() map[string]bool {
	have := exposedNames(pl.Selection)
	for _, b := range backendsOf(have) {
		have[b.sub+"/"+b.name] = true
	}
	return have
}

// planKey fingerprints what the entry will hold, never how the inputs were
// spelled: the layout version, the root, the program's architecture, the
// kernel module version, whether it is self-contained and then where it is
// seen (its vendor files name that place), and every driver file, hidden dependency and
// vendor file with its name, place, mode and file identity, in order. Two
// launches whose selections differ (a cuda_compat libcuda preferred under
// -d and not under LD_LIBRARY_PATH) get two entries, so one shared cache
// never hands either the other's driver.
func planKey(root string, t elfscan.Ident, module string, selfContained bool, seenAt string, sel *Selection, cl *Closure, data []dataCand, platformLinks [][2]string) string {
	h := fnv.New128a()
	var num [8]byte
	str := func(s string) {
		binary.LittleEndian.PutUint64(num[:], uint64(len(s)))
		h.Write(num[:])
		io.WriteString(h, s)
	}
	u64 := func(v uint64) {
		binary.LittleEndian.PutUint64(num[:], v)
		h.Write(num[:])
	}
	id := func(f FileID) { u64(f.Dev); u64(f.Ino); u64(uint64(f.Size)); u64(uint64(f.MtimeNs)) }
	u64(FormatVersion)
	str(root)
	u64(uint64(t.Class))
	u64(uint64(t.Data))
	u64(uint64(t.Machine))
	str(module)
	if selfContained {
		// Its vendor files name the libraries where it is seen; 2: its
		// copies carry a DT_RPATH (1: every driver file was a copy with a
		// DT_RUNPATH).
		u64(2)
		str(seenAt)
	} else {
		u64(0)
	}
	for _, f := range sel.Files {
		str(f.Base)
		str(f.Real)
		str(string(f.Mode))
		id(f.ID)
		u64(uint64(len(f.Links)))
		for _, l := range f.Links {
			str(l)
		}
	}
	u64(0xdeb5)
	for _, d := range cl.Deps {
		str(d.Name)
		str(d.Real)
		str(string(d.Mode))
		id(d.ID)
	}
	u64(0xdada)
	for _, d := range data {
		str(d.df.Dest)
		str(d.src)
		id(d.id)
	}
	if len(platformLinks) > 0 {
		// A 32-bit entry's lib/vdpau-<platform> links, the 64-bit
		// entry's lib/vdpau among their targets.
		u64(0x7d9a)
		for _, l := range platformLinks {
			str(l[0])
			str(l[1])
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// takeVendors drops Mesa's candidates unless o.Mesa, the candidates hold
// no NVIDIA file, or the host's roles say Mesa renders there
// (Roles.MesaRenders: WSL2, nouveau, a display on a Mesa GPU), saying so
// once per directory. With o.MesaOnly it drops NVIDIA's instead.
func takeVendors(o *Options, roles Roles, cands []Candidate) (keep []Candidate, left []Skipped, leftOut []Candidate) {
	if o.MesaOnly {
		return dropVendor(cands, func(c Candidate) bool { return !c.Entry.Mesa },
			"NVIDIA's drivers there are left out: --mesa-only", SkipNVIDIANotTaken)
	}
	if o.Mesa || !slices.ContainsFunc(cands, func(c Candidate) bool { return !c.Entry.Mesa }) ||
		!slices.ContainsFunc(cands, func(c Candidate) bool { return c.Entry.Mesa }) {
		return cands, nil, nil
	}
	if why := roles.MesaRenders(); why != "" {
		o.logger().Debug("Mesa taken beside NVIDIA's driver", "reason", why)
		return cands, nil, nil
	}
	return dropVendor(cands, func(c Candidate) bool { return c.Entry.Mesa },
		"Mesa's drivers there are left out: the host has an NVIDIA driver (--mesa takes both)", SkipMesaNotTaken)
}

// dropVendor returns cands without those drop matches, with reason once
// per directory.
func dropVendor(cands []Candidate, drop func(Candidate) bool, reason string, code SkipCode) (keep []Candidate, left []Skipped, leftOut []Candidate) {
	seen := map[string]bool{}
	for _, c := range cands {
		if !drop(c) {
			keep = append(keep, c)
			continue
		}
		leftOut = append(leftOut, c)
		if !seen[c.Dir] {
			seen[c.Dir] = true
			left = append(left, Skipped{c.Dir, reason, code})
		}
	}
	return keep, left, leftOut
}

// choose selects the driver among cands and computes the closure of its
// hidden dependencies on the host, filling pl's Selection and Closure. It
// reads the candidates' ELF headers but writes nothing. A selection with no
// files means no candidate was usable. When the host's library search
// cannot be set up, pl has the selection and an empty closure, and the
// error is returned.
func (pl *Plan) choose(o *Options, module string, cands []Candidate) error {
	log := o.logger()
	root := o.root()
	t := o.target()
	cands, mesaLeft, leftOut := takeVendors(o, pl.Roles, cands)
	sel, err := selectDriver(root, cands, t, module, pl.Kernel)
	if err != nil {
		return err
	}
	pl.leftOut = leftOut
	pl.Selection, pl.Closure = sel, &Closure{}
	sel.Skipped = append(sel.Skipped, mesaLeft...)
	log.Debug("driver version chosen", "version", sel.Version, "reason", sel.Reason, "seen", sel.Versions)
	for _, s := range sel.Skipped {
		log.Debug("skipped", "path", s.Path, "reason", s.Reason)
	}
	// Data files alone (nvoptix.bin beside an arm64 driver, for an amd64
	// program) are no driver.
	if !slices.ContainsFunc(sel.Files, func(f *DriverFile) bool { return f.info != nil }) {
		sel.Files = nil
		return nil
	}
	searcher, err := ldpath.NewHostSearcher(root, t.Class, t.Machine)
	if err != nil {
		pl.searchErr = fmt.Errorf("host library search: %w", err)
		return nil
	}
	searcher.Accept = func(hp string) bool {
		id, err := elfscan.ReadIdent(hp)
		return err == nil && id.Compatible(t)
	}
	if len(o.Dirs) > 0 {
		for _, f := range completeFromHost(root, sel, searcher, t) {
			log.Debug("driver file from the host's search path", "name", f.Base, "from", f.Real, "needed by the -d driver", true)
		}
	}
	cl := Hidden(root, sel, searcher)
	pl.Closure = cl
	if o.SelfContained {
		if err := markSelfContained(root, sel, cl, log); err != nil {
			return err
		}
	}
	markChained(sel, cl, o.SelfContained, log)
	for _, m := range cl.Missing {
		log.Debug("dependency not available", "name", m.Path, "reason", m.Reason)
	}
	if o.TrustedFilesOnly {
		if err := CheckTrustedFiles(root, sel, cl); err != nil {
			return err
		}
	}
	return nil
}
