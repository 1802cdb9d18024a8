package hostdrivers

import (
	"os"
	"path"
	"sort"
	"syscall"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// FileID is the identity of a host file: where it is and what it is now. A
// change of any field (a driver upgrade) changes the cache key.
type FileID struct {
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
}

func fileID(fi os.FileInfo) FileID {
	id := FileID{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.Dev, id.Ino = uint64(st.Dev), st.Ino
	}
	return id
}

// Candidate is a driver file found in a scanned directory.
type Candidate struct {
	// Name is the directory entry's name (a soname link or the real file).
	Name string
	// Dir is the directory it was found in, inside the root.
	Dir string
	// Real is the resolved path of the file it names, inside the root.
	Real string
	// Entry is its catalogue entry.
	Entry catalog.Entry
	// Version is the driver version its real file name carries, or "".
	Version string
	// ID identifies the real file.
	ID FileID
	// Origin is the discovery source of Dir.
	Origin Origin
}

// Skipped is a file or directory left out, with the reason.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	// Code classifies Reason (empty in manifests written before it).
	Code SkipCode `json:"code,omitempty"`
}

// scan lists each source directory and returns the catalogued driver files
// in it, in source order and name order within a directory. It reads
// directory entries, links and file identities; it never reads file
// contents. It records in w (nil: nowhere) the directories listed, the
// directories holding links it followed, and the files found.
func scan(root string, sources []Source, w *watchSet) ([]Candidate, []Skipped) {
	var out []Candidate
	var skipped []Skipped
	// scanDir lists one directory; in a subdirectory (vdpau/, dri/) only
	// the files that belong there count.
	scanDir := func(src Source, dir string, only func(catalog.Entry) bool) {
		w.add(ldpath.HostPath(root, dir))
		ents, err := os.ReadDir(ldpath.HostPath(root, dir))
		if err != nil {
			skipped = append(skipped, Skipped{dir, err.Error(), CodeOf(err)})
			return
		}
		names := make([]string, 0, 16)
		for _, e := range ents {
			if ent, ok := catalog.Classify(e.Name()); ok && (only == nil || only(ent)) {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, name := range names {
			p := path.Join(dir, name)
			real, err := ldpath.ResolveFrom(root, dir, name, func(link string) {
				w.add(ldpath.HostPath(root, path.Dir(link)))
			})
			if err != nil {
				skipped = append(skipped, Skipped{p, "unresolvable: " + err.Error(), SkipUnresolvable})
				continue
			}
			hp := ldpath.HostPath(root, real)
			fi, err := os.Stat(hp)
			if err != nil {
				skipped = append(skipped, Skipped{p, err.Error(), CodeOf(err)})
				continue
			}
			if !fi.Mode().IsRegular() {
				skipped = append(skipped, Skipped{p, "not a regular file", SkipNotRegular})
				continue
			}
			w.addID(hp, fileID(fi))
			ent, _ := catalog.Classify(name)
			v := catalog.DriverVersion(path.Base(real))
			if v == "" {
				v = catalog.DriverVersion(name)
			}
			out = append(out, Candidate{Name: name, Dir: dir, Real: real, Entry: ent, Version: v, ID: fileID(fi), Origin: src.Origin})
		}
	}
	for _, src := range sources {
		scanDir(src, src.Dir, nil)
		// Debian and Ubuntu keep the VDPAU driver in <libdir>/vdpau/,
		// where libvdpau looks for it, and Mesa its DRI and VA-API
		// drivers in <libdir>/dri/ (both go to the entry's lib/).
		for sub, only := range subdirs {
			sub := path.Join(src.Dir, sub)
			if fi, err := os.Stat(ldpath.HostPath(root, sub)); err == nil && fi.IsDir() {
				scanDir(src, sub, only)
			}
		}
	}
	return out, skipped
}

// subdirs are the subdirectories of a driver directory that hold driver
// files, with the files that count there.
var subdirs = map[string]func(catalog.Entry) bool{
	"vdpau": func(e catalog.Entry) bool { return e.Kind == catalog.KindVDPAU },
	"dri":   func(e catalog.Entry) bool { return e.API == catalog.APIDRI || e.API == catalog.APIVA },
}
