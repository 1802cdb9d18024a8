package doctor

import (
	"bytes"
	"fmt"
	"os"
	"path"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
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
// the library is found on the library path), and how the loader is led.
type capability struct {
	name, lib, vendorDir, how string
}

var capabilities = []capability{
	{"cuda", "libcuda.so.1", "", "found on the library path"},
	{"nvml", "libnvidia-ml.so.1", "", "found on the library path"},
	{"glx", "libGLX_nvidia.so.0", "", "libglvnd loads it when the X server names NVIDIA, or with --prime (__GLX_VENDOR_LIBRARY_NAME)"},
	{"egl", "libEGL_nvidia.so.0", "share/glvnd/egl_vendor.d", "libglvnd's libEGL loads it through __EGL_VENDOR_LIBRARY_DIRS"},
	{"vulkan", "libGLX_nvidia.so.0", "share/vulkan/icd.d", "the Vulkan loader loads it through VK_DRIVER_FILES"},
	{"opencl", "libnvidia-opencl.so.1", "etc/OpenCL/vendors", "ocl-icd loads it through OCL_ICD_VENDORS"},
	{"gbm", "gbm/nvidia-drm_gbm.so", "", "libgbm loads it through GBM_BACKENDS_PATH"},
	{"vdpau", "vdpau/libvdpau_nvidia.so.1", "", "libvdpau loads it through VDPAU_DRIVER_PATH"},
	{"nvenc", "libnvidia-encode.so.1", "", "found on the library path"},
	{"nvdec", "libnvcuvid.so.1", "", "found on the library path"},
	{"egl-mesa", "libEGL_mesa.so.0", "share/glvnd/egl_vendor.d", "libglvnd's libEGL loads it through __EGL_VENDOR_LIBRARY_DIRS, after NVIDIA's"},
	{"glx-mesa", "libGLX_mesa.so.0", "", "libglvnd loads it when the X server names Mesa"},
	{"dri", "swrast_dri.so", "", "Mesa's EGL and GLX load the DRI drivers through LIBGL_DRIVERS_PATH (swrast: llvmpipe)"},
	{"vulkan-mesa", "libvulkan_lvp.so", "share/vulkan/icd.d", "the Vulkan loader loads lavapipe through VK_DRIVER_FILES"},
}

// capabilityReports fills the per-API table from the plan: the names lib/
// will hold, the host's vendor files (data) and those nixglhost will make.
func capabilityReports(root string, pl *hostdrivers.Plan, data []hostdrivers.DataCandidate, made []hostdrivers.DataOut, kernel hostdrivers.Kernel) []CapabilityReport {
	exposed := pl.Exposed()
	out := make([]CapabilityReport, 0, len(capabilities))
	for _, c := range capabilities {
		cr := CapabilityReport{Name: c.name, Library: c.lib, Found: exposed[c.lib]}
		if c.vendorDir != "" && cr.Found {
			cr.Vendor, cr.VendorFile = "missing", ""
			for _, d := range data {
				if d.Dest() != c.vendorDir {
					continue
				}
				if b, err := os.ReadFile(ldpath.HostPath(root, d.Source())); err == nil && bytes.Contains(b, []byte(c.lib)) {
					cr.Vendor, cr.VendorFile = "host", d.Source()
					break
				}
			}
			for _, m := range made {
				if cr.Vendor == "missing" && path.Dir(m.Dest) == c.vendorDir {
					cr.Vendor, cr.VendorFile = "made", m.Dest
				}
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
