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
// nodes, and the spec names its entry and its generator.
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
	if spec.Annotations[EntryAnnotation] != "/var/cache/nix-gl-host/x" || spec.Annotations[GeneratorAnnotation] != "nixglhost" || spec.Version == "" {
		t.Errorf("spec %+v", spec)
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
