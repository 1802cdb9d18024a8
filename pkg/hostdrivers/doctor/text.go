package doctor

import (
	"fmt"
	"path"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// printer prints one formatted piece of the text report.
type printer func(format string, args ...any)

// Text renders the report for people: the verdict and the findings first,
// then what was found, one section per renderer below, each reading only
// the Report (the JSON contract).
func (r *Report) Text() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	for _, section := range []func(*Report, printer){
		(*Report).textSummary, (*Report).textDirs, (*Report).textDriver, (*Report).textAPIs,
		(*Report).textCapabilities, (*Report).textProgram, (*Report).textEnvironment, (*Report).textCache,
	} {
		section(r, p)
	}
	return b.String()
}

// textSummary renders: summary and findings: the verdict, then each finding with its fix.
func (r *Report) textSummary(p printer) {
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
}

// textDirs renders: the directories searched, and what the scan skipped.
func (r *Report) textDirs(p printer) {
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
}

// textDriver renders: the kernel driver, the userspace driver chosen, the 32-bit companion and the cuda_compat verdicts.
func (r *Report) textDriver(p printer) {
	p("\nkernel module    ")
	switch {
	case r.Module.Kind == "":
		p("none loaded\n")
	default:
		p("%s %s (%s)", r.Module.Kind, orUnknown(r.Module.Version), r.Module.Source)
		if r.Module.Release != "" {
			p("; %s", r.Module.Release)
		}
		if r.Module.Display != "" {
			p("; nvidia %s drives the display only", r.Module.Display)
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
}

// textAPIs renders: the APIs the entry serves, and the GPUs of /sys/class/drm.
func (r *Report) textAPIs(p printer) {
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
}

// textCapabilities renders: the per-API table.
func (r *Report) textCapabilities(p printer) {
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
}

// textProgram renders: pROGRAM as the loader will see it.
func (r *Report) textProgram(p printer) {
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
}

// textEnvironment renders: the inherited variables that bear on the driver.
func (r *Report) textEnvironment(p printer) {
	if len(r.Environment) == 0 {
		p("\nenvironment      nothing inherited that bears on the driver\n")
	} else {
		p("\nenvironment\n")
		for _, e := range r.Environment {
			p("  %s=%s\n", e.Name, e.Value)
		}
	}
}

// textCache renders: the cache directory.
func (r *Report) textCache(p printer) {
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

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
