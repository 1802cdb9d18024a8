package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
		checkEntry(t, filepath.Dir(lp[i]))
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
	// The program's index remembers that, so that a hot launch reads one
	// index, not two.
	plain := fixtures.DebianRoot(t, "amd64")
	cache2 := t.TempDir()
	for range 3 {
		vars = printEnvJSON(t, baseEnv(t), "--driver-root", plain, "--cache-dir", cache2)
		if strings.Contains(vars["LD_LIBRARY_PATH"], ":") {
			t.Errorf("LD_LIBRARY_PATH = %q on a host without a 32-bit driver", vars["LD_LIBRARY_PATH"])
		}
	}
	indexes, _ := filepath.Glob(filepath.Join(cache2, ".index-*"))
	var remembered []string
	for _, p := range indexes {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "\ncompanion none\n") {
			remembered = append(remembered, p)
		}
	}
	if len(remembered) != 1 {
		t.Errorf("indexes %q: want the 64-bit one to say \"companion none\"", indexes)
	}
	for _, p := range indexes {
		if !slices.Contains(remembered, p) {
			// A hot launch must not need it: gone, the launch is the same.
			os.Remove(p)
		}
	}
	vars = printEnvJSON(t, baseEnv(t), "--driver-root", plain, "--cache-dir", cache2)
	if after, _ := filepath.Glob(filepath.Join(cache2, ".index-*")); len(after) != 1 || strings.Contains(vars["LD_LIBRARY_PATH"], ":") {
		t.Errorf("a hot launch read or wrote a second index (%q) or got a 32-bit entry (%q)", after, vars["LD_LIBRARY_PATH"])
	}
	// A 32-bit libcuda dropped later into a directory only the 32-bit
	// loader searches (no ldconfig run, nothing the 64-bit scan watches
	// changes) is found: the remembered answer holds only under the
	// 32-bit directories it was given under.
	lib32 := filepath.Join(plain, "usr", "lib32")
	if err := os.MkdirAll(lib32, 0o755); err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(fixtures.NvidiaRoot(t, "i386"), "usr", "lib", "i386-linux-gnu", "nvidia", "current")
	for _, n := range []string{"libcuda.so.535.261.03", "libnvidia-ptxjitcompiler.so.535.261.03"} {
		b, err := os.ReadFile(filepath.Join(cur, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(lib32, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vars = printEnvJSON(t, baseEnv(t), "--driver-root", plain, "--cache-dir", cache2)
	if lp := strings.Split(vars["LD_LIBRARY_PATH"], ":"); len(lp) != 2 {
		t.Errorf("after installing a 32-bit driver: LD_LIBRARY_PATH = %q, want the 64-bit and the 32-bit entries", vars["LD_LIBRARY_PATH"])
	} else {
		checkEntry(t, filepath.Dir(lp[1]))
	}
}
