package hostdrivers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// dataCand is a vendor data file found on the host.
type dataCand struct {
	df   catalog.DataFile
	src  string // inside the root
	base string
	id   FileID
}

// scanData finds the vendor data files: first beside each driver directory
// that is not a system library directory (DIR/../share/..., as
// /usr/local/nvidia and /run/opengl-driver keep them), then in the
// catalogue's system directories. The first file of a given name wins.
// Every directory looked at and file used is recorded in w.
func scanData(root string, sources []Source, w *watchSet) []dataCand {
	var out []dataCand
	for _, df := range catalog.DataFiles() {
		var dirs []string
		seenDir := map[string]bool{}
		for _, s := range sources {
			switch s.Origin {
			case OriginLdSoConf, OriginLdSoCache, OriginDefault:
				// System library directories: their data is in the
				// system directories below.
				continue
			}
			dirs = append(dirs, path.Join(path.Dir(s.Dir), df.Dest))
		}
		dirs = append(dirs, df.Dirs...)
		seen := map[string]bool{}
		for _, d := range dirs {
			if seenDir[d] {
				continue
			}
			seenDir[d] = true
			w.addNoFollow(ldpath.HostPath(root, d))
			rd, err := ldpath.Resolve(root, d)
			if err != nil {
				continue
			}
			w.add(ldpath.HostPath(root, rd))
			ents, err := os.ReadDir(ldpath.HostPath(root, rd))
			if err != nil {
				continue
			}
			for _, e := range ents {
				n := e.Name()
				if seen[n] || !df.Matches(n) {
					continue
				}
				real, err := ldpath.ResolveFrom(root, rd, n, func(link string) {
					w.add(ldpath.HostPath(root, path.Dir(link)))
				})
				if err != nil {
					continue
				}
				fi, err := os.Stat(ldpath.HostPath(root, real))
				if err != nil || !fi.Mode().IsRegular() || fi.Size() > 1<<20 {
					continue
				}
				seen[n] = true
				w.addID(ldpath.HostPath(root, real), fileID(fi))
				out = append(out, dataCand{df: df, src: real, base: n, id: fileID(fi)})
			}
		}
	}
	return out
}

// VendorFile is one vendor file the entry will hold, decided by Resolve:
// a host file rewritten to name the entry's libraries, or one nixglhost
// makes because the host has none for a library the entry holds. Building
// writes Content as it is; the doctor reads the same value.
type VendorFile struct {
	// API is the API the file leads its loader to.
	API catalog.API
	// Dest is the file's place in the entry ("share/glvnd/egl_vendor.d/10_nvidia.json").
	Dest string
	// Source is the host file's path inside the root, "" for a made file.
	Source string
	// Made says why nixglhost makes the file, "" for a host file.
	Made string
	// Content is what the entry's file will hold.
	Content []byte
}

// out is the manifest's account of the file.
func (v VendorFile) out() DataOut {
	return DataOut{API: v.API, Dest: v.Dest, Source: v.Source, Made: v.Made}
}

// decideVendor decides the entry's vendor files: each host file (cands)
// rewritten to point at the entry's lib/ (exposed: the names lib/ will
// hold), or left out with the reason (unreadable, invalid, or naming a
// library the entry lacks: a Vulkan layer naming a missing library drops
// that layer only); then the files nixglhost makes for libraries no kept
// file names. The result is sorted by Dest.
func decideVendor(root string, cands []dataCand, exposed map[string]bool, version, seenAt string) ([]VendorFile, []Skipped, error) {
	var files []VendorFile
	var skipped []Skipped
	for _, c := range cands {
		b, err := os.ReadFile(ldpath.HostPath(root, c.src))
		if err != nil {
			skipped = append(skipped, Skipped{c.src, err.Error(), CodeOf(err)})
			continue
		}
		var content []byte
		if strings.HasSuffix(c.base, ".json") {
			content, err = rewriteJSON(b, c.df.Dest, exposed, seenAt)
		} else {
			content, err = rewriteICD(b, exposed, seenAt)
		}
		if err != nil {
			skipped = append(skipped, Skipped{c.src, err.Error(), CodeOf(err)})
			continue
		}
		files = append(files, VendorFile{API: c.df.API, Dest: path.Join(c.df.Dest, c.base), Source: c.src, Content: content})
	}
	made, err := makeVendor(files, exposed, version, seenAt)
	if err != nil {
		return nil, nil, err
	}
	files = append(files, made...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Dest < files[j].Dest })
	return files, skipped, nil
}

// writeVendor writes the decided vendor files into the entry at dir.
func writeVendor(dir string, files []VendorFile) ([]DataOut, error) {
	outs := make([]DataOut, 0, len(files))
	for _, f := range files {
		p := filepath.Join(dir, f.Dest)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, f.Content, 0o644); err != nil {
			return nil, err
		}
		outs = append(outs, f.out())
	}
	return outs, nil
}

// libRef turns a library_path from a host JSON file into the entry's: the
// library's file name, which must be one the entry exposes. For files under
// share/vulkan the Vulkan loader resolves a relative path against the JSON
// file's directory, so it gets a path into lib/; the others keep a bare
// soname, found on the library path (or /run/opengl-driver/lib).
//
// seenAt, when not "", is where a self-contained entry will be seen
// (RUN/opengl-driver): the files other than Vulkan's then name
// seenAt/lib/<name>, an absolute path, as NixOS's own vendor files do:
// with no LD_LIBRARY_PATH, libglvnd's libEGL and ocl-icd (which have no
// runpath there) find no bare name.
func libRef(lib, dest string, exposed map[string]bool, seenAt string) (string, error) {
	base := path.Base(lib)
	if !exposed[base] {
		return "", fmt.Errorf("names %s, which the driver does not provide", lib)
	}
	if strings.HasPrefix(dest, "share/vulkan/") {
		rel, _ := filepath.Rel(dest, "lib")
		return rel + "/" + base, nil
	}
	if seenAt != "" {
		return path.Join(seenAt, "lib", base), nil
	}
	return base, nil
}

// rewriteJSON rewrites an ICD, vendor, platform or layer manifest.
func rewriteJSON(b []byte, dest string, exposed map[string]bool, seenAt string) ([]byte, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	fix := func(obj map[string]any) error {
		lp, ok := obj["library_path"].(string)
		if !ok {
			return fmt.Errorf("no library_path")
		}
		ref, err := libRef(lp, dest, exposed, seenAt)
		if err != nil {
			return err
		}
		obj["library_path"] = ref
		return nil
	}
	switch {
	case doc["ICD"] != nil:
		icd, ok := doc["ICD"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("ICD is not an object")
		}
		if err := fix(icd); err != nil {
			return nil, err
		}
	case doc["layer"] != nil:
		l, ok := doc["layer"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("layer is not an object")
		}
		if err := fix(l); err != nil {
			return nil, err
		}
	case doc["layers"] != nil:
		ls, ok := doc["layers"].([]any)
		if !ok {
			return nil, fmt.Errorf("layers is not an array")
		}
		var kept []any
		for _, x := range ls {
			l, ok := x.(map[string]any)
			if ok && fix(l) == nil {
				kept = append(kept, l)
			}
		}
		if len(kept) == 0 {
			return nil, fmt.Errorf("no layer whose library the driver provides")
		}
		doc["layers"] = kept
	default:
		return nil, fmt.Errorf("neither ICD nor layer object")
	}
	out, err := json.MarshalIndent(doc, "", "    ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// rewriteICD rewrites an OpenCL .icd file: one library name.
func rewriteICD(b []byte, exposed map[string]bool, seenAt string) ([]byte, error) {
	lib := strings.TrimSpace(string(b))
	if lib == "" || strings.ContainsAny(lib, "\n\x00") {
		return nil, fmt.Errorf("not a one-line OpenCL ICD file")
	}
	ref, err := libRef(lib, "etc/OpenCL/vendors", exposed, seenAt)
	if err != nil {
		return nil, err
	}
	return []byte(ref + "\n"), nil
}

// madeFile is a vendor file nixglhost writes when the host has none: its
// directory and name in the entry, the library it names, and its API.
type madeFile struct {
	dir, name, lib string
	api            catalog.API
}

// madeFiles are the vendor files the loaders need, in the layout NVIDIA's
// packages install them (see docs/DESIGN.md, "Vendor files").
var madeFiles = []madeFile{
	{"share/glvnd/egl_vendor.d", "10_nvidia.json", "libEGL_nvidia.so.0", catalog.APIEGL},
	{"share/egl/egl_external_platform.d", "10_nvidia_wayland.json", "libnvidia-egl-wayland.so.1", catalog.APIEGLPlatform},
	{"share/egl/egl_external_platform.d", "15_nvidia_gbm.json", "libnvidia-egl-gbm.so.1", catalog.APIEGLPlatform},
	{"share/egl/egl_external_platform.d", "20_nvidia_xcb.json", "libnvidia-egl-xcb.so.1", catalog.APIEGLPlatform},
	{"share/egl/egl_external_platform.d", "20_nvidia_xlib.json", "libnvidia-egl-xlib.so.1", catalog.APIEGLPlatform},
	{"share/vulkan/icd.d", "nvidia_icd.json", "libGLX_nvidia.so.0", catalog.APIVulkan},
	{"share/vulkan/implicit_layer.d", "nvidia_layers.json", "libGLX_nvidia.so.0", catalog.APIVulkan},
	{"etc/OpenCL/vendors", "nvidia.icd", "libnvidia-opencl.so.1", catalog.APIOpenCL},
}

// makeVendor returns the vendor files the host lacks for libraries the
// entry holds (Apptainer --nv binds only libraries; so do the container
// toolkit in compute mode, cloud images and a flat -d directory): a file is
// made when no kept host file of its directory (kept) names the same
// library.
func makeVendor(kept []VendorFile, exposed map[string]bool, version, seenAt string) ([]VendorFile, error) {
	var made []VendorFile
	for _, f := range madeFiles {
		if !exposed[f.lib] || slices.ContainsFunc(kept, func(k VendorFile) bool {
			return path.Dir(k.Dest) == f.dir && bytes.Contains(k.Content, []byte(f.lib))
		}) {
			continue
		}
		ref, err := libRef(f.lib, f.dir, exposed, seenAt)
		if err != nil {
			return nil, err
		}
		var content []byte
		switch {
		case strings.HasSuffix(f.name, ".icd"):
			content = []byte(ref + "\n")
		case f.name == "nvidia_layers.json":
			content = optimusLayerJSON(ref, vulkanAPIVersion(version))
		case f.api == catalog.APIVulkan:
			content = vendorJSON(ref, vulkanAPIVersion(version))
		default:
			content = vendorJSON(ref, "")
		}
		made = append(made, VendorFile{API: f.api, Dest: path.Join(f.dir, f.name), Made: "the host has no vendor file for " + f.lib, Content: content})
	}
	return made, nil
}

// vendorJSON is an ICD-style vendor file naming lib, with the Vulkan API
// version when apiVersion is not "".
func vendorJSON(lib, apiVersion string) []byte {
	icd := map[string]string{"library_path": lib}
	if apiVersion != "" {
		icd["api_version"] = apiVersion
	}
	b, _ := json.MarshalIndent(map[string]any{"file_format_version": "1.0.0", "ICD": icd}, "", "    ")
	return append(b, '\n')
}

// optimusLayerJSON is the implicit layer manifest of NVIDIA's Optimus
// layer, which libGLX_nvidia (lib) implements: enabled by
// __NV_PRIME_RENDER_OFFLOAD=1 (--prime), it keeps only the NVIDIA GPU
// when __VK_LAYER_NV_optimus=NVIDIA_only. The entry points are the
// driver's, as its packages' manifest names them.
func optimusLayerJSON(lib, apiVersion string) []byte {
	layer := map[string]any{
		"name":                   "VK_LAYER_NV_optimus",
		"type":                   "INSTANCE",
		"library_path":           lib,
		"api_version":            apiVersion,
		"implementation_version": "1",
		"description":            "NVIDIA Optimus layer",
		"functions": map[string]string{
			"vkGetInstanceProcAddr": "vk_optimusGetInstanceProcAddr",
			"vkGetDeviceProcAddr":   "vk_optimusGetDeviceProcAddr",
		},
		"enable_environment":  map[string]string{"__NV_PRIME_RENDER_OFFLOAD": "1"},
		"disable_environment": map[string]string{"DISABLE_LAYER_NV_OPTIMUS_1": ""},
	}
	b, _ := json.MarshalIndent(map[string]any{"file_format_version": "1.0.0", "layer": layer}, "", "    ")
	return append(b, '\n')
}

// vulkanAPIVersion is the Vulkan version a made ICD file declares: NVIDIA's
// drivers from branch 515 on implement Vulkan 1.3, older ones (470) 1.2.
// The loader uses it to tell an application what the driver supports
// before loading it; the driver's own answer comes once loaded.
func vulkanAPIVersion(driverVersion string) string {
	major, _, _ := strings.Cut(driverVersion, ".")
	if n, err := strconv.Atoi(major); err == nil && n < 515 {
		return "1.2.0"
	}
	return "1.3.0"
}

// exposedNames returns the names lib/ holds for sel: each file's name and
// its links.
func exposedNames(sel *Selection) map[string]bool {
	have := map[string]bool{}
	for _, f := range sel.Files {
		have[f.Base] = true
		for _, l := range f.Links {
			have[l] = true
		}
	}
	return have
}
