package hostdrivers

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// KernelKind names the kernel driver that serves an NVIDIA GPU.
type KernelKind string

const (
	// KernelNone: no GPU kernel driver was found.
	KernelNone KernelKind = ""
	// KernelNVIDIA is the desktop and datacenter module (nvidia.ko), whose
	// version the userspace driver must match.
	KernelNVIDIA KernelKind = "nvidia"
	// KernelNVGPU is Jetson's integrated-GPU module (nvgpu.ko); the
	// userspace driver comes with the L4T release.
	KernelNVGPU KernelKind = "nvgpu"
	// KernelDXG is WSL2's dxgkrnl: the GPU belongs to the Windows driver,
	// reached through /dev/dxg.
	KernelDXG KernelKind = "dxgkrnl"
)

// Kernel is the GPU kernel driver loaded on a host (see docs/DESIGN.md,
// "Driver version").
type Kernel struct {
	// Kind says which driver it is.
	Kind KernelKind `json:"kind"`
	// Version is the module's version ("535.261.03" for nvidia; for
	// nvgpu the L4T release, "36.3.0"), or "".
	Version string `json:"version"`
	// Source is the file it was read from, inside the root.
	Source string `json:"source,omitempty"`
	// Release is Jetson's L4T release line from /etc/nv_tegra_release
	// ("R36 (release), REVISION: 3.0, ..."), or WSL2's description.
	Release string `json:"release,omitempty"`
	// Display is the version of a loaded nvidia module that drives the
	// display only, not this GPU (Jetson before L4T R38), or "".
	Display string `json:"display_module,omitempty"`
}

// ReadKernel finds the kernel driver that serves the NVIDIA GPU under root,
// as ReadRoles reads the host and Roles.GPU decides: the nvidia module
// (/sys/module/nvidia/version, else /proc/driver/nvidia/version, as
// ModuleVersion reads it), except on a Jetson whose GPU is nvgpu's
// (/sys/module/nvgpu, or /etc/nv_tegra_release before L4T R38), where a
// loaded nvidia module drives the display only; else WSL2's /dev/dxg. The
// zero Kernel means none.
func ReadKernel(root string) Kernel {
	return ReadRoles(root).GPU()
}

// L4TMajor returns the major of the L4T release ("R36 (release), ..."
// gives 36), or -1 when it is not known.
func (k Kernel) L4TMajor() int {
	r, ok := strings.CutPrefix(k.Release, "R")
	if !ok {
		return -1
	}
	i := 0
	for i < len(r) && r[i] >= '0' && r[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(r[:i])
	if err != nil {
		return -1
	}
	return n
}

// firstL4TWithCompat is the first L4T release on which a Jetson can use
// the CUDA upgrade (forward-compatibility) package: NVIDIA's announcement
// ("Simplifying CUDA Upgrades for NVIDIA Jetson Users", with CUDA 11.8)
// opens it to JetPack 5.0 and later, and JetPack 5.0 is L4T R34.
const firstL4TWithCompat = 34

// CompatUsable decides whether a cuda_compat libcuda (whose note is note,
// whose file name gives version, "" for Jetson's libcuda.so.1.1) can run on
// the kernel driver k, and says why. It is the one rule the launch
// (selectDriver) and the doctor follow.
func CompatUsable(k Kernel, note *CompatNote, version string) (bool, string) {
	switch k.Kind {
	case KernelNVIDIA:
		branch := MajorVersion(k.Version)
		switch {
		case len(note.Driver) == 0:
			if version != "" && MajorVersion(version) > branch {
				return true, fmt.Sprintf("the note lists no branches; its version %s is newer than the kernel module %s", version, k.Version)
			}
			return false, fmt.Sprintf("the note lists no branches and its version %q is not newer than the kernel module %s", version, k.Version)
		case slices.Contains(note.Driver, branch):
			return true, fmt.Sprintf("kernel module branch %d is supported", branch)
		default:
			return false, fmt.Sprintf("kernel module branch %d is not among the supported branches %v", branch, note.Driver)
		}
	case KernelNVGPU:
		switch m := k.L4TMajor(); {
		case m < 0:
			return false, "a Jetson (nvgpu) whose L4T release is unknown (no readable /etc/nv_tegra_release)"
		case m < firstL4TWithCompat:
			return false, fmt.Sprintf("L4T R%d predates CUDA forward compatibility on Jetson, which starts with JetPack 5 (L4T R%d)", m, firstL4TWithCompat)
		default:
			return true, fmt.Sprintf("L4T R%d: Jetson takes the CUDA upgrade package from JetPack 5 (L4T R%d) on", m, firstL4TWithCompat)
		}
	case KernelDXG:
		return false, "WSL2's GPU driver is the Windows one, which CUDA forward compatibility does not cover"
	default:
		return false, "no kernel module version known, so its branches cannot be checked"
	}
}
