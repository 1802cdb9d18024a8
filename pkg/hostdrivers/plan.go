package hostdrivers

import "github.com/nixglhost/nixglhost/pkg/elfscan"

// This file is the Plan's face to its views (the doctor): what a report
// needs of the launch's decisions, read-only.

// HostRoot returns the host tree every path is relative to ("/" when Root
// is empty).
func (o *Options) HostRoot() string { return o.root() }

// TargetIdent returns the program's ELF identity, this machine's when
// Target is zero.
func (o *Options) TargetIdent() elfscan.Ident { return o.target() }

// ELF returns what was read of the file's ELF headers (nil for a data
// file).
func (f *DriverFile) ELF() *elfscan.Info { return f.info }

// CatalogEntry returns the file's catalogue entry.
func (f *DriverFile) CatalogEntry() Entry { return f.entry }

// ELF returns what was read of the dependency's ELF headers.
func (d *Dep) ELF() *elfscan.Info { return d.info }

// DataCandidate is a vendor data file found on the host (ScanData).
type DataCandidate = dataCand

// API returns the API the data file serves.
func (d dataCand) API() API { return d.df.API }

// Source returns the data file's path inside the root.
func (d dataCand) Source() string { return d.src }

// ScanData finds the vendor data files of sources, as a launch does.
func ScanData(root string, sources []Source) []DataCandidate { return scanData(root, sources, nil) }

// Key is the cache key of the entry the plan makes for o (see planKey).
func (p *Plan) Key(o *Options, module string, data []DataCandidate) string {
	return planKey(o.root(), o.target(), module, o.SelfContained, o.seenAt(), p.Selection, p.Closure, data)
}

// MadeFiles returns the vendor files the entry will get from nixglhost
// because the host's data files (data) do not name a library it holds.
func (p *Plan) MadeFiles(root string, data []DataCandidate) []DataOut {
	var out []DataOut
	for _, m := range wouldMake(root, p.Selection, data) {
		out = append(out, m.out())
	}
	return out
}

// Dest returns the directory of the entry the data file goes to
// ("share/glvnd/egl_vendor.d").
func (d dataCand) Dest() string { return d.df.Dest }

// Exposed returns every name the entry's lib/ will hold: each chosen
// file's name and its links, and the backends in their subdirectories
// Backends included ("gbm/nvidia-drm_gbm.so", relative to lib/).
func (p *Plan) Exposed() map[string]bool {
	have := exposedNames(p.Selection)
	for _, b := range backendsOf(have) {
		have[b.sub+"/"+b.name] = true
	}
	return have
}
