package doctor

import (
	"bytes"
	"fmt"
	"path"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// CapabilityReport is one row of the doctor's per-API table: what a
// program asking for the API will get from the entry.
type CapabilityReport struct {
	// Name is the API as users name it: "cuda", "nvml", "glx", "egl",
	// "vulkan", "opencl", "gbm", "vdpau", "nvenc" or "nvdec" for NVIDIA's
	// driver; "egl-mesa", "glx-mesa", "dri" (llvmpipe's swrast) and
	// "vulkan-mesa" (lavapipe) for Mesa's.
	Name string `json:"name"`
	// Library is what the API's loader opens, relative to the entry's
	// lib/ ("libcuda.so.1"; for Vulkan the ICD, libGLX_nvidia.so.0; the
	// backends "gbm/nvidia-drm_gbm.so" and "vdpau/libvdpau_nvidia.so.1").
	Library string `json:"library"`
	// Found says whether the entry will hold that name.
	Found bool `json:"found"`
	// Vendor says where the vendor file that leads the API's loader to the
	// library comes from: "host", "made" (written by nixglhost because
	// the host has none), "missing", or "" when the API needs none.
	Vendor string `json:"vendor,omitempty"`
	// VendorFile is the vendor file's place in the entry, or its host path
	// for "host".
	VendorFile string `json:"vendor_file,omitempty"`
	// Outcome says what will happen when a program uses the API.
	Outcome string `json:"outcome"`
}

// capability is what the table knows of an API: the library its loader
// opens, the entry directory of the vendor file that leads there ("" when
// the library is found on the library path), how the loader is led, the
// catalogue API it belongs to, and whether it is Mesa's.
type capability struct {
	name, lib, vendorDir, how string
	api                       catalog.API
	mesa                      bool
}

var capabilities = []capability{
	{"cuda", "libcuda.so.1", "", "found on the library path", catalog.APICUDA, false},
	{"nvml", "libnvidia-ml.so.1", "", "found on the library path", catalog.APINVML, false},
	{"glx", "libGLX_nvidia.so.0", "", "libglvnd loads it when the X server names NVIDIA, or with --prime (__GLX_VENDOR_LIBRARY_NAME)", catalog.APIGLX, false},
	{"egl", "libEGL_nvidia.so.0", "share/glvnd/egl_vendor.d", "libglvnd's libEGL loads it through __EGL_VENDOR_LIBRARY_DIRS", catalog.APIEGL, false},
	{"vulkan", "libGLX_nvidia.so.0", "share/vulkan/icd.d", "the Vulkan loader loads it through VK_DRIVER_FILES", catalog.APIVulkan, false},
	{"opencl", "libnvidia-opencl.so.1", "etc/OpenCL/vendors", "ocl-icd loads it through OCL_ICD_VENDORS", catalog.APIOpenCL, false},
	{"gbm", "gbm/nvidia-drm_gbm.so", "", "libgbm loads it through GBM_BACKENDS_PATH", catalog.APIGBM, false},
	{"vdpau", "vdpau/libvdpau_nvidia.so.1", "", "libvdpau loads it through VDPAU_DRIVER_PATH", catalog.APIVideo, false},
	{"nvenc", "libnvidia-encode.so.1", "", "found on the library path", catalog.APIVideo, false},
	{"nvdec", "libnvcuvid.so.1", "", "found on the library path", catalog.APIVideo, false},
	{"egl-mesa", "libEGL_mesa.so.0", "share/glvnd/egl_vendor.d", "libglvnd's libEGL loads it through __EGL_VENDOR_LIBRARY_DIRS, after NVIDIA's", catalog.APIEGL, true},
	{"glx-mesa", "libGLX_mesa.so.0", "", "libglvnd loads it when the X server names Mesa", catalog.APIGLX, true},
	{"dri", "swrast_dri.so", "", "Mesa's EGL and GLX load the DRI drivers through LIBGL_DRIVERS_PATH (swrast: llvmpipe)", catalog.APIDRI, true},
	{"vulkan-mesa", "libvulkan_lvp.so", "share/vulkan/icd.d", "the Vulkan loader loads lavapipe through VK_DRIVER_FILES", catalog.APIVulkan, true},
}

// capabilityReports fills the per-API table from the plan: the names lib/
// will hold and the vendor files the plan decided (the host's, rewritten,
// or made). A plan holding only Mesa's drivers gets Mesa's rows, one
// holding only NVIDIA's (or nothing) NVIDIA's: a Mesa host is not a list
// of NVIDIA misses.
func capabilityReports(pl *hostdrivers.Plan, kernel hostdrivers.Kernel) []CapabilityReport {
	exposed := pl.Exposed()
	var nvidia, mesa bool
	for _, f := range pl.Selection.Files {
		if f.CatalogEntry().Mesa {
			mesa = true
		} else {
			nvidia = true
		}
	}
	out := make([]CapabilityReport, 0, len(capabilities))
	for _, c := range capabilities {
		if c.mesa && !mesa || !c.mesa && mesa && !nvidia {
			continue
		}
		cr := CapabilityReport{Name: c.name, Library: c.lib, Found: exposed[c.lib]}
		if c.vendorDir != "" && cr.Found {
			cr.Vendor, cr.VendorFile = "missing", ""
			for _, v := range pl.Vendor {
				if path.Dir(v.Dest) != c.vendorDir || !bytes.Contains(v.Content, []byte(c.lib)) {
					continue
				}
				if v.Made != "" {
					cr.Vendor, cr.VendorFile = "made", v.Dest
				} else {
					cr.Vendor, cr.VendorFile = "host", v.Source
				}
				break
			}
		}
		switch {
		case !cr.Found:
			cr.Outcome = fmt.Sprintf("no %s: programs find no %s driver there", c.lib, c.name)
		case cr.Vendor == "missing":
			cr.Outcome = fmt.Sprintf("%s is there but no vendor file names it: its loader will not find it", c.lib)
		case (c.name == "cuda" || c.name == "nvml") && kernel.Kind == hostdrivers.KernelNone:
			cr.Outcome = c.how + ", but no GPU kernel driver is loaded: it will report no device"
		default:
			cr.Outcome = c.how
		}
		out = append(out, cr)
	}
	return out
}
