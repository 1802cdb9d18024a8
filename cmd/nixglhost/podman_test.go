package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/cdi"
	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// lsdevSource lists the GPU device nodes a container was given: every
// /dev/nvidiaN and /dev/dri entry, one per line.
const lsdevSource = `#include <dirent.h>
#include <stdio.h>
#include <string.h>
static void list(const char *dir, const char *prefix) {
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d) return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
		printf("node %s/%s\n", dir, e->d_name);
	}
	closedir(d);
}
int main(void) {
	list("/dev", "nvidia");
	list("/dev/dri", "");
	return 0;
}
`

// podmanScript runs podman ("$@") in a mount namespace of its own, where
// /run is a fresh tmpfs whose cdi/ is the test's CDI directory ($CDI_DIR)
// and /etc/cdi, where it exists, an empty directory: Podman 4.3.1 reads
// specs only from /etc/cdi and /var/run/cdi (no --cdi-spec-dir, no
// containers.conf setting), and the host's own are no part of the test.
const podmanScript = `set -e
mount -t tmpfs -o mode=0755 nixglhost-test /run
mkdir /run/cdi
mount --bind "$CDI_DIR" /run/cdi
if [ -d /etc/cdi ]; then mount --bind "$EMPTY_DIR" /etc/cdi; fi
exec "$@"
`

// TestCDIPodman: Debian 12's own Podman (4.3.1, with runc) reads the spec
// --cdi-spec writes, on a fake host with two GPUs and the real 535 driver,
// and refuses the same spec at cdiVersion 0.6.0, or at 0.5.0 with the
// top-level annotations field (what nixglhost wrote before). In a
// container whose root holds only a Nix-like store (its own glibc; the
// programs' DT_RUNPATH names the store, then /run/opengl-driver/lib) and
// nothing of the host's, run with --device nixglhost.org/gpu=all: libcuda
// loads from /run/opengl-driver/lib and cuInit answers as on a host
// without a GPU (100); NVML loads from there too and nvmlInit answers as
// without a GPU (9: NVML finds no NVIDIA PCI device in the host's /sys,
// which Podman mounts); libEGL_nvidia loads from there; only the store's
// libc is mapped. =all gives both GPUs' device nodes, =1 only GPU 1's,
// each the control node.
func TestCDIPodman(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		fixtures.Unavailable(t, "no podman (packages podman and runc): %v", err)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		fixtures.Unavailable(t, "no runc (package runc): %v", err)
	}
	if os.Geteuid() != 0 {
		fixtures.Unavailable(t, "podman in a mount namespace of the test's own needs root")
	}
	root := fixtures.TwoGPURoot(t)
	cache := filepath.Join(t.TempDir(), "nix-gl-host")
	dir := filepath.Join(t.TempDir(), "cdi")
	stdout, stderr, code := nixglhost(t, baseEnv(t), "--driver-root", root, "--cache-dir", cache, "--cdi-dir", dir, "--cdi-spec")
	if code != 0 {
		t.Fatalf("--cdi-spec: exit %d\n%s%s", code, stdout, stderr)
	}
	store := fixtures.NixStore(t, "amd64")
	probe := probeWithRunpath(t, store, "/run")
	src := filepath.Join(t.TempDir(), "lsdev.c")
	fixtures.Write(t, src, lsdevSource)
	lsdev := store.Compile(t, src, "lsdev")

	// Podman's own state, away from the host's: storage, run root, temp.
	state := t.TempDir()
	rootfs := fixtures.MkdirMode(t, filepath.Join(state, "rootfs"), 0o755)
	empty := fixtures.MkdirMode(t, filepath.Join(state, "empty"), 0o755)
	// podmanRun runs args in a container given dev, with specDir as
	// /var/run/cdi.
	podmanRun := func(specDir, dev string, args ...string) (stdout, stderr string, err error) {
		pargs := []string{podman,
			"--root", filepath.Join(state, "storage"), "--runroot", filepath.Join(state, "runroot"),
			"--tmpdir", filepath.Join(state, "tmp"), "--storage-driver", "vfs",
			"--runtime", "runc", "--cgroup-manager=cgroupfs", "--events-backend", "file",
			"run", "--rm", "--network", "none",
			"--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
			"--device", dev,
			"--volume", store.Dir + ":" + store.Dir + ":ro",
			"--env", "CUDA_CACHE_DISABLE=1",
			"--rootfs", rootfs}
		cmd := exec.Command("/bin/sh", append([]string{"-c", podmanScript, "sh"}, append(pargs, args...)...)...)
		cmd.Env = append(os.Environ(), "CDI_DIR="+specDir, "EMPTY_DIR="+empty)
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		var errb strings.Builder
		cmd.Stderr = &errb
		out, err := cmd.Output()
		return string(out), errb.String(), err
	}
	run := func(t *testing.T, dev string, args ...string) string {
		t.Helper()
		out, errs, err := podmanRun(dir, dev, args...)
		if err != nil {
			t.Fatalf("podman run --device %s %s: %v\nstdout:\n%s\nstderr:\n%s", dev, strings.Join(args, " "), err, out, errs)
		}
		return out
	}
	if out, err := exec.Command(podman, "--version").CombinedOutput(); err == nil {
		t.Logf("%s", out)
	}

	all := cdi.Kind + "=all"
	// The spec as nixglhost wrote it before (0.6.0, for its annotations),
	// and 0.5.0 with the annotations: this Podman reads neither.
	t.Run("newer specs refused", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(dir, cdi.FileName))
		fixtures.Must(t, err)
		for _, tt := range []struct{ name, version string }{{"0.6.0", "0.6.0"}, {"0.5.0 with annotations", "0.5.0"}} {
			var spec map[string]any
			fixtures.Must(t, json.Unmarshal(b, &spec))
			spec["cdiVersion"] = tt.version
			spec["annotations"] = map[string]string{"nixglhost.org/generator": "nixglhost"}
			nb, err := json.Marshal(spec)
			fixtures.Must(t, err)
			other := fixtures.MkdirMode(t, filepath.Join(t.TempDir(), "cdi"), 0o755)
			fixtures.Write(t, filepath.Join(other, cdi.FileName), string(nb))
			out, errs, err := podmanRun(other, all, lsdev)
			if err == nil || !strings.Contains(errs, "unresolvable CDI devices") {
				t.Errorf("%s: podman %v, want it to refuse the spec (unresolvable CDI devices)\nstdout:\n%s\nstderr:\n%s", tt.name, err, out, errs)
			}
		}
	})
	t.Run("driver", func(t *testing.T) {
		out := run(t, all, probe)
		res := fixtures.ParseProbe(out)
		lib := cdi.RunOpenGLDriver + "/lib/"
		if res.CUDADlopen != "ok" || !strings.HasPrefix(res.CUDAPath, lib) || res.CuInit != 100 {
			t.Errorf("libcuda: %q from %q, cuInit %d; want it from %s, 100\n%s", res.CUDADlopen, res.CUDAPath, res.CuInit, lib, out)
		}
		// NVML looks for NVIDIA's PCI devices in /sys, the host's in the
		// container: none here (9, driver not loaded); with the kernel
		// module loaded it goes on to the device node's ioctl (17).
		if res.NVMLDlopen != "ok" || !strings.HasPrefix(res.NVMLPath, lib) || res.NVMLInit != 9 && res.NVMLInit != 17 {
			t.Errorf("NVML: %q from %q, nvmlInit %d; want it from %s, 9 or 17\n%s", res.NVMLDlopen, res.NVMLPath, res.NVMLInit, lib, out)
		}
		libc := res.MappedLibc()
		if len(libc) == 0 {
			t.Errorf("no libc mapped\n%s", out)
		}
		for _, m := range libc {
			if !strings.HasPrefix(m, store.Dir+"/") {
				t.Errorf("a libc outside the store in the container: %s", m)
			}
		}
	})
	t.Run("EGL", func(t *testing.T) {
		out := run(t, all, probe, "libEGL_nvidia.so.0")
		res := fixtures.ParseProbe(out)
		d, ok := res.Lookup("libEGL_nvidia.so.0")
		if !ok || !d.OK || !strings.HasPrefix(d.Path, cdi.RunOpenGLDriver+"/lib/") {
			t.Errorf("libEGL_nvidia: %+v; want it loaded from %s/lib\n%s", d, cdi.RunOpenGLDriver, out)
		}
	})
	nodes := func(out string) []string {
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if n, ok := strings.CutPrefix(l, "node "); ok && (n == "/dev/nvidia0" || n == "/dev/nvidia1" || strings.HasPrefix(n, "/dev/dri/")) {
				got = append(got, n)
			}
		}
		slices.Sort(got)
		return got
	}
	for _, tt := range []struct {
		dev  string
		want []string
	}{
		{all, []string{"/dev/dri/card1", "/dev/dri/card2", "/dev/dri/renderD128", "/dev/dri/renderD129", "/dev/nvidia0", "/dev/nvidia1"}},
		{cdi.Kind + "=1", []string{"/dev/dri/card2", "/dev/dri/renderD129", "/dev/nvidia1"}},
	} {
		t.Run("nodes "+tt.dev, func(t *testing.T) {
			out := run(t, tt.dev, lsdev)
			if d := cmp.Diff(tt.want, nodes(out)); d != "" {
				t.Errorf("GPU nodes in the container (-want +got):\n%s\n%s", d, out)
			}
			if !strings.Contains(out, "node /dev/nvidiactl\n") {
				t.Errorf("no /dev/nvidiactl:\n%s", out)
			}
		})
	}
}
