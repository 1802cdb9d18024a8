package environment

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"
)

// Change is one environment variable nixglhost sets, and its new value.
type Change struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Kept is true when the user had set the variable and it was extended
	// or left as it was.
	Kept bool `json:"kept,omitempty"`
}

// EnvOptions says how the environment is built.
type EnvOptions struct {
	// NixLD puts the library directory on NIX_LD_LIBRARY_PATH instead of
	// LD_LIBRARY_PATH, for an FHS program run through nix-ld: the variable
	// then reaches only the program, not its Nix-built children.
	NixLD bool
	// Prime sets NVIDIA's PRIME render offload variables, so that GLX and
	// Vulkan use the NVIDIA GPU of a hybrid machine whose display runs on
	// another one. Without it GLX asks the X server which vendor library
	// to load (right on NVIDIA's X server, on Mesa's, on remote X and
	// Xvfb, where forcing NVIDIA's fails with BadValue).
	Prime bool
	// Companion is the 32-bit entry prepared beside dir for the 32-bit
	// programs the program may start ("" for none): its lib/ follows dir's
	// on the library path (the loader skips a library of the wrong class
	// and goes on), and its Vulkan ICD files follow dir's.
	Companion string
	// CompanionManifest is the companion entry's manifest.
	CompanionManifest *hostdrivers.Manifest
}

// Env returns the variables to set for a program using the entry at dir,
// given the inherited environment env (as os.Environ). Only what the entry
// provides is set. A path-list variable the user set is kept as it is and
// extended at its end (AppendPath); a single-valued one the user set is
// kept. Of the Vulkan loader's two driver lists, the one the user set is
// the one extended (the loader reads VK_DRIVER_FILES first and ignores
// VK_ICD_FILENAMES then); with neither set, both are.
//
// It is long because it sets the variables one after the other, in the order
// the README's table gives them.
func Env(env []string, dir string, m *hostdrivers.Manifest, eo EnvOptions) []Change {
	get := func(k string) (string, bool) { return hostdrivers.LookupEnv(env, k) }
	var out []Change
	list := func(k string, vals ...string) {
		old, had := get(k)
		out = append(out, Change{Name: k, Value: AppendPath(old, vals...), Kept: had && old != ""})
	}
	single := func(k, v string) {
		if old, had := get(k); had {
			out = append(out, Change{Name: k, Value: old, Kept: true})
			return
		}
		out = append(out, Change{Name: k, Value: v})
	}
	lib := filepath.Join(dir, "lib")
	libs := []string{lib}
	if eo.Companion != "" {
		libs = append(libs, filepath.Join(eo.Companion, "lib"))
	}
	if eo.NixLD {
		list("NIX_LD_LIBRARY_PATH", libs...)
	} else {
		list("LD_LIBRARY_PATH", libs...)
	}
	if eo.Prime {
		single("__NV_PRIME_RENDER_OFFLOAD", "1")
		if m.Has(catalog.APIGLX) {
			single("__GLX_VENDOR_LIBRARY_NAME", "nvidia")
		}
		// Read by NVIDIA's implicit Vulkan layer (VK_LAYER_NV_optimus).
		if m.HasData("share/vulkan/implicit_layer.d") {
			single("__VK_LAYER_NV_optimus", "NVIDIA_only")
		}
	}
	if m.HasData("share/glvnd/egl_vendor.d") {
		list("__EGL_VENDOR_LIBRARY_DIRS", filepath.Join(dir, "share/glvnd/egl_vendor.d"))
	}
	if m.HasData("share/egl/egl_external_platform.d") {
		list("__EGL_EXTERNAL_PLATFORM_CONFIG_DIRS", filepath.Join(dir, "share/egl/egl_external_platform.d"))
	}
	if icds := m.DataFilesIn("share/vulkan/icd.d"); len(icds) > 0 {
		var files []string
		for _, f := range icds {
			files = append(files, filepath.Join(dir, f))
		}
		if eo.Companion != "" && eo.CompanionManifest != nil {
			// The Vulkan loader skips an ICD whose library it cannot load
			// (the wrong class) and goes on to the next.
			for _, f := range eo.CompanionManifest.DataFilesIn("share/vulkan/icd.d") {
				files = append(files, filepath.Join(eo.Companion, f))
			}
		}
		// Setting VK_DRIVER_FILES beside a user's VK_ICD_FILENAMES would
		// hide the user's drivers from the loader.
		df, hasDF := get("VK_DRIVER_FILES")
		icd, hasICD := get("VK_ICD_FILENAMES")
		hasDF, hasICD = hasDF && df != "", hasICD && icd != ""
		if hasDF || !hasICD {
			list("VK_DRIVER_FILES", files...)
		}
		if hasICD && !hasDF || !hasDF && !hasICD {
			list("VK_ICD_FILENAMES", files...)
		}
	}
	if m.HasData("share/vulkan/implicit_layer.d") {
		list("VK_ADD_IMPLICIT_LAYER_PATH", filepath.Join(dir, "share/vulkan/implicit_layer.d"))
	}
	if m.HasData("etc/OpenCL/vendors") {
		single("OCL_ICD_VENDORS", filepath.Join(dir, "etc/OpenCL/vendors"))
	}
	// Mesa's libgbm splits GBM_BACKENDS_PATH at ':' and goes on when a
	// backend of the wrong class fails to load: the companion's follows.
	var gbm []string
	for _, d := range libs {
		if fi, err := os.Stat(filepath.Join(d, "gbm")); err == nil && fi.IsDir() {
			gbm = append(gbm, filepath.Join(d, "gbm"))
		}
	}
	if len(gbm) > 0 {
		list("GBM_BACKENDS_PATH", gbm...)
	}
	// Mesa's DRI and VA-API drivers sit in lib/ itself (their names,
	// *_dri.so and *_drv_video.so, shadow nothing a program links).
	if m.Has(catalog.APIDRI) {
		single("LIBGL_DRIVERS_PATH", lib)
	}
	if m.Has(catalog.APIVA) {
		single("LIBVA_DRIVERS_PATH", lib)
	}
	// libvdpau looks for libvdpau_<driver>.so.1 in this one directory;
	// with a companion, one whose $PLATFORM picks the class (see
	// VDPAUDriverPath).
	if d := hostdrivers.VDPAUDriverPath(dir, eo.Companion); d != "" {
		single("VDPAU_DRIVER_PATH", d)
	}
	return out
}

// AppendPath returns the colon-separated list with vals appended. The
// list is kept as it is, every element in its place: an empty element
// means the current directory to the loader (and to glibc's
// LD_LIBRARY_PATH), so dropping one would change what the user's program
// loads, and a duplicate changes nothing. A value already an element of
// the list, or empty, is not appended. An empty list (unset, or set to
// "", which glibc ignores) becomes vals alone, with no empty element.
func AppendPath(list string, vals ...string) string {
	var parts []string
	seen := map[string]bool{}
	if list != "" {
		parts = strings.Split(list, ":")
		for _, p := range parts {
			seen[p] = true
		}
	}
	for _, v := range vals {
		if v == "" || seen[v] {
			continue
		}
		seen[v] = true
		parts = append(parts, v)
	}
	return strings.Join(parts, ":")
}

// Apply returns env with the changes applied: a changed variable's old
// definitions are removed and the new one appended; everything else is
// passed through untouched and in order.
func Apply(env []string, changes []Change) []string {
	set := map[string]string{}
	for _, c := range changes {
		set[c.Name] = c.Value
	}
	out := make([]string, 0, len(env)+len(changes))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; ok {
			continue
		}
		out = append(out, kv)
	}
	for _, c := range changes {
		out = append(out, c.Name+"="+c.Value)
	}
	return out
}

// GlibcHazards returns a warning for each entry of an inherited
// LD_LIBRARY_PATH that holds a glibc library: the program's loader would
// take the host's libc from there, and a Nix program then fails.
func GlibcHazards(root, libraryPath string) []string {
	var out []string
	for _, d := range strings.Split(libraryPath, ":") {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		for _, n := range []string{"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"} {
			if _, err := os.Stat(filepath.Join(root, d, n)); err == nil {
				out = append(out, "LD_LIBRARY_PATH entry "+d+" holds "+n+": the program may load the host's glibc from there and fail")
				break
			}
		}
	}
	return out
}
