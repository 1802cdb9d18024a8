package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestCompanion32: on a host with Debian's 32-bit driver beside the 64-bit
// one, a 64-bit launch also prepares the 32-bit entry and puts its lib/
// after the 64-bit one, with its Vulkan ICD after the 64-bit ICD; a 32-bit
// program the 64-bit one starts (as Steam and Wine do) then loads the
// 32-bit libcuda from it, the loader skipping the 64-bit one of the wrong
// class. Before, it got no driver. On a host without a 32-bit driver the
// environment is the 64-bit entry's alone.
func TestCompanion32(t *testing.T) {
	root := fixtures.DebianRoot(t, "amd64")
	fixtures.AddI386Driver(t, root)
	cache := t.TempDir()
	vars := printEnvJSON(t, baseEnv(t), "--driver-root", root, "--cache-dir", cache)
	lp := strings.Split(vars["LD_LIBRARY_PATH"], ":")
	if len(lp) != 2 {
		t.Fatalf("LD_LIBRARY_PATH = %q, want the 64-bit entry's lib/ then the 32-bit one's", vars["LD_LIBRARY_PATH"])
	}
	for i, class := range []elf.Class{elf.ELFCLASS64, elf.ELFCLASS32} {
		f, err := elf.Open(filepath.Join(lp[i], "libcuda.so.1"))
		if err != nil {
			t.Fatalf("LD_LIBRARY_PATH element %d: %v", i, err)
		}
		if f.Class != class {
			t.Errorf("LD_LIBRARY_PATH element %d holds a %v libcuda, want %v", i, f.Class, class)
		}
		f.Close()
	}
	icds := strings.Split(vars["VK_DRIVER_FILES"], ":")
	if len(icds) != 2 || !strings.HasPrefix(icds[0], filepath.Dir(lp[0])+"/") || !strings.HasPrefix(icds[1], filepath.Dir(lp[1])+"/") {
		t.Errorf("VK_DRIVER_FILES = %q, want the 64-bit entry's ICD then the 32-bit one's", vars["VK_DRIVER_FILES"])
	}

	// A 32-bit program started by a 64-bit one (a shell here), run
	// natively or under qemu-i386, whichever this kernel allows.
	probe := filepath.Join(t.TempDir(), "probe32")
	if out, err := exec.Command("gcc", "-m32", "-o", probe, fixtures.ProbeSource(), "-ldl").CombinedOutput(); err != nil {
		fixtures.Unavailable(t, "gcc -m32 (packages libc6-dev-i386, lib32gcc-12-dev): %v\n%s", err, out)
	}
	run := fixtures.Runner(t, "386")
	cmd, err := run.Command(probe, nil, "libcuda.so.1")
	fixtures.Must(t, err)
	stdout, stderr, code := nixglhost(t, baseEnv(t), append([]string{"--driver-root", root, "--cache-dir", cache, "--", "/bin/sh", "-c", `exec "$@"`, "sh"}, cmd.Args...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	d, ok := fixtures.ParseProbe(stdout).Lookup("libcuda.so.1")
	if !ok || !d.OK || !strings.HasPrefix(d.Path, lp[1]+"/") {
		t.Errorf("the 32-bit program's dlopen(libcuda.so.1) = %+v, want it from %s\n%s", d, lp[1], stdout)
	}

	// No 32-bit driver: the 64-bit entry alone, and no 32-bit entry built.
	plain := fixtures.DebianRoot(t, "amd64")
	cache2 := t.TempDir()
	for range 2 { // the second launch reads the no-driver index
		vars = printEnvJSON(t, baseEnv(t), "--driver-root", plain, "--cache-dir", cache2)
		if strings.Contains(vars["LD_LIBRARY_PATH"], ":") {
			t.Errorf("LD_LIBRARY_PATH = %q on a host without a 32-bit driver", vars["LD_LIBRARY_PATH"])
		}
	}
	ents, _ := os.ReadDir(cache2)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if n := strings.Count(strings.Join(names, " "), ".index-"); n != 2 {
		t.Errorf("cache holds %v: want the 64-bit entry, its index and the no-driver index of the 32-bit companion", names)
	}
}
