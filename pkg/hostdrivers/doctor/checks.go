package doctor

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// checks are the doctor's checks, in report order. Each reads the facts
// (the plan and the host around it) and fills its own sections of the
// report and adds its findings; none decides what the launch does.
var checks = []func(*facts, *Report){
	checkPlan, checkDirs, checkDriver, checkCompat, checkModule, checkAPIs,
	checkProgram, checkEnvironment, checkCompanion, checkCache,
}

// add appends a finding.
func (r *Report) add(sev Severity, topic Topic, msg, fix string) {
	r.Findings = append(r.Findings, Finding{sev, topic, msg, fix})
}

// checkPlan reports a plan that could not be resolved, or only in part.
func checkPlan(f *facts, r *Report) {
	if f.resolveErr != nil {
		r.add(SeverityBlocking, TopicDriver, f.resolveErr.Error(), "")
	}
	if f.searchErr != nil {
		r.add(SeverityWarning, TopicDriver, "host library search unavailable: "+f.searchErr.Error(), "")
	}
}

// checkDirs reports the directories searched and what was skipped.
func checkDirs(f *facts, r *Report) {
	pl := f.pl
	r.Skipped = append(r.Skipped, f.badDirs...)
	for _, d := range pl.Dropped {
		if s, bad := dirProblem(f.root, d.Path); bad {
			d = s
		}
		r.Skipped = append(r.Skipped, d)
	}
	for _, s := range pl.Scanned {
		r.Skipped = append(r.Skipped, tidy(s))
	}
	r.Skipped = append(r.Skipped, pl.Selection.Skipped...)
	chosen := map[string]bool{}
	for _, df := range pl.Selection.Files {
		chosen[df.Real] = true
	}
	r.Dirs = dirReports(pl.Sources, pl.Candidates, pl.Selection, chosen)
}

// checkDriver reports the userspace driver chosen, and blocks when there
// is none the program can load.
func checkDriver(f *facts, r *Report) {
	sel, t := f.pl.Selection, f.target
	r.Driver.Missing = append(r.Driver.Missing, f.pl.Closure.Missing...)
	r.Driver.Version, r.Driver.Reason, r.Driver.Files = sel.Version, sel.Reason, len(sel.Files)
	for _, v := range sel.Versions {
		vs := VersionSeen{Version: v, Chosen: v == sel.Version, Dirs: []string{}}
		for _, c := range f.pl.Candidates {
			if c.Version == v && !slices.Contains(vs.Dirs, c.Dir) {
				vs.Dirs = append(vs.Dirs, c.Dir)
			}
		}
		r.Driver.Versions = append(r.Driver.Versions, vs)
	}
	if id := f.driverID; id != nil {
		r.Driver.Class, r.Driver.Machine = id.Class.String(), id.Machine.String()
	}
	if len(sel.Files) > 0 {
		return
	}
	wrongArch := slices.ContainsFunc(sel.Skipped, func(s hostdrivers.Skipped) bool { return s.Code == hostdrivers.SkipWrongArch })
	switch {
	case wrongArch && f.driverID != nil:
		r.add(SeverityBlocking, TopicArchitecture,
			fmt.Sprintf("the driver found is %s %s but the program is %s %s: no driver file can be loaded", f.driverID.Class, f.driverID.Machine, t.Class, t.Machine),
			"point -d at the driver's libraries for the program's architecture (32-bit ones live in i386-linux-gnu or lib32)")
	default:
		r.add(SeverityBlocking, TopicDriver, "no NVIDIA driver files found: the program will see no GPU",
			"pass -d DIR naming the directory that holds libcuda.so.1 (or --driver-root for a host tree mounted elsewhere)")
	}
}

// checkCompat reports the selection's cuda_compat verdicts.
func checkCompat(f *facts, r *Report) {
	r.Compat, _ = compatReports(f.pl.Selection, r.add)
}

// checkModule reports the kernel driver against the chosen userspace
// driver, by the launch's own rule (hostdrivers.ModuleMismatch). A
// Mesa-only entry needs no NVIDIA module.
func checkModule(f *facts, r *Report) {
	sel, module := f.pl.Selection, f.pl.Module
	r.Module = f.pl.Kernel
	nvidiaChosen := slices.ContainsFunc(sel.Files, func(df *hostdrivers.DriverFile) bool { return !df.CatalogEntry().Mesa })
	switch {
	case r.Module.Kind == "" && (nvidiaChosen || len(sel.Files) == 0):
		r.add(SeverityWarning, TopicModule,
			"no NVIDIA kernel module is loaded (no /sys/module/nvidia/version, /proc/driver/nvidia/version or /sys/module/nvgpu/version, and no WSL2 /dev/dxg): CUDA will report no device",
			"load the driver (modprobe nvidia) or, in a container, expose the host's GPU")
	case hostdrivers.ModuleMismatch(module, sel.Version, sel.Compat != ""):
		fix := "point -d at the directory of the " + module + " userspace driver, or install it"
		if hostdrivers.CompareVersions(module, sel.Version) < 0 {
			fix = "the userspace driver was upgraded but the old kernel module is still loaded: reboot (or reload the nvidia module); or " + fix
		}
		r.add(SeverityBlocking, TopicModule,
			fmt.Sprintf("kernel module %s is loaded but the userspace driver is %s: NVML fails with \"Driver/library version mismatch\" and CUDA with \"CUDA driver version is insufficient\"", module, sel.Version),
			fix)
	}
}

// checkAPIs fills the per-API table, the API summary derived from it, and
// the GPUs with the drivers each needs.
func checkAPIs(f *facts, r *Report) {
	r.Capabilities = capabilityReports(f.pl, f.pl.Kernel)
	r.APIs = apiReports(f.pl, r.Capabilities)
	r.GPUs = gpuReports(f.root, f.pl.Exposed())
	gpuFindings(r.GPUs, slices.ContainsFunc(f.pl.Selection.Skipped, func(s hostdrivers.Skipped) bool { return s.Code == hostdrivers.SkipMesaNotTaken }), r.add)
}

// checkEnvironment reports the inherited variables that bear on the
// driver.
func checkEnvironment(f *facts, r *Report) {
	envHazards(r, f.do.Environ, f.libcDir, f.nixProg, f.do.ProgramPath != "")
}

// checkCompanion reports the 32-bit companion, when the mode makes one.
func checkCompanion(f *facts, r *Report) {
	if f.do.Companion {
		r.Companion = companionReport(&f.opts, f.do.CacheDir, f.pl)
	}
}

// checkCache reports the cache directory and the entry the launch would
// use there.
func checkCache(f *facts, r *Report) {
	dir := f.do.CacheDir
	if dir == "" {
		return
	}
	r.Cache = cacheReport(dir)
	if r.Cache.Refused != "" {
		r.add(SeverityBlocking, TopicCache, r.Cache.Refused, "pass --cache-dir DIR with a directory of yours that only you can write")
	}
	if len(f.pl.Candidates) == 0 || r.Cache.Refused != "" {
		return
	}
	r.Cache.Entry = filepath.Join(dir, f.pl.Key)
	if m, err := hostdrivers.ReadManifest(r.Cache.Entry); err == nil && m.Key == f.pl.Key {
		r.Cache.Built = true
	}
	if !r.Cache.Writable && !r.Cache.Built {
		r.add(SeverityBlocking, TopicCache, fmt.Sprintf("the cache directory %s is not writable and holds no entry for this driver", dir),
			"pass --cache-dir DIR, or set XDG_CACHE_HOME, to a writable directory")
	}
}

// companionReport resolves the 32-bit companion of o's target as the
// launch does (hostdrivers.Companion, then Resolve); nil when the target
// has none (not an x86-64 program).
func companionReport(o *hostdrivers.Options, cacheDir string, main *hostdrivers.Plan) *CompanionReport {
	o32, ok := hostdrivers.CompanionOptions(o)
	if !ok {
		return nil
	}
	// The launch links the companion's 64-bit VDPAU names to the
	// program's entry's lib/vdpau (hostdrivers.VDPAUPeer): from the plan
	// here, since that entry may not be built yet.
	if !o32.SelfContained && cacheDir != "" && main.Key != "" && main.Exposed()["vdpau/libvdpau_nvidia.so.1"] {
		o32.VDPAUPeer = filepath.Join(cacheDir, main.Key, "lib", "vdpau")
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
func compatReports(sel *hostdrivers.Selection, add func(sev Severity, topic Topic, msg, fix string)) (out []CompatReport, covers bool) {
	out = []CompatReport{}
	for _, c := range sel.CompatChecks {
		if c.Err != nil {
			add(SeverityWarning, TopicCompat, fmt.Sprintf("%s: unreadable forward-compatibility note: %v", c.Path, c.Err), "")
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
	for _, a := range catalog.APIs() {
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

func sevRank(s Severity) int {
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
