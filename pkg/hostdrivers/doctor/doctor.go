// Package doctor is nixglhost --doctor: a view of the launch's own plan
// (hostdrivers.Resolve), never a second decision. It runs the launcher's
// discovery, selection and closure without building anything, and explains
// up front why a GPU program would fail: the kernel module against the
// driver, the program's glibc and libstdc++ against what the driver needs,
// the inherited environment, and the cache directory the launch would use.
// It reads the host tree, the program's ELF file and its libc, and the
// cache directory; it writes nothing. See docs/DESIGN.md.
//
// The doctor is a list of independent checks (checks.go), each a small
// function over the plan and the host facts gathered once (facts), and
// renderers: the Report itself is the JSON contract, and Text renders it
// (text.go). Every view of one thing reads one value, so the summary and
// the per-API table cannot disagree.
package doctor

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// Doctor resolves the plan as the launch would (hostdrivers.Resolve),
// without building a cache entry, and runs every check over it: what it
// found and every reason the program would fail. It reads files only. An
// error means the doctor itself could not run (an unreadable PROGRAM);
// every problem of the host is a finding instead.
func Doctor(o *hostdrivers.Options, do DoctorOptions) (*Report, error) {
	f, err := gather(o, do)
	if err != nil {
		return nil, err
	}
	r := &Report{
		Root: f.root, Mode: do.Mode, Findings: []Finding{}, Dirs: []DirReport{}, Skipped: []hostdrivers.Skipped{},
		Compat: []CompatReport{}, APIs: []APIReport{}, Capabilities: []CapabilityReport{}, GPUs: []GPUReport{}, Environment: []EnvVar{},
		Driver: DriverReport{Versions: []VersionSeen{}, Missing: []hostdrivers.Skipped{}},
	}
	if r.Mode == "" {
		r.Mode = "launch"
	}
	for _, c := range checks {
		c(f, r)
	}
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		return sevRank(a.Severity) - sevRank(b.Severity)
	})
	for _, f := range r.Findings {
		if f.Severity == SeverityBlocking {
			r.Blocking++
		}
	}
	return r, nil
}

// facts are what the checks read: the plan, resolved once, and the host
// facts around it.
type facts struct {
	opts hostdrivers.Options
	do   DoctorOptions
	root string
	// storeDir is the Nix store; target the program's identity.
	storeDir string
	target   elfscan.Ident
	// pl is the plan (an empty one when none could be resolved);
	// resolveErr why Resolve returned no plan, searchErr why the host's
	// library search is unavailable.
	pl                    *hostdrivers.Plan
	resolveErr, searchErr error
	// badDirs are the -d directories that cannot be searched (findings
	// here, where the launch fails on them).
	badDirs []hostdrivers.Skipped
	// prog is PROGRAM's ELF file; driverID the driver's ELF identity.
	prog     *elfscan.Info
	driverID *elfscan.Ident
	// libcDir is the directory of the libc the program loads ("" when it
	// is the host's or unknown); nixProg says PROGRAM is a Nix program.
	libcDir string
	nixProg bool
}

// gather reads PROGRAM and resolves the plan for it.
func gather(o *hostdrivers.Options, do DoctorOptions) (*facts, error) {
	f := &facts{opts: *o, do: do, root: o.HostRoot(), storeDir: do.StoreDir}
	if f.storeDir == "" {
		f.storeDir = "/nix/store"
	}
	if do.Program != "" {
		info, err := elfscan.Read(do.Program)
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", do.Program, err)
		}
		f.prog = info
		f.opts.Target = info.Ident
		f.libcDir, f.nixProg = programLibc(info, f.storeDir, do.NixLD)
	}
	f.target = f.opts.TargetIdent()
	// Explicit directories that cannot be searched are findings here,
	// not errors.
	explicit := len(f.opts.Dirs) > 0
	if explicit {
		var keep []string
		for _, d := range f.opts.Dirs {
			if s, bad := dirProblem(f.root, d); bad {
				f.badDirs = append(f.badDirs, s)
				continue
			}
			keep = append(keep, d)
		}
		f.opts.Dirs = keep
	}
	// The launch's own plan, so that what is reported is what the entry
	// will hold, and the entry named is the one it will use.
	if !explicit || len(f.opts.Dirs) > 0 {
		pl, err := hostdrivers.Resolve(&f.opts)
		var nd *hostdrivers.NoDriverError
		switch {
		case pl == nil:
			f.resolveErr = err
		case err != nil && !errors.As(err, &nd):
			f.searchErr = err
		}
		f.pl = pl
	}
	if f.pl == nil {
		// No plan: an empty one, with the host's kernel driver, for the
		// checks to report on.
		f.pl = &hostdrivers.Plan{Root: f.root, Target: f.target, Module: hostdrivers.ModuleVersion(f.root), Kernel: hostdrivers.ReadKernel(f.root),
			Selection: &hostdrivers.Selection{}, Closure: &hostdrivers.Closure{}}
	}
	f.driverID = driverIdent(f.root, f.pl)
	return f, nil
}

// driverIdent returns the ELF identity of the driver: its first chosen ELF
// file's, else the first candidate's that can be read (a driver of the
// wrong architecture), else nil.
func driverIdent(root string, pl *hostdrivers.Plan) *elfscan.Ident {
	for _, f := range pl.Selection.Files {
		if f.ELF() != nil {
			return &f.ELF().Ident
		}
	}
	for _, c := range pl.Candidates {
		if c.Entry.Kind == catalog.KindData {
			continue
		}
		if id, err := elfscan.ReadIdent(ldpath.HostPath(root, c.Real)); err == nil {
			return &id
		}
	}
	return nil
}

// programLibc returns the directory of the libc the program prog loads
// through its interpreter ("" for a static program, or an FHS program
// served by nix-ld, whose libc is nix-ld's choice) and whether it is a
// Nix program (its interpreter in storeDir).
func programLibc(prog *elfscan.Info, storeDir string, nixLD bool) (libcDir string, nixProg bool) {
	if prog.Interp == "" {
		return "", false
	}
	nixProg = strings.HasPrefix(prog.Interp, strings.TrimSuffix(storeDir, "/")+"/")
	if !nixProg && nixLD {
		return "", false
	}
	real, err := filepath.EvalSymlinks(prog.Interp)
	if err != nil {
		real = prog.Interp
	}
	return filepath.Dir(real), nixProg
}
