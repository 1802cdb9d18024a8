// Package cdi builds and writes the Container Device Interface spec that
// gives containers the GPU with no wrapper: the self-contained entry of
// system mode mounted read-only at /run/opengl-driver (where every Nix
// program's DT_RUNPATH looks), the host files the entry links to at their
// own paths, and the GPU device nodes, per GPU (by index and by UUID) and
// all together. Podman, Docker 25+, containerd and CRI-O read such specs
// from /etc/cdi or /var/run/cdi (see docs/DESIGN.md, "Containers").
//
// The spec's cdiVersion is the lowest its content needs (0.5.0: Debian
// 12's Podman 4.3.1 reads nothing newer), so it carries no annotations; the
// entry it serves is named by its mount at /run/opengl-driver.
//
// The runtimes read those directories as root. Write trusts only a
// directory that root or the caller alone controls, path included; it
// never follows a link there and never replaces a file it did not write:
// the spec file is nixglhost's when it is of Kind and its bytes are those
// that nixglhost's record beside it (RecordName) lists.
package cdi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/nixglhost/nixglhost/internal/sandbox"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

const (
	// Kind is the spec's device kind: devices are named
	// nixglhost.org/gpu=0, =GPU-<uuid>, =all.
	Kind = "nixglhost.org/gpu"
	// FileName is the spec's file name in the CDI directory.
	FileName = "nixglhost.org-gpu.json"
	// RecordName is nixglhost's record, in the CDI directory, of the spec
	// bytes it wrote as FileName: the proof that the file there is its
	// own. The runtimes read only *.json and *.yaml files there.
	RecordName = ".nixglhost.org-gpu.record"
	// RunOpenGLDriver is where the entry goes in the container: where it
	// goes in the build sandbox too.
	RunOpenGLDriver = sandbox.RunOpenGLDriver
)

// GPU is one NVIDIA GPU as /proc/driver/nvidia/gpus/*/information gives
// it, with the device nodes that belong to it alone.
type GPU struct {
	// Minor is the device minor number ("0" for /dev/nvidia0).
	Minor string
	// UUID is "GPU-<hex>".
	UUID string
	// Bus is the PCI bus location ("0000:01:00.0").
	Bus string
	// Nodes are its device nodes: /dev/nvidia<minor> and the DRM card and
	// render nodes of its PCI device.
	Nodes []string
}

// ReadGPUs reads the GPUs under root, ordered by minor number. A GPU whose
// information file lacks a minor number or a UUID is an error naming the
// file; no GPU at all is not.
func ReadGPUs(root string) ([]GPU, error) {
	dir := ldpath.HostPath(root, "/proc/driver/nvidia/gpus")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var gpus []GPU
	for _, e := range ents {
		p := filepath.Join(dir, e.Name(), "information")
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		g := GPU{Bus: e.Name()}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch strings.TrimSpace(k) {
			case "GPU UUID":
				g.UUID = v
			case "Device Minor":
				g.Minor = v
			case "Bus Location":
				g.Bus = v
			}
		}
		if g.Minor == "" || strings.Trim(g.Minor, "0123456789") != "" || !strings.HasPrefix(g.UUID, "GPU-") || strings.ContainsAny(g.UUID, " /=") {
			return nil, fmt.Errorf("%s: no usable \"Device Minor\" and \"GPU UUID\" lines", p)
		}
		g.Nodes = append(g.Nodes, "/dev/nvidia"+g.Minor)
		// The DRM nodes of the same PCI device.
		g.Nodes = append(g.Nodes, drmNodes(ldpath.HostPath(root, path.Join("/sys/bus/pci/devices", g.Bus, "drm")))...)
		gpus = append(gpus, g)
	}
	sort.Slice(gpus, func(i, j int) bool {
		if len(gpus[i].Minor) != len(gpus[j].Minor) {
			return len(gpus[i].Minor) < len(gpus[j].Minor)
		}
		return gpus[i].Minor < gpus[j].Minor
	})
	return gpus, nil
}

// commonNodes are the device nodes every GPU device of the spec needs.
var commonNodes = []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"}

// Build returns the spec for the entry (a host path) whose links lead to
// hostFiles (the paths the links name, as the pre-build hook lists them:
// each is mounted at the same path, where the links find it), for gpus. Device nodes that do not exist under root are left out; with
// another root than "/", each node's host path is inside it.
func Build(root, entry string, hostFiles []string, gpus []GPU) (*specs.Spec, error) {
	node := func(p string) *specs.DeviceNode {
		hp := ldpath.HostPath(root, p)
		if _, err := os.Stat(hp); err != nil {
			return nil
		}
		d := &specs.DeviceNode{Path: p}
		if hp != p {
			d.HostPath = hp
		}
		return d
	}
	nodes := func(ps []string) []*specs.DeviceNode {
		var out []*specs.DeviceNode
		for _, p := range ps {
			if d := node(p); d != nil {
				out = append(out, d)
			}
		}
		return out
	}
	ro := []string{"ro", "nosuid", "nodev", "bind"}
	edits := specs.ContainerEdits{
		DeviceNodes: nodes(commonNodes),
		Mounts:      []*specs.Mount{{HostPath: entry, ContainerPath: RunOpenGLDriver, Options: ro, Type: "bind"}},
	}
	for _, f := range hostFiles {
		edits.Mounts = append(edits.Mounts, &specs.Mount{HostPath: f, ContainerPath: f, Options: ro, Type: "bind"})
	}
	spec := &specs.Spec{
		Kind:           Kind,
		ContainerEdits: edits,
	}
	var all []string
	if len(gpus) == 0 {
		// A Mesa host (Intel, AMD): its GPUs are the /dev/dri nodes.
		all = drmNodes(ldpath.HostPath(root, "/dev/dri"))
	}
	for _, g := range gpus {
		ed := specs.ContainerEdits{DeviceNodes: nodes(g.Nodes)}
		spec.Devices = append(spec.Devices,
			specs.Device{Name: g.Minor, ContainerEdits: ed},
			specs.Device{Name: g.UUID, ContainerEdits: ed})
		all = append(all, g.Nodes...)
	}
	spec.Devices = append(spec.Devices, specs.Device{Name: "all", ContainerEdits: specs.ContainerEdits{DeviceNodes: nodes(all)}})
	// The lowest version that carries what the spec uses, so that the
	// oldest runtimes that can read it do: 0.5.0 for device names that
	// start with a digit (and a node's HostPath under another root).
	v, err := specs.MinimumRequiredVersion(spec)
	if err != nil {
		return nil, err
	}
	spec.Version = v
	return spec, nil
}

// Entry returns the host path a spec's bytes mount at RunOpenGLDriver when
// the spec is of Kind: the cache entry it serves, whoever wrote it.
func Entry(b []byte) (string, bool) {
	var s specs.Spec
	if json.Unmarshal(b, &s) != nil || s.Kind != Kind {
		return "", false
	}
	for _, m := range s.ContainerEdits.Mounts {
		if m != nil && m.ContainerPath == RunOpenGLDriver && m.HostPath != "" {
			return m.HostPath, true
		}
	}
	return "", false
}

// drmNodes returns /dev/dri/<name> for each DRM card and render node named
// in dir (a /dev/dri, or a PCI device's drm/ in sysfs), sorted; none when
// dir cannot be read.
func drmNodes(dir string) []string {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range des {
		if n := d.Name(); strings.HasPrefix(n, "card") || strings.HasPrefix(n, "renderD") {
			out = append(out, "/dev/dri/"+n)
		}
	}
	sort.Strings(out)
	return out
}
