package hostdrivers

import (
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/nixglhost/nixglhost/internal/rawfile"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// Roles is what the host's kernel says about who drives its GPUs: the GPU
// that computes and the one that displays may be different devices with
// different drivers (see docs/DESIGN.md, "Hosts have roles"). ReadRoles
// fills it from files under the driver root; its methods derive the
// decisions (the GPU's kernel driver, whether Mesa renders) from it alone,
// so tests can state a host as a plain value.
type Roles struct {
	// NVIDIA is the version of the loaded nvidia module, "" when none is
	// loaded, and NVIDIASource the file it was read from (ModuleVersion
	// gives "" for a display-only one; this is the module as loaded).
	NVIDIA       string `json:"nvidia,omitempty"`
	NVIDIASource string `json:"nvidia_source,omitempty"`
	// NVGPU says Jetson's integrated-GPU module is loaded
	// (/sys/module/nvgpu), and NVGPUVersion is its version file, or "".
	NVGPU        bool   `json:"nvgpu,omitempty"`
	NVGPUVersion string `json:"nvgpu_version,omitempty"`
	// Nouveau says the nouveau module is loaded (/sys/module/nouveau).
	Nouveau bool `json:"nouveau,omitempty"`
	// DXG is WSL2's GPU device or module when present (/dev/dxg, else
	// /sys/module/dxgkrnl), or "".
	DXG string `json:"dxg,omitempty"`
	// L4T is Jetson's L4T release line from /etc/nv_tegra_release ("R36
	// (release), REVISION: 3.0, ..."), or "".
	L4T string `json:"l4t,omitempty"`
	// Cards are the DRM cards of /sys/class/drm, in name order.
	Cards []DRMCard `json:"cards,omitempty"`
}

// DRMCard is one DRM card and the kernel driver bound to its device.
type DRMCard struct {
	// Name is the card's name ("card0").
	Name string `json:"name"`
	// Driver is its device's kernel driver ("i915", "nvidia", "nouveau"),
	// the last element of device/driver, or "" when unreadable.
	Driver string `json:"driver"`
	// BootVGA says the firmware used this card for its console
	// (device/boot_vga is 1): the display X and Wayland pick by default.
	BootVGA bool `json:"boot_vga,omitempty"`
}

// firstL4TOpenRM is the first L4T release whose GPU the OpenRM nvidia
// module drives with SBSA userspace: Thor's JetPack 7 is L4T R38 (Orin
// follows with JetPack 7.2, R39). Before it, a Jetson's GPU is nvgpu's and
// a loaded nvidia module drives the display only.
const firstL4TOpenRM = 38

// mesaKernelDrivers are the DRM drivers whose GPUs Mesa renders on.
var mesaKernelDrivers = map[string]bool{
	"i915": true, "xe": true, "amdgpu": true, "radeon": true, "nouveau": true,
}

// ReadRoles reads the host's GPU roles under root: the nvidia module
// (ModuleVersion's files), /sys/module/nvgpu, /sys/module/nouveau,
// /dev/dxg or /sys/module/dxgkrnl, the first line of /etc/nv_tegra_release
// and each /sys/class/drm/cardN's device/driver and device/boot_vga. What
// cannot be read is absent; it never fails.
func ReadRoles(root string) Roles {
	var r Roles
	host := func(p string) string { return ldpath.HostPath(root, p) }
	isDir := func(p string) bool {
		fi, err := os.Stat(host(p))
		return err == nil && fi.IsDir()
	}
	read := func(p string) string {
		b, err := os.ReadFile(host(p))
		if err != nil {
			return ""
		}
		return string(b)
	}
	r.NVIDIA, r.NVIDIASource = nvidiaModule(root)
	r.NVGPUVersion = strings.TrimSpace(read("/sys/module/nvgpu/version"))
	r.NVGPU = r.NVGPUVersion != "" || isDir("/sys/module/nvgpu")
	r.Nouveau = isDir("/sys/module/nouveau")
	for _, p := range []string{"/dev/dxg", "/sys/module/dxgkrnl"} {
		if _, err := os.Stat(host(p)); err == nil {
			r.DXG = p
			break
		}
	}
	r.L4T = l4tLine(read("/etc/nv_tegra_release"))
	ents, _ := os.ReadDir(host("/sys/class/drm"))
	for _, e := range ents {
		n := e.Name()
		if d, ok := strings.CutPrefix(n, "card"); !ok || d == "" || strings.Trim(d, "0123456789") != "" {
			continue // a connector (card0-HDMI-A-1) or a render node
		}
		c := DRMCard{Name: n}
		dev := path.Join("/sys/class/drm", n, "device")
		if l, err := os.Readlink(host(path.Join(dev, "driver"))); err == nil {
			c.Driver = path.Base(l)
		}
		c.BootVGA = strings.TrimSpace(read(path.Join(dev, "boot_vga"))) == "1"
		r.Cards = append(r.Cards, c)
	}
	sort.Slice(r.Cards, func(i, j int) bool { return cardLess(r.Cards[i].Name, r.Cards[j].Name) })
	return r
}

// cardLess orders card names by number (card2 before card10).
func cardLess(a, b string) bool {
	x, _ := strconv.Atoi(strings.TrimPrefix(a, "card"))
	y, _ := strconv.Atoi(strings.TrimPrefix(b, "card"))
	return x < y
}

// Jetson reports whether the host is a Jetson: nvgpu is loaded or
// /etc/nv_tegra_release names an L4T release.
func (r Roles) Jetson() bool { return r.NVGPU || r.L4T != "" }

// L4TMajor returns the major of the L4T release (36 for "R36 ..."), or -1.
func (r Roles) L4TMajor() int { return Kernel{Release: r.L4T}.L4TMajor() }

// L4TVersion returns the L4T release as a version ("35.3.1" for "R35
// (release), REVISION: 3.1, ..."), or "" when the line does not say.
func (r Roles) L4TVersion() string {
	m := r.L4TMajor()
	if m < 0 {
		return ""
	}
	_, rev, ok := strings.Cut(r.L4T, "REVISION:")
	if !ok {
		return ""
	}
	rev, _, _ = strings.Cut(strings.TrimSpace(rev), ",")
	rev = strings.TrimSpace(rev)
	if rev == "" || strings.Trim(rev, "0123456789.") != "" || strings.HasPrefix(rev, ".") || strings.HasSuffix(rev, ".") {
		return ""
	}
	return strconv.Itoa(m) + "." + rev
}

// DisplayOnlyNVIDIA reports whether the loaded nvidia module drives the
// display only: a Jetson before L4T R38 (Orin on JetPack 5 and 6), whose
// GPU is nvgpu's. Its version is the L4T release, not a driver branch.
func (r Roles) DisplayOnlyNVIDIA() bool {
	return r.NVIDIA != "" && r.Jetson() && !r.openRM()
}

// displayOnlyModule reports whether the loaded nvidia module (version v)
// drives the display only, reading as little as the hot path allows: the
// nvgpu module's directory and the first line of /etc/nv_tegra_release.
func displayOnlyModule(root, v string) bool {
	r := Roles{NVIDIA: v}
	if fi, err := os.Stat(ldpath.HostPath(root, "/sys/module/nvgpu")); err == nil && fi.IsDir() {
		r.NVGPU = true
	} else if b, err := rawfile.ReadFile(ldpath.HostPath(root, "/etc/nv_tegra_release"), 0, 4<<10); err == nil {
		r.L4T = l4tLine(string(b))
	}
	return r.DisplayOnlyNVIDIA()
}

// l4tLine returns the release line of /etc/nv_tegra_release's text: its
// first line without the leading "#".
func l4tLine(text string) string {
	first, _, _ := strings.Cut(text, "\n")
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(first), "#"))
}

// openRM reports whether a Jetson's GPU is the OpenRM nvidia module's
// (JetPack 7: L4T R38 and later, nvgpu not loaded).
func (r Roles) openRM() bool {
	return !r.NVGPU && r.L4TMajor() >= firstL4TOpenRM
}

// GPU returns the kernel driver that serves the NVIDIA GPU (ReadKernel's
// answer): the nvidia module, unless the host is a Jetson whose GPU is
// nvgpu's (loaded, or a release before R38), where the L4T release is the
// driver's version and a loaded nvidia module is recorded as Display;
// else WSL2's dxgkrnl; else none.
func (r Roles) GPU() Kernel {
	switch {
	case r.Jetson() && !r.openRM():
		k := Kernel{Kind: KernelNVGPU, Version: r.L4TVersion(), Source: "/etc/nv_tegra_release", Release: r.L4T, Display: r.NVIDIA}
		switch {
		case r.NVGPUVersion != "":
			k.Source = "/sys/module/nvgpu/version"
		case r.NVGPU:
			k.Source = "/sys/module/nvgpu"
		}
		if k.Version == "" {
			k.Version = r.NVGPUVersion
		}
		return k
	case r.NVIDIA != "":
		return Kernel{Kind: KernelNVIDIA, Version: r.NVIDIA, Source: r.NVIDIASource, Release: r.L4T}
	case r.DXG != "":
		return Kernel{Kind: KernelDXG, Source: r.DXG, Release: "WSL2: the Windows driver serves the GPU"}
	}
	return Kernel{}
}

// MesaRenders says why Mesa renders on this host although NVIDIA's
// userspace driver is installed, or "" when NVIDIA's does (or the roles do
// not say): WSL2, whose NVIDIA libraries serve CUDA only while GL and
// Vulkan come from Mesa's d3d12 and dzn; nouveau loaded and no nvidia
// module; or the display (the boot VGA card, else the first card) driven
// by a Mesa kernel driver while NVIDIA's GPU computes (a hybrid laptop
// whose integrated GPU runs X). A Jetson's display is NVIDIA's.
func (r Roles) MesaRenders() string {
	switch {
	case r.Jetson():
		return ""
	case r.DXG != "":
		return "WSL2 (" + r.DXG + "): NVIDIA's libraries there serve CUDA only; GL and Vulkan are Mesa's d3d12 and dzn"
	case r.Nouveau && r.NVIDIA == "":
		return "nouveau is loaded and no nvidia module: Mesa's nouveau driver renders"
	}
	var display *DRMCard
	for i := range r.Cards {
		if r.Cards[i].BootVGA {
			display = &r.Cards[i]
			break
		}
	}
	if display == nil && len(r.Cards) > 0 {
		display = &r.Cards[0]
	}
	if display != nil && mesaKernelDrivers[display.Driver] {
		return "the display (" + display.Name + ") is driven by " + display.Driver + ", which Mesa renders on"
	}
	return ""
}
