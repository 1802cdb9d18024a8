package hostdrivers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"
)

// FormatVersion is the cache entry layout version; a change makes new keys.
const FormatVersion = 1

// Manifest records what a cache entry holds and where it came from. It is
// written last, so an entry with a valid manifest is complete.
type Manifest struct {
	Format int    `json:"format"`
	Key    string `json:"key"`
	Root   string `json:"root"`
	// Host is the name of the machine that built the entry: on a home
	// directory shared by many nodes, only the builder judges whether
	// the entry's driver files are still there.
	Host string `json:"host,omitempty"`
	// Mode says which kind of launch built the entry; SeenAt, for a
	// self-contained one, is where its vendor files say programs see it
	// (RUN/opengl-driver): a link there to the entry means it is in use.
	// Both are absent in entries built before they were recorded.
	Mode          EntryMode `json:"mode,omitempty"`
	SeenAt        string    `json:"seen_at,omitempty"`
	Class         string    `json:"class"`
	Machine       string    `json:"machine"`
	DriverVersion string    `json:"driver_version"`
	ModuleVersion string    `json:"module_version,omitempty"`
	// Compat is the cuda_compat libcuda the entry uses in place of the
	// host's (inside the root), "" for none (Selection.Compat).
	Compat  string        `json:"compat,omitempty"`
	Reason  string        `json:"reason"`
	APIs    []catalog.API `json:"apis"`
	Files   []*DriverFile `json:"files"`
	Deps    []*Dep        `json:"deps"`
	Data    []DataOut     `json:"data,omitempty"`
	Missing []Skipped     `json:"missing,omitempty"`
	Skipped []Skipped     `json:"skipped,omitempty"`
	// GlibcNeeds is the highest GLIBC_ version each file needs, for the
	// launch path's check (LaunchWarnings); absent in older entries.
	GlibcNeeds []GlibcNeed `json:"glibc_needs,omitempty"`
}

// EntryMode says which kind of launch built a cache entry. Its values are
// the words --cache-list and the manifest use.
type EntryMode string

// The entry modes.
const (
	// EntryWrapper is the launch's entry: lib/ goes on LD_LIBRARY_PATH.
	EntryWrapper EntryMode = "wrapper"
	// EntrySelfContained is the entry of system mode, the pre-build hook
	// and the CDI spec: it works with no environment.
	EntrySelfContained EntryMode = "self-contained"
	// EntryModeUnknown is an entry built before the mode was recorded.
	EntryModeUnknown EntryMode = "unknown"
)

// entryMode is the mode of the entry o builds.
func (o *Options) entryMode() EntryMode {
	if o.SelfContained {
		return EntrySelfContained
	}
	return EntryWrapper
}

// DataOut is a vendor data file written into the entry.
type DataOut struct {
	API    catalog.API `json:"api"`
	Dest   string      `json:"dest"`
	Source string      `json:"source"`
	// Made says why nixglhost wrote the file itself (the host has none
	// for a library the entry holds); "" for a host file rewritten.
	Made string `json:"made,omitempty"`
}

// Has reports whether the entry provides api.
func (m *Manifest) Has(api catalog.API) bool {
	for _, a := range m.APIs {
		if a == api {
			return true
		}
	}
	return false
}

// HasData reports whether the entry holds a data file under dir (relative to
// the entry, e.g. "share/vulkan/icd.d").
func (m *Manifest) HasData(dir string) bool {
	for _, d := range m.Data {
		if filepath.Dir(d.Dest) == dir {
			return true
		}
	}
	return false
}

// DataFilesIn returns the entry-relative paths of the data files under dir.
func (m *Manifest) DataFilesIn(dir string) []string {
	var out []string
	for _, d := range m.Data {
		if filepath.Dir(d.Dest) == dir {
			out = append(out, d.Dest)
		}
	}
	return out
}

// ReadManifest reads and checks the manifest of the entry at dir. It
// follows no symlink: an entry or manifest that is one was not made by
// nixglhost and is refused.
func ReadManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, "manifest.json")
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("cache entry %s: not a directory", dir)
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("manifest %s: a symbolic link", p)
		}
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", p, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", p, err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("manifest %s: format %d, want %d", p, m.Format, FormatVersion)
	}
	return &m, nil
}
