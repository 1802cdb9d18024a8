package main

import (
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/doctor"
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

// TestCompanionBackends32: VDPAU_DRIVER_PATH names one directory and
// libvdpau dlopens a path in it, so with a 32-bit companion it names the
// companion's lib/vdpau-$PLATFORM, which glibc expands per process: a
// 64-bit program gets the 64-bit entry's VDPAU driver, a 32-bit one the
// companion's. GBM_BACKENDS_PATH is a list to Mesa's libgbm, which goes on
// past a backend of the wrong class: the companion's lib/gbm follows the
// 64-bit one. Checked with Debian's real libvdpau1 and libgbm1 of both
// classes (the 32-bit ones run natively or under qemu-i386) loading
// NVIDIA's real 535 backends. Before, both variables named the 64-bit
// directory alone and a 32-bit program got no backend from the entry.
func TestCompanionBackends32(t *testing.T) {
	fixtures.SkipShort(t, "32-bit programs")
	root := fixtures.DebianRoot(t, "amd64")
	fixtures.AddI386Driver(t, root)
	fixtures.AddI386Backends(t, root)
	tree := fixtures.I386Loaders(t)
	loaders := filepath.Join(tree, "usr", "lib", "i386-linux-gnu")
	cache := t.TempDir()
	vars := printEnvJSON(t, baseEnv(t), "--driver-root", root, "--cache-dir", cache)
	lp := strings.Split(vars["LD_LIBRARY_PATH"], ":")
	if len(lp) != 2 {
		t.Fatalf("LD_LIBRARY_PATH = %q, want the 64-bit entry's lib/ then the 32-bit one's", vars["LD_LIBRARY_PATH"])
	}
	main, lib32 := filepath.Dir(lp[0]), filepath.Dir(lp[1])
	want := map[string]string{
		"VDPAU_DRIVER_PATH": filepath.Join(lib32, "lib", "vdpau-$PLATFORM"),
		"GBM_BACKENDS_PATH": filepath.Join(main, "lib", "gbm") + ":" + filepath.Join(lib32, "lib", "gbm"),
	}
	got := map[string]string{"VDPAU_DRIVER_PATH": vars["VDPAU_DRIVER_PATH"], "GBM_BACKENDS_PATH": vars["GBM_BACKENDS_PATH"]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backend variables (-want +got):\n%s", diff)
	}
	// -p prints both lib/ directories, in the launch's order.
	if out, _, code := nixglhost(t, baseEnv(t), "-p", "--driver-root", root, "--cache-dir", cache); code != 0 || strings.TrimSpace(out) != vars["LD_LIBRARY_PATH"] {
		t.Errorf("-p = %q (exit %d), want %q", out, code, vars["LD_LIBRARY_PATH"])
	}

	dir := t.TempDir()
	src := filepath.Join(fixtures.RepoRoot(), "testdata", "probe", "backends.c")
	p64, p32 := filepath.Join(dir, "backends64"), filepath.Join(dir, "backends32")
	fixtures.CC(t, "gcc", "-o", p64, src, "-ldl")
	if out, err := exec.Command("gcc", "-m32", "-o", p32, src, "-ldl").CombinedOutput(); err != nil {
		fixtures.Unavailable(t, "gcc -m32 (packages libc6-dev-i386, lib32gcc-12-dev): %v\n%s", err, out)
	}
	cmd32, err := fixtures.Runner(t, "386").Command(p32, nil, filepath.Join(loaders, "libvdpau.so.1"), filepath.Join(loaders, "libgbm.so.1"))
	fixtures.Must(t, err)
	for _, tc := range []struct {
		name  string
		argv  []string
		entry string
	}{
		{"64-bit", []string{p64, "/usr/lib/x86_64-linux-gnu/libvdpau.so.1", "/usr/lib/x86_64-linux-gnu/libgbm.so.1"}, main},
		{"32-bit", cmd32.Args, lib32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The 32-bit loaders' own libraries come from the user's
			// LD_LIBRARY_PATH, which keeps its place before the entries.
			env := baseEnv(t, "VDPAU_DRIVER=nvidia", "GBM_BACKEND=nvidia-drm", "LD_LIBRARY_PATH="+loaders+":"+filepath.Join(tree, "lib", "i386-linux-gnu"))
			stdout, stderr, code := nixglhost(t, env, append([]string{"--driver-root", root, "--cache-dir", cache, "--", "/bin/sh", "-c", `exec "$@"`, "sh"}, tc.argv...)...)
			// 3: a driver crashed without a device, maps printed.
			if code != 0 && code != 3 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			var maps []string
			for _, l := range strings.Split(stdout, "\n") {
				if m, ok := strings.CutPrefix(l, "map "); ok {
					maps = append(maps, m)
				}
			}
			// The maps name the file opened, links resolved: the same
			// file as the entry's backend of this class.
			for _, b := range []string{"vdpau/libvdpau_nvidia.so.1", "gbm/nvidia-drm_gbm.so"} {
				want, err := os.Stat(filepath.Join(tc.entry, "lib", b))
				if err != nil {
					t.Fatalf("the %s entry's backend: %v", tc.name, err)
				}
				found := false
				for _, m := range maps {
					if fi, err := os.Stat(m); err == nil && os.SameFile(fi, want) {
						found = true
					}
				}
				if !found {
					t.Errorf("the %s program did not map %s from %s: maps %q\n%s\n%s", tc.name, b, tc.entry, maps, stdout, stderr)
				}
			}
		})
	}
}

// TestPreBuildHook32: on a host with the 32-bit driver the pre-build hook
// also gives the build sandbox the self-contained 32-bit entry at
// /run/opengl-driver-32, where nixpkgs' 32-bit libraries look (NixOS's
// place), with every host file its links lead to; before, a 32-bit test in
// a GPU build found no driver. The 64-bit entry stays at
// /run/opengl-driver.
func TestPreBuildHook32(t *testing.T) {
	root := fixtures.DebianRoot(t, "amd64")
	fixtures.AddI386Driver(t, root)
	cache := filepath.Join(t.TempDir(), "nix-gl-host")
	stdout, stderr, code := nixglhost(t, baseEnv(t), "--nix-pre-build-hook", "--driver-root", root, "--cache-dir", cache, drvFixture("plain-cuda"))
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	mounts, err := parseNixHookOutput(stdout)
	if err != nil {
		t.Fatal(err)
	}
	for inside, class := range map[string]elf.Class{"/run/opengl-driver": elf.ELFCLASS64, "/run/opengl-driver-32": elf.ELFCLASS32} {
		entry, ok := mounts[inside]
		if !ok {
			t.Errorf("no %s in the sandbox paths:\n%s", inside, stdout)
			continue
		}
		f, err := elf.Open(filepath.Join(entry, "lib", "libcuda.so.1"))
		if err != nil {
			t.Errorf("%s: %v", inside, err)
			continue
		}
		if f.Class != class {
			t.Errorf("%s holds a %v libcuda, want %v", inside, f.Class, class)
		}
		f.Close()
		// Every link leads, inside the sandbox, to something mounted.
		filepath.WalkDir(entry, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return err
			}
			if target, _ := os.Readlink(p); filepath.IsAbs(target) {
				if _, ok := mounts[target]; !ok {
					t.Errorf("%s -> %s: not in the sandbox paths", p, target)
				}
			}
			return nil
		})
	}
	if mounts["/run/opengl-driver"] == mounts["/run/opengl-driver-32"] {
		t.Errorf("one entry at both places: %s", mounts["/run/opengl-driver"])
	}
	// The doctor of the hook names the entries the hook mounts, the
	// 32-bit one included.
	out, _, _ := nixglhost(t, baseEnv(t), "--doctor", "--json", "--nix-pre-build-hook", "--driver-root", root, "--cache-dir", cache)
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--doctor --nix-pre-build-hook: %v\n%s", err, out)
	}
	if r.Mode != "hook" || r.Cache.Entry != mounts["/run/opengl-driver"] {
		t.Errorf("the doctor of the hook (mode %q) names %q; the hook mounts %q", r.Mode, r.Cache.Entry, mounts["/run/opengl-driver"])
	}
	if r.Companion == nil || r.Companion.Entry != mounts["/run/opengl-driver-32"] {
		t.Errorf("the doctor of the hook reports the companion %+v; the hook mounts %q", r.Companion, mounts["/run/opengl-driver-32"])
	}
}
