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

// gpuDevices are the device nodes a GPU builder needs, under /dev; a name
// with a '*' is a path.Match pattern. /dev/dri serves Mesa's GPUs and
// /dev/kfd AMD's compute (ROCm).
var gpuDevices = []string{"nvidiactl", "nvidia[0-9]*", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "dri", "kfd"}

// Paths returns the hook's lines: the entry at /run/opengl-driver;
// every host file the entry's symlinks lead to, each link of the chain and
// the fully resolved path, at the same place inside; then the device nodes
// that exist under ROOT/dev.
func Paths(root, entry string) ([]string, error) {
	lines := []string{RunOpenGLDriver + "=" + entry}
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
	devs, err := DeviceNodes(root)
	if err != nil {
		return nil, err
	}
	lines = append(lines, devs...)
	return lines, nil
}

// DeviceNodes returns the GPU device nodes under ROOT/dev, in gpuDevices
// order (numbered nodes by number), as sandbox lines: "/dev/X", or
// "/dev/X=ROOT/dev/X" for another root.
func DeviceNodes(root string) ([]string, error) {
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
	for _, pat := range gpuDevices {
		var names []string
		for _, e := range ents {
			if ok, _ := filepath.Match(pat, e.Name()); ok {
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
