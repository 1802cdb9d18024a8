package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestUserVulkanDrivers: the Vulkan loader reads VK_DRIVER_FILES and,
// only when that is unset, VK_ICD_FILENAMES. A user's driver list, in
// whichever of the two the user set, is extended with the entry's ICD and
// the other is left unset, so the real Debian loader offers the user's
// driver (Mesa's lavapipe here, which needs no GPU) beside NVIDIA's.
// Before, nixglhost also set VK_DRIVER_FILES beside a user's
// VK_ICD_FILENAMES and the loader ignored the user's driver.
func TestUserVulkanDrivers(t *testing.T) {
	if _, err := exec.Command("sh", "-c", "ldconfig -p | grep -q libvulkan.so.1").CombinedOutput(); err != nil {
		fixtures.Unavailable(t, "libvulkan.so.1 not installed (package libvulkan1)")
	}
	lvp := "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"
	if _, err := os.Stat(lvp); err != nil {
		fixtures.Unavailable(t, "no lavapipe ICD (package mesa-vulkan-drivers): %v", err)
	}
	root := fixtures.DebianRoot(t, "amd64")
	prog := clientsProbe(t, nil)
	cache := t.TempDir()
	for _, tc := range []struct{ set, unset string }{
		{"VK_ICD_FILENAMES", "VK_DRIVER_FILES"},
		{"VK_DRIVER_FILES", "VK_ICD_FILENAMES"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			env := baseEnv(t, tc.set+"="+lvp)
			vars := printEnvJSON(t, env, "--driver-root", root, "--cache-dir", cache)
			if v := vars[tc.set]; !strings.HasPrefix(v, lvp+":"+cache+"/") || !strings.HasSuffix(v, "/share/vulkan/icd.d/nvidia_icd.json") {
				t.Errorf("%s = %q, want the user's ICD then the entry's", tc.set, v)
			}
			if v, ok := vars[tc.unset]; ok {
				t.Errorf("%s = %q set beside the user's %s: the loader would read only one", tc.unset, v, tc.set)
			}
			stdout, stderr, code := nixglhost(t, env, "--driver-root", root, "--cache-dir", cache, "--", prog, "vulkan")
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stdout, "vulkan_device llvmpipe") {
				t.Errorf("the Vulkan loader did not offer the user's lavapipe:\n%s\n%s", stdout, stderr)
			}
		})
	}
}

// TestUserLibraryPathKept: an inherited LD_LIBRARY_PATH reaches the
// program as it was, ours appended. Its empty elements stay: glibc reads
// one as the current directory, so the real loader still finds a library
// there (dropping it, as nixglhost did, changed what the program loads);
// its duplicates stay too. An empty LD_LIBRARY_PATH, which glibc ignores,
// gets no empty element of ours.
func TestUserLibraryPathKept(t *testing.T) {
	root := fixtures.DebianRoot(t, "amd64")
	cache := t.TempDir()
	work := t.TempDir()
	src := fixtures.Write(t, filepath.Join(work, "mine.c"), "int mine(void) { return 1; }\n")
	fixtures.CC(t, "gcc", "-shared", "-fPIC", "-o", filepath.Join(work, "libmine.so"), src)
	probe := filepath.Join(t.TempDir(), "probe")
	fixtures.CC(t, "gcc", "-o", probe, fixtures.ProbeSource(), "-ldl")
	for _, tc := range []struct{ name, lp, want string }{
		{"leading empty element", ":/opt/a", ":/opt/a:"},
		{"trailing empty element and a duplicate", "/opt/a:/opt/b:/opt/a:", "/opt/a:/opt/b:/opt/a::"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := baseEnv(t, "LD_LIBRARY_PATH="+tc.lp)
			vars := printEnvJSON(t, env, "--driver-root", root, "--cache-dir", cache)
			lib, ok := strings.CutPrefix(vars["LD_LIBRARY_PATH"], tc.want)
			if !ok || strings.Contains(lib, ":") || !strings.HasPrefix(lib, cache+"/") {
				t.Errorf("LD_LIBRARY_PATH = %q, want %q then the entry's lib/", vars["LD_LIBRARY_PATH"], tc.want)
			}
			if tc.lp == "" {
				return
			}
			// The real loader, run from the directory holding libmine.so.
			stdout, stderr, code := nixglhost(t, env, "--driver-root", root, "--cache-dir", cache, "--", "/bin/sh", "-c", `cd "$0" && exec "$@"`, work, probe, "libmine.so")
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			if d, ok := fixtures.ParseProbe(stdout).Lookup("libmine.so"); !ok || !d.OK {
				t.Errorf("dlopen(libmine.so) from the current directory = %+v, want it found through the empty element\n%s", d, stdout)
			}
		})
	}
}
