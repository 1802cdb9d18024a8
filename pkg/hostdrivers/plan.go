package hostdrivers

import (
	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"
)

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
func (f *DriverFile) CatalogEntry() catalog.Entry { return f.entry }

// ELF returns what was read of the dependency's ELF headers.
func (d *Dep) ELF() *elfscan.Info { return d.info }
