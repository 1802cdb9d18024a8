// Package doctor is nixglhost --doctor: a view of the launch's own plan
// (hostdrivers.Resolve), never a second decision. It runs the launcher's
// discovery, selection and closure without building anything, and explains
// up front why a GPU program would fail: the kernel module against the
// driver, the program's glibc and libstdc++ against what the driver needs,
// the inherited environment, and the cache directory the launch would use.
// It reads the host tree, the program's ELF file and its libc, and the
// cache directory; it writes nothing. See docs/DESIGN.md.
package doctor

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ianlancetaylor/demangle"
	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// Finding severities.
const (
	// SeverityBlocking marks a finding that will make the program fail.
	SeverityBlocking = "blocking"
	// SeverityWarning marks a finding that may make it misbehave.
	SeverityWarning = "warning"
)

// Finding is one diagnosis.
type Finding struct {
	// Severity is SeverityBlocking or SeverityWarning.
	Severity string `json:"severity"`
	// Topic names what the finding is about: "driver", "module",
	// "cuda_compat", "architecture", "interpreter", "glibc", "libstdc++", "gpu", "mesa",
	// "environment" or "cache".
	Topic string `json:"topic"`
	// Message says what is wrong, naming the files and versions.
	Message string `json:"message"`
	// Fix says what to do about it; may be empty.
	Fix string `json:"fix,omitempty"`
}

// Report is the doctor's whole answer; --doctor --json prints it as JSON.
// Every slice field is present (possibly empty) in the JSON; Program is
// absent when no PROGRAM was given.
type Report struct {
	// Root is the host tree that was searched ("/" unless --driver-root).
	Root string `json:"root"`
	// Blocking counts the findings of SeverityBlocking; nixglhost --doctor
	// exits 1 when it is not zero.
	Blocking int `json:"blocking"`
	// Findings are the diagnoses, blocking ones first.
	Findings []Finding `json:"findings"`
	// Dirs are the directories searched, in priority order.
	Dirs []DirReport `json:"dirs"`
	// Skipped are the directories and files left out, with the reason:
	// "missing", "unreadable: ...", "not a directory", "same directory
	// as ...", "wrong architecture: ...", "driver version ... not chosen".
	Skipped []hostdrivers.Skipped `json:"skipped"`
	// Module is the loaded kernel module.
	Module ModuleReport `json:"module"`
	// Driver is the userspace driver chosen and the others seen.
	Driver DriverReport `json:"driver"`
	// Compat lists the cuda_compat libcuda files found in -d directories.
	Compat []CompatReport `json:"cuda_compat"`
	// APIs says, per API in APIs() order, whether the driver provides it.
	APIs []APIReport `json:"apis"`
	// Capabilities is the per-API table as users name the APIs: library
	// found or not, vendor file found, made or missing, and the outcome.
	Capabilities []CapabilityReport `json:"capabilities"`
	// GPUs are the GPUs of /sys/class/drm, with the userspace drivers
	// each needs and whether the entry holds them.
	GPUs []GPUReport `json:"gpus"`
	// Program describes PROGRAM, when one was given.
	Program *ProgramReport `json:"program,omitempty"`
	// Environment lists the inherited variables that bear on the driver
	// (LD_LIBRARY_PATH, LD_PRELOAD and the vendor variables), when set.
	Environment []EnvVar `json:"environment"`
	// Cache describes the cache directory.
	Cache CacheReport `json:"cache"`
	// Companion is the 32-bit companion entry, when the mode makes one
	// and the program is x86-64.
	Companion *CompanionReport `json:"companion,omitempty"`
	// Mode names the mode whose plan this is ("launch", "system",
	// "hook", "cdi").
	Mode string `json:"mode"`
}

// DirReport is one directory searched for driver files.
type DirReport struct {
	// Dir is the directory, inside the root.
	Dir string `json:"dir"`
	// Origin is the discovery source that named it (see Source.Origin).
	Origin hostdrivers.Origin `json:"origin"`
	// DriverFiles counts the distinct driver files found there (soname
	// links to one file count once), its vdpau/ and gbm/ included.
	DriverFiles int `json:"driver_files"`
	// Used counts those that went into the selection.
	Used int `json:"used"`
	// Note says why nothing there is used ("no driver files", "wrong
	// architecture: ...", "driver version ... not chosen ..."), or "".
	Note string `json:"note,omitempty"`
}

// ModuleReport is the loaded GPU kernel module: nvidia, Jetson's nvgpu
// (with its L4T release) or WSL2's dxgkrnl, as hostdrivers.ReadKernel
// finds it for the launch.
type ModuleReport = hostdrivers.Kernel

// DriverReport is the userspace driver chosen.
type DriverReport struct {
	// Version is the chosen driver version ("" for an unversioned driver).
	Version string `json:"version"`
	// Reason says why it was chosen.
	Reason string `json:"reason"`
	// Versions lists every version seen, in discovery order.
	Versions []VersionSeen `json:"versions"`
	// Files counts the files chosen.
	Files int `json:"files"`
	// Class and Machine are the driver files' ELF class and machine.
	Class   string `json:"class,omitempty"`
	Machine string `json:"machine,omitempty"`
	// Missing lists the libraries some chosen file loads that the host
	// lacks (optional ones are common: a headless server has no X11).
	Missing []hostdrivers.Skipped `json:"missing"`
}

// VersionSeen is one driver version found on the host.
type VersionSeen struct {
	Version string `json:"version"`
	// Dirs are the directories holding files of that version.
	Dirs []string `json:"dirs"`
	// Chosen is true for the version the selection uses.
	Chosen bool `json:"chosen"`
}

// CompatReport is a CUDA forward-compatibility libcuda (cuda_compat): a
// newer libcuda meant to run on an older kernel module. Its ELF note section
// ".note.cuda.fwd_compatibility" holds one note, owner "NVIDIA
// Corporation", whose descriptor is JSON such as {"Format": 1,
// "CUDA Version": "12.4", "Driver": [470, 535], "Device": [...]}: Driver
// lists the kernel module branches (majors) it supports. This is the
// format NVIDIA's container toolkit reads; it is assumed, not documented by
// NVIDIA.
type CompatReport struct {
	// Path is the libcuda file, inside the root.
	Path string `json:"path"`
	// Version is the driver version of its file name.
	Version string `json:"version"`
	// CUDA is the CUDA version the note names.
	CUDA string `json:"cuda,omitempty"`
	// Branches are the kernel module branches the note allows.
	Branches []int `json:"branches"`
	// Usable says whether the loaded module's branch is among them.
	Usable bool `json:"usable"`
	// Chosen says whether the selection uses it.
	Chosen bool `json:"chosen"`
	// Reason explains Usable.
	Reason string `json:"reason"`
}

// APIReport says whether the driver provides one API.
type APIReport struct {
	API       hostdrivers.API `json:"api"`
	Available bool            `json:"available"`
	// Files are the chosen driver files serving it, inside the root.
	Files []string `json:"files"`
	// Data are the vendor data files (JSON, ICD) for it, inside the root.
	Data []string `json:"data"`
	// Made are the vendor files the entry will get from nixglhost because
	// the host has none for a library it holds (their place in the entry).
	Made []string `json:"made,omitempty"`
	// Backends are the backends in lib/'s subdirectories serving it
	// ("gbm/nvidia-drm_gbm.so"), relative to lib/.
	Backends []string `json:"backends,omitempty"`
}

// ProgramReport describes PROGRAM as the loader will see it.
type ProgramReport struct {
	// Path is PROGRAM resolved through PATH.
	Path string `json:"path"`
	// ELF is the ELF file that runs (a script's interpreter), or "" when
	// none was found.
	ELF string `json:"elf"`
	// Class and Machine are the ELF file's class and machine.
	Class   string `json:"class,omitempty"`
	Machine string `json:"machine,omitempty"`
	// Interp is its PT_INTERP, "" for a static program.
	Interp string `json:"interp,omitempty"`
	// InterpKind is "nix-store", "fhs" or "static".
	InterpKind string `json:"interp_kind"`
	// NixLD is true for an FHS program that nix-ld serves.
	NixLD bool `json:"nix_ld"`
	// Libc is the libc.so.6 beside the interpreter, and Glibc the highest
	// GLIBC_x.y it defines ("" when unknown).
	Libc  string `json:"libc,omitempty"`
	Glibc string `json:"glibc,omitempty"`
	// DriverGlibc is the highest GLIBC_x.y the chosen driver files and
	// their hidden dependencies need, and DriverGlibcBy the file needing it.
	DriverGlibc   string `json:"driver_glibc,omitempty"`
	DriverGlibcBy string `json:"driver_glibc_by,omitempty"`
	// GlibcTooNew lists the files needing a version the program's glibc
	// lacks.
	GlibcTooNew []VersionProblem `json:"glibc_too_new"`
	// Libstdcxx is the libstdc++.so.6 the program loads itself, "" when it
	// loads none (then the driver's comes from the host, hidden), and
	// Glibcxx the highest GLIBCXX_ version it defines.
	Libstdcxx string `json:"libstdcxx,omitempty"`
	Glibcxx   string `json:"glibcxx,omitempty"`
	// CXXTooNew lists the files needing a GLIBCXX_ or CXXABI_ version the
	// program's libstdc++ lacks.
	CXXTooNew []VersionProblem `json:"cxx_too_new"`
}

// VersionProblem is a symbol version a file needs and the program's
// runtime lacks.
type VersionProblem struct {
	// File is the driver file or hidden dependency, inside the root.
	File string `json:"file"`
	// Dependency is true for a hidden dependency (deps/).
	Dependency bool `json:"dependency"`
	// Library is the library the version is needed from ("libc.so.6").
	Library string `json:"library"`
	// Version is the highest missing version ("GLIBC_2.34").
	Version string `json:"version"`
	// Symbols are (some of) the symbols bound to that version, demangled.
	Symbols []string `json:"symbols"`
}

// EnvVar is an inherited environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CacheReport describes the cache directory.
type CacheReport struct {
	// Dir is the cache directory.
	Dir string `json:"dir"`
	// Exists says whether it exists yet.
	Exists bool `json:"exists"`
	// Entries counts the entries in it, Bytes their size on disk
	// (symlinks to host files count as links, not as the files).
	Entries int   `json:"entries"`
	Bytes   int64 `json:"bytes"`
	// Writable says whether nixglhost can build entries there (for a
	// missing directory: whether it can be created).
	Writable bool `json:"writable"`
	// Entry is the entry this host's driver maps to, and Built whether it
	// exists already.
	Entry string `json:"entry,omitempty"`
	Built bool   `json:"built"`
	// Refused is why the launch will not use the directory at all (the
	// check Prepare makes: another owner, writable by others, a symbolic
	// link), or "".
	Refused string `json:"refused,omitempty"`
}

// DoctorOptions says what the doctor looks at besides the driver.
type DoctorOptions struct {
	// ProgramPath is PROGRAM resolved through PATH, "" for none.
	ProgramPath string
	// Program is the ELF file that runs for it (a script's interpreter),
	// "" when there is none.
	Program string
	// NixLD says whether nix-ld serves FHS programs here.
	NixLD bool
	// StoreDir is the Nix store ("/nix/store" when empty).
	StoreDir string
	// Environ is the inherited environment (as os.Environ).
	Environ []string
	// CacheDir is the cache directory, "" to skip the cache checks.
	CacheDir string
	// Mode names the mode whose plan is reported ("launch" when empty).
	Mode string
	// Companion says the mode prepares the 32-bit companion entry beside
	// a 64-bit program's (the launch and system mode do): the report then
	// says what that entry will hold.
	Companion bool
}

// CompanionReport is what the 32-bit companion entry will hold, resolved
// as the mode resolves it (hostdrivers.Resolve for the 32-bit target).
type CompanionReport struct {
	// Class and Machine are the companion's target ("ELFCLASS32", "EM_386").
	Class   string `json:"class"`
	Machine string `json:"machine"`
	// Version and Files describe the 32-bit driver chosen; Files is 0
	// when there is none.
	Version string `json:"version,omitempty"`
	Files   int    `json:"files"`
	// Entry is the companion entry's directory in the cache ("" without
	// a cache or a driver).
	Entry string `json:"entry,omitempty"`
	// None says why there is no companion entry ("" when there is one).
	None string `json:"none,omitempty"`
}

// Doctor runs discovery, scan, selection and the hidden closure as Prepare
// would, without building a cache entry, and reports what it found and
// every reason the program would fail. It reads files only. An error means
// the doctor itself could not run (an unreadable PROGRAM); every problem of
// the host is a finding instead.
func Doctor(o *hostdrivers.Options, do DoctorOptions) (*Report, error) {
	opts := *o
	root := opts.HostRoot()
	storeDir := do.StoreDir
	if storeDir == "" {
		storeDir = "/nix/store"
	}
	r := &Report{
		Root: root, Findings: []Finding{}, Dirs: []DirReport{}, Skipped: []hostdrivers.Skipped{},
		Compat: []CompatReport{}, APIs: []APIReport{}, Capabilities: []CapabilityReport{}, GPUs: []GPUReport{}, Environment: []EnvVar{},
		Driver: DriverReport{Versions: []VersionSeen{}, Missing: []hostdrivers.Skipped{}},
	}
	r.Mode = do.Mode
	if r.Mode == "" {
		r.Mode = "launch"
	}
	add := func(sev, topic, msg, fix string) {
		r.Findings = append(r.Findings, Finding{sev, topic, msg, fix})
	}

	var prog *elfscan.Info
	if do.Program != "" {
		info, err := elfscan.Read(do.Program)
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", do.Program, err)
		}
		prog = info
		opts.Target = info.Ident
	}
	t := opts.TargetIdent()

	// Explicit directories that cannot be searched are findings here,
	// not errors.
	explicit := len(opts.Dirs) > 0
	if explicit {
		var keep []string
		for _, d := range opts.Dirs {
			if s, bad := dirProblem(root, d); bad {
				r.Skipped = append(r.Skipped, s)
				continue
			}
			keep = append(keep, d)
		}
		opts.Dirs = keep
	}
	// The launch's own plan (hostdrivers.Resolve), so that what is
	// reported is what the entry will hold, and the entry named is the
	// one it will use.
	pl := &hostdrivers.Plan{Root: root, Target: t, Module: hostdrivers.ModuleVersion(root), Kernel: hostdrivers.ReadKernel(root),
		Selection: &hostdrivers.Selection{}, Closure: &hostdrivers.Closure{}}
	if !explicit || len(opts.Dirs) > 0 {
		got, err := hostdrivers.Resolve(&opts)
		var nd *hostdrivers.NoDriverError
		switch {
		case got == nil:
			add(SeverityBlocking, "driver", err.Error(), "")
		case err != nil && !errors.As(err, &nd):
			add(SeverityWarning, "driver", "host library search unavailable: "+err.Error(), "")
		}
		if got != nil {
			pl = got
		}
	}
	for _, d := range pl.Dropped {
		if s, bad := dirProblem(root, d.Path); bad {
			d = s
		}
		r.Skipped = append(r.Skipped, d)
	}
	sources, cands := pl.Sources, pl.Candidates
	for _, s := range pl.Scanned {
		r.Skipped = append(r.Skipped, tidy(s))
	}
	r.Module = pl.Kernel
	module := pl.Module
	sel, cl := pl.Selection, pl.Closure
	r.Skipped = append(r.Skipped, sel.Skipped...)
	r.Driver.Missing = append(r.Driver.Missing, cl.Missing...)

	chosen := map[string]bool{}
	for _, f := range sel.Files {
		chosen[f.Real] = true
	}
	wrongArch := slices.ContainsFunc(sel.Skipped, func(s hostdrivers.Skipped) bool { return s.Code == hostdrivers.SkipWrongArch })
	r.Dirs = dirReports(sources, cands, sel, chosen)

	// The driver version and the files' identity.
	r.Driver.Version, r.Driver.Reason, r.Driver.Files = sel.Version, sel.Reason, len(sel.Files)
	for _, v := range sel.Versions {
		vs := VersionSeen{Version: v, Chosen: v == sel.Version, Dirs: []string{}}
		for _, c := range cands {
			if c.Version == v && !slices.Contains(vs.Dirs, c.Dir) {
				vs.Dirs = append(vs.Dirs, c.Dir)
			}
		}
		r.Driver.Versions = append(r.Driver.Versions, vs)
	}
	var driverID *elfscan.Ident
	for _, f := range sel.Files {
		if f.ELF() != nil {
			driverID = &f.ELF().Ident
			break
		}
	}
	if driverID == nil {
		for _, c := range cands {
			if c.Entry.Kind == hostdrivers.KindData {
				continue
			}
			if id, err := elfscan.ReadIdent(ldpath.HostPath(root, c.Real)); err == nil {
				driverID = &id
				break
			}
		}
	}
	if driverID != nil {
		r.Driver.Class, r.Driver.Machine = driverID.Class.String(), driverID.Machine.String()
	}
	if len(sel.Files) == 0 {
		switch {
		case wrongArch && driverID != nil:
			add(SeverityBlocking, "architecture",
				fmt.Sprintf("the driver found is %s %s but the program is %s %s: no driver file can be loaded", driverID.Class, driverID.Machine, t.Class, t.Machine),
				"point -d at the driver's libraries for the program's architecture (32-bit ones live in i386-linux-gnu or lib32)")
		default:
			add(SeverityBlocking, "driver", "no NVIDIA driver files found: the program will see no GPU",
				"pass -d DIR naming the directory that holds libcuda.so.1 (or --driver-root for a host tree mounted elsewhere)")
		}
	}

	// cuda_compat in explicit directories.
	var compatCovers bool
	r.Compat, compatCovers = compatReports(sel, add)

	// The kernel module against the chosen userspace driver (a Mesa-only
	// entry needs no NVIDIA module).
	nvidiaChosen := slices.ContainsFunc(sel.Files, func(f *hostdrivers.DriverFile) bool { return !f.CatalogEntry().Mesa })
	switch {
	case r.Module.Kind == "" && (nvidiaChosen || len(sel.Files) == 0):
		add(SeverityWarning, "module",
			"no NVIDIA kernel module is loaded (no /sys/module/nvidia/version, /proc/driver/nvidia/version or /sys/module/nvgpu/version, and no WSL2 /dev/dxg): CUDA will report no device",
			"load the driver (modprobe nvidia) or, in a container, expose the host's GPU")
	case hostdrivers.ModuleMismatch(module, sel.Version, compatCovers):
		fix := "point -d at the directory of the " + module + " userspace driver, or install it"
		if hostdrivers.CompareVersions(module, sel.Version) < 0 {
			fix = "the userspace driver was upgraded but the old kernel module is still loaded: reboot (or reload the nvidia module); or " + fix
		}
		add(SeverityBlocking, "module",
			fmt.Sprintf("kernel module %s is loaded but the userspace driver is %s: NVML fails with \"Driver/library version mismatch\" and CUDA with \"CUDA driver version is insufficient\"", module, sel.Version),
			fix)
	}

	// APIs.
	r.Capabilities = capabilityReports(pl, r.Module)
	r.APIs = apiReports(pl, r.Capabilities)
	r.GPUs = gpuReports(root, pl.Exposed())
	gpuFindings(r.GPUs, slices.ContainsFunc(sel.Skipped, func(s hostdrivers.Skipped) bool { return s.Code == hostdrivers.SkipMesaNotTaken }), add)

	// The program.
	progLibcDir, nixProg := programReport(r, do, prog, storeDir, driverID, root, sel, cl, add)

	// The inherited environment.
	envHazards(r, do.Environ, progLibcDir, nixProg, do.ProgramPath != "")

	if do.Companion {
		r.Companion = companionReport(&opts, do.CacheDir)
	}

	// The cache.
	if do.CacheDir != "" {
		r.Cache = cacheReport(do.CacheDir)
		if r.Cache.Refused != "" {
			add(SeverityBlocking, "cache", r.Cache.Refused, "pass --cache-dir DIR with a directory of yours that only you can write")
		}
		if len(cands) > 0 && r.Cache.Refused == "" {
			key := pl.Key
			r.Cache.Entry = filepath.Join(do.CacheDir, key)
			if m, err := hostdrivers.ReadManifest(r.Cache.Entry); err == nil && m.Key == key {
				r.Cache.Built = true
			}
			if !r.Cache.Writable && !r.Cache.Built {
				add(SeverityBlocking, "cache", fmt.Sprintf("the cache directory %s is not writable and holds no entry for this driver", do.CacheDir),
					"pass --cache-dir DIR, or set XDG_CACHE_HOME, to a writable directory")
			}
		}
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

// companionReport resolves the 32-bit companion of o's target as the
// launch does (hostdrivers.Companion, then Resolve); nil when the target
// has none (not an x86-64 program).
func companionReport(o *hostdrivers.Options, cacheDir string) *CompanionReport {
	o32, ok := hostdrivers.CompanionOptions(o)
	if !ok {
		return nil
	}
	t32 := o32.TargetIdent()
	cr := &CompanionReport{Class: t32.Class.String(), Machine: t32.Machine.String()}
	pl, err := hostdrivers.Resolve(o32)
	switch {
	case err != nil:
		cr.None = err.Error()
	default:
		cr.Version, cr.Files = pl.Selection.Version, len(pl.Selection.Files)
		if cacheDir != "" {
			cr.Entry = filepath.Join(cacheDir, pl.Key)
		}
	}
	return cr
}

// dirReports says, for each directory searched, how many distinct driver
// files it held, how many the selection used (chosen: by real file), and
// why none were.
func dirReports(sources []hostdrivers.Source, cands []hostdrivers.Candidate, sel *hostdrivers.Selection, chosen map[string]bool) []DirReport {
	out := []DirReport{}
	wrongArch := map[string]string{}
	otherSkip := map[string]string{}
	for _, s := range sel.Skipped {
		if s.Code == hostdrivers.SkipWrongArch {
			wrongArch[s.Path] = s.Reason
		} else {
			otherSkip[s.Path] = s.Reason
		}
	}
	for _, s := range sources {
		dr := DirReport{Dir: s.Dir, Origin: s.Origin}
		reals := map[string]bool{}
		var note string
		allWrong := true
		for _, c := range cands {
			if c.Dir != s.Dir && c.Dir != path.Join(s.Dir, "vdpau") && c.Dir != path.Join(s.Dir, "gbm") {
				continue
			}
			if reals[c.Real] {
				continue
			}
			reals[c.Real] = true
			p := path.Join(c.Dir, c.Name)
			if chosen[c.Real] {
				dr.Used++
			}
			if why, ok := wrongArch[p]; ok {
				if note == "" {
					note = why
				}
			} else {
				allWrong = false
				if why, ok := otherSkip[c.Real]; ok && note == "" {
					note = why
				}
			}
		}
		dr.DriverFiles = len(reals)
		switch {
		case dr.DriverFiles == 0:
			dr.Note = "no driver files"
		case dr.Used > 0:
		case allWrong:
			dr.Note = note
		case note != "":
			dr.Note = note
		default:
			dr.Note = "its files were found earlier in search order"
		}
		out = append(out, dr)
	}
	return out
}

// compatReports renders the selection's verdicts on the cuda_compat
// libcudas given with -d (hostdrivers.Selection.CompatChecks: the launch's
// own, against the plan's kernel reading); covers is true when a chosen
// one is usable (the module then need not match the driver version).
func compatReports(sel *hostdrivers.Selection, add func(sev, topic, msg, fix string)) (out []CompatReport, covers bool) {
	out = []CompatReport{}
	for _, c := range sel.CompatChecks {
		if c.Err != nil {
			add(SeverityWarning, "cuda_compat", fmt.Sprintf("%s: unreadable forward-compatibility note: %v", c.Path, c.Err), "")
			continue
		}
		cr := CompatReport{Path: c.Path, Version: c.Version, CUDA: c.Note.CUDA, Branches: c.Note.Driver, Usable: c.Usable, Reason: c.Reason, Chosen: c.Chosen}
		if cr.Branches == nil {
			cr.Branches = []int{}
		}
		if cr.Chosen && cr.Usable {
			covers = true
		}
		out = append(out, cr)
	}
	return out, covers
}

// apiReports says, per API, which chosen files, vendor files (the host's,
// or made) and backends serve it. An API is available when a file of its
// own serves it, when a vendor file leads to a driver file, or when a row
// of the per-API table (caps) finds its library with the vendor file it
// needs: the summary and the table read one plan and cannot disagree.
func apiReports(pl *hostdrivers.Plan, caps []CapabilityReport) []APIReport {
	out := []APIReport{}
	for _, a := range hostdrivers.APIs() {
		ar := APIReport{API: a, Files: []string{}, Data: []string{}}
		for _, f := range pl.Selection.Files {
			if f.API == a {
				ar.Files = append(ar.Files, f.Real)
			}
		}
		for _, v := range pl.Vendor {
			switch {
			case v.API != a:
			case v.Made != "":
				ar.Made = append(ar.Made, v.Dest)
			default:
				ar.Data = append(ar.Data, v.Source)
			}
		}
		for _, c := range capabilities {
			if c.api != a || !strings.Contains(c.lib, "/") {
				continue
			}
			for _, cr := range caps {
				if cr.Name == c.name && cr.Found {
					ar.Backends = append(ar.Backends, c.lib)
				}
			}
		}
		ar.Available = len(ar.Files) > 0 || len(ar.Backends) > 0 || (len(ar.Data) > 0 || len(ar.Made) > 0) && len(pl.Selection.Files) > 0
		out = append(out, ar)
	}
	return out
}

// programReport describes PROGRAM (r.Program) as the loader will see it:
// its architecture against the driver's, its interpreter, and the glibc
// and libstdc++ versions the driver needs against its own. It returns the
// directory of the program's libc ("" when it has none of its own) and
// whether it is a Nix program.
func programReport(r *Report, do DoctorOptions, prog *elfscan.Info, storeDir string, driverID *elfscan.Ident, root string, sel *hostdrivers.Selection, cl *hostdrivers.Closure, add func(sev, topic, msg, fix string)) (progLibcDir string, nixProg bool) {
	if do.ProgramPath != "" {
		pr := &ProgramReport{Path: do.ProgramPath, ELF: do.Program, GlibcTooNew: []VersionProblem{}, CXXTooNew: []VersionProblem{}}
		r.Program = pr
		if prog != nil {
			pr.Class, pr.Machine, pr.Interp = prog.Class.String(), prog.Machine.String(), prog.Interp
			switch {
			case prog.Interp == "":
				pr.InterpKind = "static"
			case strings.HasPrefix(prog.Interp, strings.TrimSuffix(storeDir, "/")+"/"):
				pr.InterpKind = "nix-store"
				nixProg = true
			default:
				pr.InterpKind = "fhs"
				pr.NixLD = do.NixLD
			}
			if driverID != nil && !prog.Ident.Compatible(*driverID) && len(sel.Files) > 0 {
				add(SeverityBlocking, "architecture",
					fmt.Sprintf("the program is %s %s but the driver is %s %s", prog.Class, prog.Machine, driverID.Class, driverID.Machine),
					"point -d at the driver's libraries for the program's architecture")
			}
			if prog.Interp != "" {
				real, err := filepath.EvalSymlinks(prog.Interp)
				if err != nil {
					if pr.InterpKind == "fhs" && !pr.NixLD {
						add(SeverityBlocking, "interpreter", fmt.Sprintf("the program's interpreter %s does not exist: an FHS binary cannot start here", prog.Interp),
							"on NixOS enable nix-ld (programs.nix-ld.enable = true), or run a Nix build of the program")
					} else if !pr.NixLD {
						add(SeverityBlocking, "interpreter", fmt.Sprintf("the program's interpreter %s does not exist (store path missing or garbage-collected?)", prog.Interp),
							"rebuild or re-fetch the program")
					}
					real = prog.Interp
				}
				if !pr.NixLD {
					progLibcDir = filepath.Dir(real)
				}
			}
		}
		if progLibcDir != "" {
			checkGlibc(r, pr, root, progLibcDir, sel, cl)
			checkCXX(r, pr, root, progLibcDir, prog, sel, cl)
		}
		if prog != nil {
			checkMesaLoaders(prog, cl, add)
		}
	}
	return progLibcDir, nixProg
}

func sevRank(s string) int {
	if s == SeverityBlocking {
		return 0
	}
	return 1
}

// dirProblem says why directory d (inside root) cannot be searched, and
// whether it cannot.
func dirProblem(root, d string) (hostdrivers.Skipped, bool) {
	if !path.IsAbs(d) {
		return hostdrivers.Skipped{Path: d, Reason: "not an absolute path", Code: hostdrivers.SkipNotAbsolute}, true
	}
	p, err := ldpath.Resolve(root, d)
	if err == nil {
		var fi os.FileInfo
		if fi, err = os.Stat(ldpath.HostPath(root, p)); err == nil {
			if !fi.IsDir() {
				return hostdrivers.Skipped{Path: d, Reason: "not a directory", Code: hostdrivers.SkipNotDir}, true
			}
			return hostdrivers.Skipped{}, false
		}
	}
	return tidy(hostdrivers.Skipped{Path: d, Reason: err.Error(), Code: hostdrivers.CodeOf(err)}), true
}

// tidy shortens the reason of a file-system error for the report, by its
// code.
func tidy(s hostdrivers.Skipped) hostdrivers.Skipped {
	switch s.Code {
	case hostdrivers.SkipMissing:
		s.Reason = "missing"
	case hostdrivers.SkipUnreadable:
		s.Reason = "unreadable: permission denied"
	case hostdrivers.SkipNotDir:
		s.Reason = "not a directory"
	}
	return s
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
			if !hostdrivers.IsGlibcFamily(vn.File) {
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
			Severity: SeverityBlocking, Topic: "glibc",
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
func checkMesaLoaders(prog *elfscan.Info, cl *hostdrivers.Closure, add func(sev, topic, msg, fix string)) {
	for _, n := range mesaPrivate {
		if !slices.Contains(prog.Needed, n) {
			continue
		}
		for _, d := range cl.Deps {
			if d.Name != n {
				continue
			}
			add(SeverityWarning, "mesa",
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
			Severity: SeverityBlocking, Topic: "libstdc++",
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

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
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
	f, err := elf.Open(hp)
	if err != nil {
		return []string{}
	}
	defer f.Close()
	syms, err := f.ImportedSymbols()
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

// vendorVars are the variables nixglhost sets that a user may already
// have set, with what their being set does.
var vendorVars = []struct{ name, effect string }{
	{"__GLX_VENDOR_LIBRARY_NAME", ""},
	{"__EGL_VENDOR_LIBRARY_FILENAMES", "it overrides the vendor directories: nixglhost's EGL vendor file is ignored"},
	{"__EGL_VENDOR_LIBRARY_DIRS", "it is kept and nixglhost's directory appended: a vendor listed there is tried first"},
	{"VK_ICD_FILENAMES", "it is kept and nixglhost's ICD appended: the Vulkan loader also offers the drivers listed there"},
	{"VK_DRIVER_FILES", "it is kept and nixglhost's ICD appended: the Vulkan loader also offers the drivers listed there"},
}

// envHazards reports the inherited variables that bear on the driver.
func envHazards(r *Report, env []string, progLibcDir string, nixProg, haveProg bool) {
	for _, k := range []string{"LD_LIBRARY_PATH", "LD_PRELOAD"} {
		if v, ok := hostdrivers.LookupEnv(env, k); ok {
			r.Environment = append(r.Environment, EnvVar{k, v})
		}
	}
	sev := SeverityWarning
	if nixProg {
		sev = SeverityBlocking
	}
	who := "a Nix program"
	if nixProg {
		who = "the program"
	}
	for _, h := range glibcInLibraryPath(env, progLibcDir) {
		r.Findings = append(r.Findings, Finding{sev, "environment",
			h + ": " + who + " would load that glibc instead of its own and fail (symbol lookup errors or a crash)",
			"remove it: nixglhost adds the driver's directory by itself"})
	}
	for _, vv := range vendorVars {
		v, ok := hostdrivers.LookupEnv(env, vv.name)
		if !ok {
			continue
		}
		r.Environment = append(r.Environment, EnvVar{vv.name, v})
		effect := vv.effect
		if vv.name == "__GLX_VENDOR_LIBRARY_NAME" {
			if v == "nvidia" {
				continue
			}
			effect = "GLX will use that vendor's library, not NVIDIA's"
		}
		r.Findings = append(r.Findings, Finding{SeverityWarning, "environment",
			fmt.Sprintf("%s is already set (%q): %s", vv.name, v, effect), "unset it unless you mean it"})
	}
}

// glibcInLibraryPath returns one description per LD_LIBRARY_PATH directory
// holding glibc family members and per LD_PRELOAD entry naming one,
// except the program's own glibc directory. It reads directory entries
// only.
func glibcInLibraryPath(env []string, ownDir string) []string {
	var out []string
	lp, _ := hostdrivers.LookupEnv(env, "LD_LIBRARY_PATH")
	for _, d := range strings.Split(lp, ":") {
		if d == "" || !filepath.IsAbs(d) || d == ownDir {
			continue
		}
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		var names []string
		for _, e := range ents {
			if n := e.Name(); hostdrivers.IsGlibcFamily(n) && strings.Contains(n, ".so.") {
				names = append(names, n)
			}
		}
		if len(names) > 0 {
			if len(names) > 3 {
				names = append(names[:3], "...")
			}
			out = append(out, "LD_LIBRARY_PATH entry "+d+" holds "+strings.Join(names, ", "))
		}
	}
	pre, _ := hostdrivers.LookupEnv(env, "LD_PRELOAD")
	for _, p := range strings.FieldsFunc(pre, func(c rune) bool { return c == ':' || c == ' ' || c == '\t' }) {
		if hostdrivers.IsGlibcFamily(path.Base(p)) && filepath.Dir(p) != ownDir {
			out = append(out, "LD_PRELOAD names "+p+", a glibc library")
		}
	}
	return out
}

// cacheReport describes the cache directory dir.
func cacheReport(dir string) CacheReport {
	cr := CacheReport{Dir: dir}
	ents, err := os.ReadDir(dir)
	if err == nil {
		cr.Exists = true
		for _, e := range ents {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			cr.Entries++
			filepath.WalkDir(filepath.Join(dir, e.Name()), func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return nil
				}
				if fi, err := d.Info(); err == nil && !d.IsDir() {
					cr.Bytes += fi.Size()
				}
				return nil
			})
		}
	}
	// Prepare's own check: a refused root is neither read nor written.
	if fi, err := os.Lstat(dir); err == nil {
		if err := hostdrivers.CheckCacheRoot(dir, fi); err != nil {
			cr.Refused = err.Error()
			return cr
		}
	}
	// The nearest existing directory decides whether it can be made.
	p := dir
	for {
		if _, err := os.Stat(p); err == nil {
			cr.Writable = unix.Access(p, unix.W_OK|unix.X_OK) == nil
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	return cr
}

// Text renders the report for a person: the findings first, then one
// short section per topic.
func (r *Report) Text() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	switch r.Blocking {
	case 0:
		p("nixglhost doctor: nothing blocks\n")
	case 1:
		p("nixglhost doctor: 1 blocking finding\n")
	default:
		p("nixglhost doctor: %d blocking findings\n", r.Blocking)
	}
	for _, f := range r.Findings {
		tag := "warning "
		if f.Severity == SeverityBlocking {
			tag = "BLOCKING"
		}
		p("  %s [%s] %s\n", tag, f.Topic, f.Message)
		if f.Fix != "" {
			p("           fix: %s\n", f.Fix)
		}
	}

	p("\ndriver directories (root %s)\n", r.Root)
	if len(r.Dirs) == 0 {
		p("  (none)\n")
	}
	for _, d := range r.Dirs {
		used := fmt.Sprintf("%s, %d used", plural(d.DriverFiles, "driver file"), d.Used)
		if d.DriverFiles == 0 {
			used = "no driver files"
		} else if d.Note != "" {
			used += ": " + d.Note
		}
		p("  %-15s %s: %s\n", d.Origin, d.Dir, used)
	}
	var versionSkips, dupSkips, otherFiles, sameDirs int
	var missing []string
	for _, s := range r.Skipped {
		switch {
		case s.Code == hostdrivers.SkipMissing:
			missing = append(missing, s.Path)
		case s.Code == hostdrivers.SkipSameDir:
			sameDirs++
		case s.Code == hostdrivers.SkipOtherVersion:
			versionSkips++
		case s.Code == hostdrivers.SkipShadowed:
			dupSkips++
		case s.Code == hostdrivers.SkipWrongArch:
			otherFiles++
		default:
			p("  skipped         %s: %s\n", s.Path, s.Reason)
		}
	}
	if len(missing) > 0 {
		p("  missing         %s\n", strings.Join(missing, ", "))
	}
	if sameDirs > 0 {
		p("  skipped         %d directories named twice (links, merged /usr)\n", sameDirs)
	}
	if otherFiles > 0 {
		p("  skipped         %s of the wrong architecture\n", plural(otherFiles, "file"))
	}
	if versionSkips > 0 {
		p("  skipped         %s of other driver versions\n", plural(versionSkips, "file"))
	}
	if dupSkips > 0 {
		p("  skipped         %s found again later in search order\n", plural(dupSkips, "file"))
	}

	p("\nkernel module    ")
	switch {
	case r.Module.Kind == "":
		p("none loaded\n")
	default:
		p("%s %s (%s)", r.Module.Kind, orUnknown(r.Module.Version), r.Module.Source)
		if r.Module.Release != "" {
			p("; %s", r.Module.Release)
		}
		p("\n")
	}
	p("userspace driver ")
	if r.Driver.Files == 0 {
		p("none\n")
	} else {
		v := r.Driver.Version
		if v == "" {
			v = "unversioned"
		}
		p("%s, %d files, %s %s: %s\n", v, r.Driver.Files, r.Driver.Class, r.Driver.Machine, r.Driver.Reason)
	}
	for _, v := range r.Driver.Versions {
		mark := "not chosen"
		if v.Chosen {
			mark = "chosen"
		}
		p("  version %-12s %s, in %s\n", v.Version, mark, strings.Join(v.Dirs, ", "))
	}
	if len(r.Driver.Missing) > 0 {
		var names []string
		for _, m := range r.Driver.Missing {
			names = append(names, m.Path)
		}
		p("  not on the host (optional unless an API below needs it): %s\n", strings.Join(names, ", "))
	}
	if c := r.Companion; c != nil {
		if c.None != "" {
			p("32-bit companion none: %s\n", c.None)
		} else {
			p("32-bit companion %s, %d files, %s %s\n", orUnknown(c.Version), c.Files, c.Class, c.Machine)
		}
	}
	for _, c := range r.Compat {
		p("cuda_compat      %s (CUDA %s, branches %v): usable=%t chosen=%t: %s\n", c.Path, orUnknown(c.CUDA), c.Branches, c.Usable, c.Chosen, c.Reason)
	}

	p("\nAPIs\n")
	var none []string
	for _, a := range r.APIs {
		if !a.Available {
			none = append(none, string(a.API))
			continue
		}
		from := ""
		switch {
		case len(a.Files) > 0:
			from = path.Base(a.Files[0])
			if len(a.Files) > 1 {
				from += fmt.Sprintf(" +%d", len(a.Files)-1)
			}
			from += " in " + path.Dir(a.Files[0])
		case len(a.Data) > 0:
			from = a.Data[0]
		case len(a.Backends) > 0:
			from = "backend lib/" + strings.Join(a.Backends, ", lib/")
		}
		if len(a.Made) > 0 {
			if from != "" {
				from += "; "
			}
			from += "vendor file made: " + strings.Join(a.Made, ", ")
		}
		p("  %-13s yes  %s\n", a.API, from)
	}
	if len(none) > 0 {
		p("  not available: %s\n", strings.Join(none, ", "))
	}
	for _, g := range r.GPUs {
		state := "in the entry"
		switch {
		case len(g.Wants) == 0:
			state = "no known userspace driver"
		case len(g.Missing) > 0:
			state = "missing " + strings.Join(g.Missing, ", ")
		}
		p("gpu              %s %s (%s, %s): %s\n", g.Card, orUnknown(g.VendorName), g.Vendor, orUnknown(g.Kernel), state)
	}
	if len(r.Capabilities) > 0 {
		p("\nper API          library in lib/            vendor file\n")
	}
	for _, c := range r.Capabilities {
		found := "missing"
		if c.Found {
			found = "found"
		}
		vendor := "-"
		if c.Vendor != "" {
			vendor = c.Vendor
			if c.VendorFile != "" {
				vendor += " " + c.VendorFile
			}
		}
		p("  %-7s %-7s %-26s %s\n          %s\n", c.Name, found, c.Library, vendor, c.Outcome)
	}

	if pr := r.Program; pr != nil {
		p("\nprogram          %s\n", pr.Path)
		if pr.ELF == "" {
			p("  not an ELF file and no interpreter found\n")
		} else {
			if pr.ELF != pr.Path {
				p("  runs           %s\n", pr.ELF)
			}
			p("  ELF            %s %s (driver: %s %s)\n", pr.Class, pr.Machine, orUnknown(r.Driver.Class), orUnknown(r.Driver.Machine))
			switch pr.InterpKind {
			case "static":
				p("  interpreter    none (static)\n")
			case "fhs":
				via := "the host's loader"
				if pr.NixLD {
					via = "nix-ld serves it"
				}
				p("  interpreter    %s (FHS; %s)\n", pr.Interp, via)
			default:
				p("  interpreter    %s (Nix store)\n", pr.Interp)
			}
			if pr.Libc != "" {
				p("  glibc          %s (%s)", orUnknown(pr.Glibc), pr.Libc)
				if pr.DriverGlibc != "" {
					p("; the driver needs up to %s (%s)", pr.DriverGlibc, path.Base(pr.DriverGlibcBy))
				}
				p("\n")
			}
			for _, g := range pr.GlibcTooNew {
				p("    too new      %s: %s from %s %s\n", g.File, g.Version, g.Library, symList(g.Symbols))
			}
			if pr.Libstdcxx != "" {
				p("  libstdc++      GLIBCXX_%s (%s)\n", orUnknown(pr.Glibcxx), pr.Libstdcxx)
			} else if pr.Libc != "" {
				p("  libstdc++      not loaded by the program (the driver's comes from the host, hidden)\n")
			}
			for _, g := range pr.CXXTooNew {
				p("    too new      %s: %s from %s %s\n", g.File, g.Version, g.Library, symList(g.Symbols))
			}
		}
	}

	if len(r.Environment) == 0 {
		p("\nenvironment      nothing inherited that bears on the driver\n")
	} else {
		p("\nenvironment\n")
		for _, e := range r.Environment {
			p("  %s=%s\n", e.Name, e.Value)
		}
	}
	if r.Cache.Dir != "" {
		c := r.Cache
		w := "writable"
		if !c.Writable {
			w = "NOT writable"
		}
		if c.Refused != "" {
			w = "REFUSED: " + c.Refused
		}
		state := "does not exist yet"
		if c.Exists {
			state = fmt.Sprintf("%s, %s", plural(c.Entries, "entry"), humanBytes(c.Bytes))
		}
		p("cache            %s: %s, %s", c.Dir, state, w)
		if c.Entry != "" {
			if c.Built {
				p("; this driver's entry is built")
			} else {
				p("; this driver's entry will be built on first launch")
			}
		}
		p("\n")
	}
	return b.String()
}

func plural(n int, what string) string {
	switch {
	case n == 1:
		return "1 " + what
	case strings.HasSuffix(what, "y"):
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(what, "y"))
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func symList(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return "(" + strings.Join(s, ", ") + ")"
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
