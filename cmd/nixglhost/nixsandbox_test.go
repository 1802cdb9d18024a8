package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestNixSandboxBuild builds, with the real Nix (Debian's nix-bin) and its
// sandbox, a derivation that requires "cuda", with nixglhost as the
// pre-build hook. Its builder checks that /run/opengl-driver holds
// libcuda.so.1 and the EGL and Vulkan vendor files, then runs the Nix-like
// probe (DT_RUNPATH STORE:/run/opengl-driver/lib, as addDriverRunpath
// links) with no LD_LIBRARY_PATH: the gcc-built libcuda's cuInit gives 100
// only when it found libnvidia-ptxjitcompiler (221 otherwise). A derivation
// without the feature gets no /run/opengl-driver. The store is a private
// chroot store (nix --store DIR), so /nix/store is not touched.
//
// It needs nix-build and root (the sandbox uses namespaces and, with no
// build users, runs as root); without them it is skipped.
func TestNixSandboxBuild(t *testing.T) {
	fixtures.SkipShort(t, "the Nix sandbox build")
	nixBuild, err := exec.LookPath("nix-build")
	if err != nil {
		fixtures.Unavailable(t, "nix-build not installed (Debian: nix-bin): %v", err)
	}
	if os.Geteuid() != 0 {
		fixtures.Unavailable(t, "the Nix sandbox needs root here")
	}
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		fixtures.Unavailable(t, "no /bin/sh: %v", err)
	}
	root, cache := hookRoot(t)
	for _, f := range []struct{ dir, name, body string }{
		{"usr/share/glvnd/egl_vendor.d", "10_nvidia.json", `{"file_format_version":"1.0.0","ICD":{"library_path":"libEGL_nvidia.so.0"}}`},
		{"usr/share/vulkan/icd.d", "nvidia_icd.json", `{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3.242"}}`},
	} {
		if err := os.MkdirAll(filepath.Join(root, f.dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f.dir, f.name), []byte(f.body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store := fixtures.NixStore(t, "amd64")
	probe := probeWithRunpath(t, store, "/run")

	work := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Nix runs the hook as a bare program path with DRV [SANDBOX]: a
	// wrapper names the test root and cache.
	hook := filepath.Join(work, "hook")
	script := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q --nix-pre-build-hook --driver-root %q --cache-dir %q -d /drv \"$@\"\n", asMainEnv, self, root, cache)
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	check := strings.Join([]string{
		"set -e",
		"[ -e /run/opengl-driver/lib/libcuda.so.1 ]",
		"[ -e /run/opengl-driver/share/glvnd/egl_vendor.d/10_nvidia.json ]",
		"[ -e /run/opengl-driver/share/vulkan/icd.d/nvidia_icd.json ]",
		"[ -e /dev/nvidiactl ]",
		"unset LD_LIBRARY_PATH",
		"CUDA_CACHE_DISABLE=1 " + probe + " > $out",
	}, "\n")
	expr := fmt.Sprintf(`{
  gpu = derivation { name = "gpu-check"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" %q ]; requiredSystemFeatures = [ "cuda" ]; };
  plain = derivation { name = "plain-check"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "if [ -e /run/opengl-driver ]; then echo present; else echo absent; fi > $out" ]; };
}`, check)
	nixFile := filepath.Join(work, "default.nix")
	if err := os.WriteFile(nixFile, []byte(expr), 0o644); err != nil {
		t.Fatal(err)
	}
	chroot := filepath.Join(work, "store")
	libDirs := "/lib/x86_64-linux-gnu /lib64 /usr/lib/x86_64-linux-gnu"
	build := func(attr string) string {
		t.Helper()
		cmd := exec.Command(nixBuild, nixFile, "-A", attr, "--no-out-link",
			"--store", chroot,
			"--option", "sandbox", "true",
			"--option", "build-users-group", "",
			"--option", "substituters", "",
			"--option", "system-features", "cuda",
			"--option", "pre-build-hook", hook,
			"--option", "sandbox-paths", "/bin/sh="+sh+" "+libDirs+" "+store.Dir,
		)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + work, "NIX_CONF_DIR=" + work, "XDG_CACHE_HOME=" + filepath.Join(work, "cache")}
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			if strings.Contains(string(stderr), "sandbox") && strings.Contains(string(stderr), "not supported") {
				fixtures.Unavailable(t, "the Nix sandbox cannot run here:\n%s", stderr)
			}
			t.Fatalf("nix-build -A %s: %v\n%s", attr, err, stderr)
		}
		b, err := os.ReadFile(filepath.Join(chroot, strings.TrimSpace(string(out))))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// /dev/nvidiactl in the sandbox comes from the fake root's dev/.
	out := build("gpu")
	res := fixtures.ParseProbe(out)
	if res.CUDADlopen != "ok" || res.CuInit != 100 || res.NVMLInit != 9 {
		t.Fatalf("probe in the sandbox: cuda_dlopen %q cuInit %d nvmlInit %d, want ok 100 9 (221: ptxjit not found)\n%s", res.CUDADlopen, res.CuInit, res.NVMLInit, out)
	}
	// libcuda is the entry's copy; the leaf its cuInit dlopens is the
	// host's file, bound into the sandbox by the hook and found through
	// the copy's DT_RPATH.
	if m := res.MapsContaining("/libnvidia-ptxjitcompiler.so"); len(m) == 0 || !strings.HasPrefix(m[0], filepath.Join(root, "drv")+"/") {
		t.Errorf("ptxjit mapped from %q in the sandbox, want the host's file under %s/drv\n%s", m, root, out)
	}
	for _, m := range res.MappedLibc() {
		if !strings.HasPrefix(m, store.Dir+"/") {
			t.Errorf("a libc outside the program's store is mapped in the sandbox: %s", m)
		}
	}
	if got := build("plain"); got != "absent\n" {
		t.Errorf("a derivation without a GPU feature saw /run/opengl-driver: %q", got)
	}
}
