package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	oci "github.com/opencontainers/runtime-spec/specs-go"
	refcdi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/nixglhost/nixglhost/internal/cdi"
	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestCDISpec: --cdi-spec on a fake host with two GPUs (the real 535
// driver) writes a spec that the reference CDI module reads, validates and
// injects into an OCI spec: nixglhost.org/gpu=all carries both GPUs'
// nodes, =1 and =<uuid of GPU 1> only GPU 1's, and every device the entry
// at /run/opengl-driver (read-only) and the host files it links to. The
// mounts and nodes of that OCI spec, realised with bubblewrap around a
// root that holds only a Nix-like program (its DT_RUNPATH: its store,
// then /run/opengl-driver/lib), let it reach the driver: cuInit answers
// as on a host without a GPU (100), nvmlInit reaches the device node and
// gets /dev/null's answer to its ioctl (17, NVML_ERROR_OPERATING_SYSTEM;
// without the nodes it would be 9, driver not loaded), and only the
// store's libc is mapped. A second run leaves the file as it is; a spec nixglhost
// did not write is refused.
func TestCDISpec(t *testing.T) {
	root := fixtures.TwoGPURoot(t)
	cache := filepath.Join(t.TempDir(), "nix-gl-host")
	dir := filepath.Join(t.TempDir(), "cdi")
	args := []string{"--driver-root", root, "--cache-dir", cache, "--cdi-dir", dir, "--cdi-spec"}
	stdout, stderr, code := nixglhost(t, baseEnv(t), args...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("%s", stdout)
	file := filepath.Join(dir, cdi.FileName)
	b, err := os.ReadFile(file)
	fixtures.Must(t, err)
	if !json.Valid(b) {
		t.Fatalf("%s is not JSON:\n%s", file, b)
	}

	// The reference module's parser and validation.
	spec, err := refcdi.ReadSpec(file, 0)
	if err != nil {
		t.Fatalf("the reference module refuses the spec: %v", err)
	}
	var names []string
	for _, d := range spec.Devices {
		names = append(names, d.Name)
	}
	if want := []string{"0", fixtures.GPUUUIDs[0], "1", fixtures.GPUUUIDs[1], "all"}; !slices.Equal(names, want) {
		t.Errorf("devices %v, want %v", names, want)
	}
	if spec.Version != "0.5.0" || len(spec.Annotations) > 0 {
		t.Errorf("cdiVersion %s, annotations %v; want 0.5.0 and none (Podman 4.3.1 reads nothing newer)", spec.Version, spec.Annotations)
	}
	entry, ok := cdi.Entry(b)
	if _, err := os.Stat(filepath.Join(entry, "manifest.json")); !ok || err != nil || filepath.Dir(entry) != cache {
		t.Fatalf("the spec names entry %q, not one of the system cache %s: %v", entry, cache, err)
	}
	checkEntry(t, entry)

	// Injection into a minimal OCI spec.
	reg, err := refcdi.NewCache(refcdi.WithSpecDirs(dir), refcdi.WithAutoRefresh(false))
	fixtures.Must(t, err)
	inject := func(dev string) *oci.Spec {
		t.Helper()
		s := &oci.Spec{Process: &oci.Process{}, Linux: &oci.Linux{}}
		if unresolved, err := reg.InjectDevices(s, dev); err != nil || len(unresolved) > 0 {
			t.Fatalf("inject %s: %v (unresolved %v)", dev, err, unresolved)
		}
		return s
	}
	gpuNodes := func(s *oci.Spec) []string {
		var out []string
		for _, d := range s.Linux.Devices {
			if strings.HasPrefix(d.Path, "/dev/nvidia") && strings.Trim(strings.TrimPrefix(d.Path, "/dev/nvidia"), "0123456789") == "" ||
				strings.HasPrefix(d.Path, "/dev/dri/") {
				out = append(out, d.Path)
			}
		}
		slices.Sort(out)
		return out
	}
	all := inject(cdi.Kind + "=all")
	if got, want := gpuNodes(all), []string{"/dev/dri/card1", "/dev/dri/card2", "/dev/dri/renderD128", "/dev/dri/renderD129", "/dev/nvidia0", "/dev/nvidia1"}; !slices.Equal(got, want) {
		t.Errorf("=all: GPU nodes %v, want %v", got, want)
	}
	for _, dev := range []string{cdi.Kind + "=1", cdi.Kind + "=" + fixtures.GPUUUIDs[1]} {
		if got, want := gpuNodes(inject(dev)), []string{"/dev/dri/card2", "/dev/dri/renderD129", "/dev/nvidia1"}; !slices.Equal(got, want) {
			t.Errorf("%s: GPU nodes %v, want GPU 1's alone %v", dev, got, want)
		}
	}
	var hasCtl bool
	for _, d := range all.Linux.Devices {
		hasCtl = hasCtl || d.Path == "/dev/nvidiactl"
	}
	if !hasCtl {
		t.Errorf("no /dev/nvidiactl in %+v", all.Linux.Devices)
	}
	var entryMount *oci.Mount
	for i, m := range all.Mounts {
		if m.Destination == cdi.RunOpenGLDriver {
			entryMount = &all.Mounts[i]
		}
	}
	if entryMount == nil || entryMount.Source != entry || !slices.Contains(entryMount.Options, "ro") {
		t.Fatalf("the entry mount %+v, want %s read-only at %s", entryMount, entry, cdi.RunOpenGLDriver)
	}

	// Realised with bubblewrap around a root holding only the program.
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		fixtures.Unavailable(t, "no bwrap (package bubblewrap): %v", err)
	}
	store := fixtures.NixStore(t, "amd64")
	probe := probeWithRunpath(t, store, "/run")
	bargs := []string{"--unshare-all", "--tmpfs", "/", "--proc", "/proc", "--dev", "/dev", "--ro-bind", store.Dir, store.Dir}
	for _, m := range all.Mounts {
		bargs = append(bargs, "--ro-bind", m.Source, m.Destination)
	}
	for _, d := range all.Linux.Devices {
		bargs = append(bargs, "--dev-bind", filepath.Join(root, d.Path), d.Path)
	}
	cmd := exec.Command(bwrap, append(bargs, "--setenv", "CUDA_CACHE_DISABLE", "1", probe)...)
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No permissions") || strings.Contains(string(out), "Operation not permitted") {
			fixtures.Unavailable(t, "bwrap cannot make a sandbox here: %s", out)
		}
		t.Fatalf("bwrap: %v\n%s", err, out)
	}
	res := fixtures.ParseProbe(string(out))
	if res.CUDADlopen != "ok" || res.CuInit != 100 || res.NVMLInit != 17 {
		t.Errorf("in the container: cuda_dlopen %q cuInit %d nvmlInit %d, want ok 100 17\n%s", res.CUDADlopen, res.CuInit, res.NVMLInit, out)
	}
	if !strings.Contains(string(out), "cuda_dlopen ok "+cdi.RunOpenGLDriver+"/lib/") {
		t.Errorf("libcuda not from %s/lib:\n%s", cdi.RunOpenGLDriver, out)
	}
	for _, m := range res.MappedLibc() {
		if !strings.HasPrefix(m, store.Dir+"/") {
			t.Errorf("a libc outside the store in the container: %s", m)
		}
	}

	// Idempotent; and a foreign spec is left alone.
	stdout, _, code = nixglhost(t, baseEnv(t), args...)
	if code != 0 || !strings.Contains(stdout, "already up to date") {
		t.Errorf("second run: exit %d, %s", code, stdout)
	}
	fixtures.Must(t, os.WriteFile(file, []byte(`{"cdiVersion":"0.6.0","kind":"nvidia.com/gpu","devices":[]}`), 0o644))
	stdout, stderr, code = nixglhost(t, baseEnv(t), args...)
	if code == 0 || !strings.Contains(stderr, "did not write it") {
		t.Errorf("a foreign spec: exit %d\n%s%s", code, stdout, stderr)
	}
	var kept map[string]any
	if b, _ := os.ReadFile(file); json.Unmarshal(b, &kept) != nil || kept["kind"] != "nvidia.com/gpu" {
		t.Errorf("the foreign spec was changed: %s", b)
	}
}
