package doctor

import (
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// GPUReport is one GPU as the kernel shows it in /sys/class/drm, with the
// userspace drivers that serve it and whether the entry holds them.
type GPUReport struct {
	// Card is the DRM card ("card0").
	Card string `json:"card"`
	// Vendor is the PCI vendor id ("0x8086"), VendorName its name.
	Vendor     string `json:"vendor"`
	VendorName string `json:"vendor_name,omitempty"`
	// Kernel is the kernel driver bound to it ("i915", "amdgpu").
	Kernel string `json:"kernel_driver,omitempty"`
	// Wants are the userspace drivers it needs, one group per API; any
	// file of a group serves ("iris_dri.so|crocus_dri.so").
	Wants []string `json:"wants"`
	// Missing are the groups the entry holds no file of.
	Missing []string `json:"missing"`
}

// vendorNames are the PCI vendor ids of GPUs Linux drives.
var vendorNames = map[string]string{
	"0x8086": "Intel", "0x1002": "AMD", "0x10de": "NVIDIA", "0x1af4": "virtio",
	"0x15ad": "VMware", "0x1234": "QEMU", "0x1b36": "Red Hat (QEMU)",
}

// userspace maps a kernel DRM driver to the userspace driver groups that
// serve its GPU: the DRI driver and the Vulkan ICD (Mesa's), or NVIDIA's
// libraries. A group's alternatives are separated by '|'.
var userspace = map[string][]string{
	"i915":       {"iris_dri.so|crocus_dri.so|i915_dri.so", "libvulkan_intel.so|libvulkan_intel_hasvk.so"},
	"xe":         {"iris_dri.so", "libvulkan_intel.so"},
	"amdgpu":     {"radeonsi_dri.so", "libvulkan_radeon.so"},
	"radeon":     {"r600_dri.so|r300_dri.so|radeonsi_dri.so"},
	"nouveau":    {"nouveau_dri.so"},
	"virtio_gpu": {"virtio_gpu_dri.so"},
	"vmwgfx":     {"vmwgfx_dri.so"},
	"nvidia":     {"libGLX_nvidia.so.0|libEGL_nvidia.so.0|libcuda.so.1"},
	"nvidia-drm": {"libGLX_nvidia.so.0|libEGL_nvidia.so.0|libcuda.so.1"},
}

// isCard reports whether a /sys/class/drm name is a card ("card0"), not a
// connector ("card0-HDMI-A-1") or a render node.
func isCard(n string) bool {
	d, ok := strings.CutPrefix(n, "card")
	return ok && d != "" && strings.Trim(d, "0123456789") == ""
}

// gpuReports lists the DRM cards under root and checks each one's
// userspace drivers against exposed (the names the entry's lib/ holds).
func gpuReports(root string, exposed map[string]bool) []GPUReport {
	out := []GPUReport{}
	dir := ldpath.HostPath(root, "/sys/class/drm")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	var cards []string
	for _, e := range ents {
		if isCard(e.Name()) {
			cards = append(cards, e.Name())
		}
	}
	sort.Strings(cards)
	for _, c := range cards {
		dev := path.Join(dir, c, "device")
		b, err := os.ReadFile(path.Join(dev, "vendor"))
		if err != nil {
			continue
		}
		g := GPUReport{Card: c, Vendor: strings.TrimSpace(string(b)), Wants: []string{}, Missing: []string{}}
		g.VendorName = vendorNames[g.Vendor]
		if l, err := os.Readlink(path.Join(dev, "driver")); err == nil {
			g.Kernel = path.Base(l)
		}
		for _, group := range userspace[g.Kernel] {
			g.Wants = append(g.Wants, group)
			if !anyExposed(group, exposed) {
				g.Missing = append(g.Missing, group)
			}
		}
		out = append(out, g)
	}
	return out
}

func anyExposed(group string, exposed map[string]bool) bool {
	for _, n := range strings.Split(group, "|") {
		if exposed[n] {
			return true
		}
	}
	return false
}

// gpuFindings warns for each GPU the entry holds no userspace driver for.
func gpuFindings(gpus []GPUReport, mesaLeftOut bool, add func(sev Severity, topic Topic, msg, fix string)) {
	for _, g := range gpus {
		if len(g.Missing) == 0 || len(g.Wants) == 0 {
			continue
		}
		fix := "install the host's Mesa drivers for it"
		if mesaLeftOut && g.Kernel != "nvidia" && g.Kernel != "nvidia-drm" {
			fix = "pass --mesa to take Mesa's drivers beside NVIDIA's"
		}
		add(SeverityWarning, TopicGPU, fmt.Sprintf("%s (%s %s, kernel driver %s): the entry holds none of %s",
			g.Card, orUnknown(g.VendorName), g.Vendor, g.Kernel, strings.Join(g.Missing, ", ")), fix)
	}
}
