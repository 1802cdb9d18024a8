// Package sandbox computes what Nix's pre-build hook prints for a GPU
// derivation: the cache entry bound at /run/opengl-driver inside the build
// sandbox, every host file the entry's links lead to, at the same place
// inside, and the GPU device nodes. Nix reads the lines as "path" or
// "inside=outside", so a path it would split wrongly is an error here.
package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// RunOpenGLDriver is where the entry goes in the sandbox.
const RunOpenGLDriver = "/run/opengl-driver"

// RunOpenGLDriver32 is where the 32-bit entry goes in the sandbox of an
// x86-64 host with a 32-bit driver: NixOS's place for it, which nixpkgs'
// 32-bit libraries (libglvnd, libvdpau, the Vulkan loader) are built to
// search.
const RunOpenGLDriver32 = "/run/opengl-driver-32"

// Devices is a set of groups of GPU device nodes: what a build sandbox
// may be given besides the driver.
type Devices uint8

const (
	// DevNVIDIA is NVIDIA's nodes: /dev/nvidiactl, /dev/nvidia[0-9]*,
	// /dev/nvidia-uvm, /dev/nvidia-uvm-tools and /dev/nvidia-modeset.
	DevNVIDIA Devices = 1 << iota
	// DevDRI is /dev/dri, the DRM nodes: Mesa's GPUs, and NVIDIA's GBM
	// and EGL.
	DevDRI
	// DevKFD is /dev/kfd, AMD's compute (ROCm).
	DevKFD
	// AllDevices is every group.
	AllDevices = DevNVIDIA | DevDRI | DevKFD
)

// deviceNodes are the nodes under /dev of each group, in the order they
// are printed; a name with a '*' is a path.Match pattern.
var deviceNodes = []struct {
	group   Devices
	pattern string
}{
	{DevNVIDIA, "nvidiactl"},
	{DevNVIDIA, "nvidia[0-9]*"},
	{DevNVIDIA, "nvidia-uvm"},
	{DevNVIDIA, "nvidia-uvm-tools"},
	{DevNVIDIA, "nvidia-modeset"},
	{DevDRI, "dri"},
	{DevKFD, "kfd"},
}

// String returns the groups' names joined by '+' ("nvidia+dri"), or
// "none".
func (d Devices) String() string {
	var names []string
	for _, g := range []struct {
		group Devices
		name  string
	}{{DevNVIDIA, "nvidia"}, {DevDRI, "dri"}, {DevKFD, "kfd"}} {
		if d&g.group != 0 {
			names = append(names, g.name)
		}
	}
	if rest := d &^ AllDevices; rest != 0 {
		names = append(names, fmt.Sprintf("Devices(%#x)", uint8(rest)))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}

// Feature is a Nix system feature, a word of a derivation's
// requiredSystemFeatures, that the hook may be configured to serve.
type Feature string

// The features nixglhost knows: what each gets is its Grant.
const (
	// CUDA is NVIDIA's compute.
	CUDA Feature = "cuda"
	// OpenGL is graphics: NVIDIA's driver, or Mesa's on a host without it.
	OpenGL Feature = "opengl"
	// NVIDIAGPU is any use of an NVIDIA GPU.
	NVIDIAGPU Feature = "nvidia-gpu"
	// ROCm is AMD's compute, whose userspace comes from Nix itself.
	ROCm Feature = "rocm"
)

// Grant is what a derivation's build sandbox gets.
type Grant struct {
	// Entry is whether it gets the driver's entry at /run/opengl-driver,
	// with the host files the entry's links lead to.
	Entry bool
	// Devices are the groups of device nodes it gets.
	Devices Devices
}

// Grant returns what a derivation requiring f gets: the driver features
// (CUDA, NVIDIAGPU, OpenGL) the entry, NVIDIA's nodes and /dev/dri; ROCm
// /dev/kfd and /dev/dri only. A feature nixglhost does not know, which an
// administrator configured as a GPU feature, gets the entry and every
// node: nothing says which it needs.
func (f Feature) Grant() Grant {
	switch f {
	case CUDA, NVIDIAGPU, OpenGL:
		return Grant{Entry: true, Devices: DevNVIDIA | DevDRI}
	case ROCm:
		return Grant{Devices: DevKFD | DevDRI}
	default:
		return Grant{Entry: true, Devices: AllDevices}
	}
}

// GrantFor returns what a derivation requiring all of features gets: the
// union of their grants (nothing for none).
func GrantFor(features []Feature) Grant {
	var g Grant
	for _, f := range features {
		fg := f.Grant()
		g.Entry = g.Entry || fg.Entry
		g.Devices |= fg.Devices
	}
	return g
}

// Paths returns the hook's lines: the entry at /run/opengl-driver;
// every host file the entry's symlinks lead to, each link of the chain and
// the fully resolved path, at the same place inside; then the device nodes
// of devs that exist under ROOT/dev (DeviceNodes).
func Paths(root, entry string, devs Devices) ([]string, error) {
	return PathsAt(root, RunOpenGLDriver, entry, devs)
}

// PathsAt is Paths for an entry seen at inside (RunOpenGLDriver32 for
// the 32-bit entry).
func PathsAt(root, inside, entry string, devs Devices) ([]string, error) {
	if err := Carriable(inside); err != nil {
		return nil, err
	}
	lines := []string{inside + "=" + entry}
	var host []string
	add := func(p string) {
		if p != entry && !strings.HasPrefix(p, entry+"/") && !slices.Contains(host, p) {
			host = append(host, p)
		}
	}
	err := filepath.WalkDir(entry, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		t, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("cache entry %s: %w", entry, err)
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		// Follow the chain: each link is a path the loader opens.
		for hops := 0; hops < 40; hops++ {
			add(filepath.Clean(t))
			fi, err := os.Lstat(t)
			if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				break
			}
			next, err := os.Readlink(t)
			if err != nil {
				break
			}
			if !filepath.IsAbs(next) {
				next = filepath.Join(filepath.Dir(t), next)
			}
			t = next
		}
		if r, err := filepath.EvalSymlinks(t); err == nil {
			add(r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(host)
	if err := Carriable(append([]string{entry}, host...)...); err != nil {
		return nil, err
	}
	lines = append(lines, host...)
	nodes, err := DeviceNodes(root, devs)
	if err != nil {
		return nil, err
	}
	lines = append(lines, nodes...)
	return lines, nil
}

// DeviceNodes returns the device nodes of the groups in devs that exist
// under ROOT/dev, NVIDIA's first, then /dev/dri, then /dev/kfd (numbered
// nodes by number), as sandbox lines: "/dev/X", or "/dev/X=ROOT/dev/X" for
// another root. No group is no lines, and /dev is not read.
func DeviceNodes(root string, devs Devices) ([]string, error) {
	if devs&AllDevices == 0 {
		return nil, nil
	}
	dev := ldpath.HostPath(root, "/dev")
	ents, err := os.ReadDir(dev)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("device directory %s: %w", dev, err)
	}
	if err := Carriable(dev); err != nil {
		return nil, err
	}
	var out []string
	for _, g := range deviceNodes {
		if devs&g.group == 0 {
			continue
		}
		var names []string
		for _, e := range ents {
			if ok, _ := filepath.Match(g.pattern, e.Name()); ok {
				names = append(names, e.Name())
			}
		}
		sort.Slice(names, func(i, j int) bool {
			a, _ := strconv.Atoi(strings.TrimPrefix(names[i], "nvidia"))
			b, _ := strconv.Atoi(strings.TrimPrefix(names[j], "nvidia"))
			return a < b || a == b && names[i] < names[j]
		})
		for _, n := range names {
			inside := "/dev/" + n
			if root == "/" {
				out = append(out, inside)
			} else {
				out = append(out, inside+"="+filepath.Join(dev, n))
			}
		}
	}
	return out, nil
}

// Carriable checks that each path can be a line of the hook's output: Nix
// splits a line at its first '=' and the output at newlines.
func Carriable(paths ...string) error {
	for _, p := range paths {
		if strings.ContainsAny(p, "=\n") {
			return fmt.Errorf("path %q: Nix's pre-build hook protocol cannot carry '=' or a newline in a path", p)
		}
	}
	return nil
}
