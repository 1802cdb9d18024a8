package cdi

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestReadGPUs: a malformed information file is an error naming it; no
// /proc/driver/nvidia is no GPU.
func TestReadGPUs(t *testing.T) {
	root := t.TempDir()
	if gpus, err := ReadGPUs(root); err != nil || gpus != nil {
		t.Errorf("no driver: %v, %v", gpus, err)
	}
	p := filepath.Join(root, "proc/driver/nvidia/gpus/0000:01:00.0/information")
	fixtures.Write(t, p, "Model: x\nGPU UUID: GPU-1\nDevice Minor: one\n")
	if _, err := ReadGPUs(root); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("malformed: %v, want an error naming %s", err, p)
	}
}

// TestBuildMesaHost: without an NVIDIA GPU, =all carries the /dev/dri
// nodes.
func TestBuildMesaHost(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"card0", "renderD128", "by-path"} {
		fixtures.Must(t, os.MkdirAll(filepath.Join(root, "dev/dri"), 0o755))
		fixtures.Write(t, filepath.Join(root, "dev/dri", n), "")
	}
	spec, err := Build(root, "/var/cache/nix-gl-host/x", []string{"/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1"}, nil)
	fixtures.Must(t, err)
	if len(spec.Devices) != 1 || spec.Devices[0].Name != "all" {
		t.Fatalf("devices %+v, want all alone", spec.Devices)
	}
	var got []string
	for _, d := range spec.Devices[0].ContainerEdits.DeviceNodes {
		got = append(got, d.Path)
	}
	if !slices.Equal(got, []string{"/dev/dri/card0", "/dev/dri/renderD128"}) {
		t.Errorf("=all nodes %v", got)
	}
}

// TestBuildVersion: the spec's cdiVersion is the lowest its content needs
// and never 0.6.0 or later (Debian 12's Podman 4.3.1 reads up to 0.5.0, and
// at 0.5.0 not the top-level annotations field): 0.4.0 on a Mesa host
// (mount types), 0.5.0 with GPUs (device names that start with a digit).
// It carries no annotations, and Entry finds its entry from the mount.
func TestBuildVersion(t *testing.T) {
	tests := []struct {
		name        string
		gpus        []GPU
		wantVersion string
	}{
		{"mesa host", nil, "0.4.0"},
		{"two GPUs", []GPU{{Minor: "0", UUID: "GPU-a", Nodes: []string{"/dev/nvidia0"}}, {Minor: "1", UUID: "GPU-b", Nodes: []string{"/dev/nvidia1"}}}, "0.5.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const entry = "/var/cache/nix-gl-host/0123456789abcdef0123456789abcdef"
			spec, err := Build(t.TempDir(), entry, []string{"/usr/lib/x86_64-linux-gnu/libnvidia-glcore.so.535.261.03"}, tt.gpus)
			fixtures.Must(t, err)
			if spec.Version != tt.wantVersion || spec.Annotations != nil {
				t.Errorf("cdiVersion %s, annotations %v; want %s and none", spec.Version, spec.Annotations, tt.wantVersion)
			}
			b, err := marshal(spec)
			fixtures.Must(t, err)
			if strings.Contains(string(b), "annotations") {
				t.Errorf("the spec's JSON has annotations:\n%s", b)
			}
			if got, ok := Entry(b); !ok || got != entry {
				t.Errorf("Entry: %q, %t; want %s", got, ok, entry)
			}
		})
	}
}

// TestEntry: Entry reads the mount at /run/opengl-driver of a spec of
// nixglhost's kind only.
func TestEntry(t *testing.T) {
	tests := []struct {
		name, spec, want string
		ok               bool
	}{
		{"ours", `{"kind":"nixglhost.org/gpu","containerEdits":{"mounts":[{"hostPath":"/h/lib","containerPath":"/h/lib"},{"hostPath":"/c/e","containerPath":"/run/opengl-driver"}]}}`, "/c/e", true},
		{"another kind", `{"kind":"nvidia.com/gpu","containerEdits":{"mounts":[{"hostPath":"/c/e","containerPath":"/run/opengl-driver"}]}}`, "", false},
		{"no such mount", `{"kind":"nixglhost.org/gpu","containerEdits":{"mounts":[{"hostPath":"/c/e","containerPath":"/run/other"}]}}`, "", false},
		{"not JSON", `kind: nixglhost.org/gpu`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Entry([]byte(tt.spec))
			if got != tt.want || ok != tt.ok {
				t.Errorf("Entry: %q, %t; want %q, %t", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestWriteRefusesOpenDirectory: a CDI directory others can write to is
// refused before anything is written.
func TestWriteRefusesOpenDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cdi")
	fixtures.Must(t, os.Mkdir(dir, 0o755))
	fixtures.Must(t, os.Chmod(dir, 0o777))
	spec, err := Build(t.TempDir(), "/var/cache/nix-gl-host/x", nil, nil)
	fixtures.Must(t, err)
	if _, err := Write(dir, spec); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Write into a mode-0777 directory: %v, want a refusal naming it", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err == nil {
		t.Errorf("a spec was written")
	}
	fixtures.Must(t, os.Chmod(dir, 0o755))
	if changed, err := Write(dir, spec); err != nil || !changed {
		t.Errorf("Write into a 0755 directory: %t, %v", changed, err)
	}
}
