package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/entrycheck"
	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// echoMain is the test binary acting as a program under nixglhost: it
// prints what it was given as JSON and exits with NIXGLHOST_TEST_EXIT.
func echoMain() {
	in, _ := io.ReadAll(os.Stdin)
	wd, _ := os.Getwd()
	json.NewEncoder(os.Stdout).Encode(echoed{Args: os.Args, Dir: wd, Env: os.Environ(), Stdin: string(in), Pid: os.Getpid()})
	fmt.Fprint(os.Stderr, "to stderr")
	code, _ := strconv.Atoi(os.Getenv("NIXGLHOST_TEST_EXIT"))
	os.Exit(code)
}

type echoed struct {
	Args  []string
	Dir   string
	Env   []string
	Stdin string
	Pid   int
}

// baseEnv is a minimal environment for the command under test.
func baseEnv(t *testing.T, extra ...string) []string {
	return append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, extra...)
}

// entryOf returns the single cache entry under cacheDir.
func entryOf(t *testing.T, cacheDir string) string {
	t.Helper()
	ents, err := os.ReadDir(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if hostdrivers.IsKeyName(e.Name()) {
			out = append(out, filepath.Join(cacheDir, e.Name()))
		}
	}
	if len(out) != 1 {
		t.Fatalf("cache %s holds %d entries, want 1: %v", cacheDir, len(out), out)
	}
	return out[0]
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// printEnv runs --print-env --json and returns the variables.
func printEnvJSON(t *testing.T, env []string, args ...string) map[string]string {
	t.Helper()
	out, errOut, code := nixglhost(t, env, append([]string{"--print-env", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("--print-env exited %d: %s", code, errOut)
	}
	m := map[string]string{}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("--print-env --json: %v\n%s", err, out)
	}
	return m
}

// checkEntry checks an entry a test made against every invariant of
// docs/DESIGN.md (internal/entrycheck).
func checkEntry(t *testing.T, entry string) {
	t.Helper()
	entrycheck.Check(t, entry)
}

// TestProbeWithDirs is the central promise: a Nix-like program that cannot
// find the driver on its own finds the real 535 driver through nixglhost -d,
// and maps only its own libc.
func TestProbeWithDirs(t *testing.T) {
	store := fixtures.NixStore(t, "amd64")
	probe := store.Probe(t)
	dirs := fixtures.CorpusLibDirs(t, "amd64")

	// Without help the probe cannot find libcuda.
	res, out := store.RunProbe(t, probe, []string{"PATH=/usr/bin:/bin"})
	if res.CUDADlopen == "ok" {
		t.Fatalf("probe found libcuda without nixglhost:\n%s", out)
	}

	cache := t.TempDir()
	args := []string{"--cache-dir", cache}
	for _, d := range dirs {
		args = append(args, "-d", d)
	}
	stdout, stderr, code := nixglhost(t, baseEnv(t, "CUDA_CACHE_DISABLE=1"), append(args, "--", probe)...)
	if code != 0 {
		t.Fatalf("nixglhost exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res = fixtures.ParseProbe(stdout)
	if res.CUDADlopen != "ok" {
		t.Fatalf("probe did not load libcuda under nixglhost:\n%s\n%s", stdout, stderr)
	}
	if res.CuInit != 100 {
		t.Errorf("cuInit = %d, want 100 (no device) on a machine without a GPU", res.CuInit)
	}
	if res.NVMLInit != 9 {
		t.Errorf("nvmlInit = %d, want 9 (driver not loaded)", res.NVMLInit)
	}
	for _, m := range res.MappedLibc() {
		if !strings.HasPrefix(m, store.Dir+"/") {
			t.Errorf("probe mapped a libc outside its store: %s", m)
		}
	}
	if cu := res.MapsContaining("libcuda.so"); len(cu) == 0 || !strings.HasPrefix(cu[0], dirs[0]) {
		t.Errorf("libcuda mapped from %v, want the host file in %s", cu, dirs[0])
	}
	entry := entryOf(t, cache)
	checkEntry(t, entry)
	// Every driver DSO of the corpus is exposed in lib/.
	for _, d := range dirs {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if ent, ok := catalog.Classify(e.Name()); ok && ent.Kind == catalog.KindDSO {
				if _, err := os.Lstat(filepath.Join(entry, "lib", e.Name())); err != nil {
					t.Errorf("driver file %s not exposed in lib/: %v", e.Name(), err)
				}
			}
		}
	}
}

// TestTransparent checks invariant 7: argv, working directory, stdin,
// stdout, stderr, exit code and the environment reach the program.
func TestTransparent(t *testing.T) {
	self := testBinary(t)
	dir := t.TempDir()
	fixtures.FakeDriver(t, dir, "535.261.03", "amd64")
	wd := t.TempDir()
	args := []string{"", "a b", "line\nbreak", "-d", "--", "ünï"}
	env := baseEnv(t, asEchoEnv+"=1", "NIXGLHOST_TEST_EXIT=7", "KEEP_ME=x=y", "LD_LIBRARY_PATH=/opt/mine")
	cmd := execSelf(t, self, env, append([]string{"--cache-dir", t.TempDir(), "-d", dir, self}, args...)...)
	cmd.Dir = wd
	cmd.Stdin = strings.NewReader("input\x00bytes")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	ee, ok := err.(interface{ ExitCode() int })
	if !ok || ee.ExitCode() != 7 {
		t.Fatalf("exit = %v, want exit code 7; stderr: %s", err, stderr.String())
	}
	var got echoed
	if err := json.Unmarshal([]byte(stdout.String()), &got); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if diff := cmp.Diff(append([]string{self}, args...), got.Args); diff != "" {
		t.Errorf("argv differs (-want +got):\n%s", diff)
	}
	if got.Dir != wd {
		t.Errorf("working directory = %s, want %s", got.Dir, wd)
	}
	if got.Stdin != "input\x00bytes" {
		t.Errorf("stdin = %q", got.Stdin)
	}
	if stderr.String() != "to stderr" {
		t.Errorf("stderr = %q, want the program's own", stderr.String())
	}
	if got.Pid != cmd.Process.Pid {
		t.Errorf("program pid %d, launcher pid %d: nixglhost must exec, not fork", got.Pid, cmd.Process.Pid)
	}
	gm := envMap(got.Env)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "LD_LIBRARY_PATH" {
			continue
		}
		if gm[k] != v {
			t.Errorf("env %s = %q, want %q untouched", k, gm[k], v)
		}
	}
	// Invariant 3: the inherited entry keeps its place, ours comes after.
	lp := strings.Split(gm["LD_LIBRARY_PATH"], ":")
	if len(lp) != 2 || lp[0] != "/opt/mine" || !strings.HasSuffix(lp[1], "/lib") {
		t.Errorf("LD_LIBRARY_PATH = %q, want /opt/mine then the entry's lib", gm["LD_LIBRARY_PATH"])
	}
	for k := range gm {
		if _, had := envMap(env)[k]; !had && !documentedVar(k) {
			t.Errorf("undocumented variable %s set", k)
		}
	}
}

func documentedVar(k string) bool {
	switch k {
	case "LD_LIBRARY_PATH", "NIX_LD_LIBRARY_PATH", "__GLX_VENDOR_LIBRARY_NAME", "__EGL_VENDOR_LIBRARY_DIRS",
		"__EGL_EXTERNAL_PLATFORM_CONFIG_DIRS", "VK_DRIVER_FILES", "VK_ICD_FILENAMES", "VK_ADD_IMPLICIT_LAYER_PATH",
		"OCL_ICD_VENDORS", "GBM_BACKENDS_PATH":
		return true
	}
	return false
}
