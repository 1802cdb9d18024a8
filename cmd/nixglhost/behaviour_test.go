package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// fakeDriverDir returns a directory holding the gcc-built fake driver.
func fakeDriverDir(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	fixtures.FakeDriver(t, dir, version, "amd64")
	return dir
}

func TestNixLD(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	// /bin/true is an FHS program: its interpreter is not in /nix/store.
	vars := printEnvJSON(t, baseEnv(t, "NIX_LD=/lib64/ld-linux-x86-64.so.2", "LD_LIBRARY_PATH=/opt/x"), "--cache-dir", t.TempDir(), "-d", drv, "/bin/true")
	if _, ok := vars["LD_LIBRARY_PATH"]; ok {
		t.Errorf("FHS program under nix-ld got LD_LIBRARY_PATH=%q, want it left alone", vars["LD_LIBRARY_PATH"])
	}
	if !strings.HasSuffix(vars["NIX_LD_LIBRARY_PATH"], "/lib") {
		t.Errorf("NIX_LD_LIBRARY_PATH = %q, want the entry's lib", vars["NIX_LD_LIBRARY_PATH"])
	}
	// Without nix-ld the same program gets LD_LIBRARY_PATH.
	vars = printEnvJSON(t, baseEnv(t), "--cache-dir", t.TempDir(), "-d", drv, "/bin/true")
	if _, ok := vars["NIX_LD_LIBRARY_PATH"]; ok || vars["LD_LIBRARY_PATH"] == "" {
		t.Errorf("without nix-ld: %v", vars)
	}
	// A Nix program (interpreter under /nix/store) keeps LD_LIBRARY_PATH
	// even when nix-ld is there. It only has to be read, not run.
	src := filepath.Join(t.TempDir(), "p.c")
	fixtures.Must(t, os.WriteFile(src, []byte("int main(void){return 0;}\n"), 0o644))
	nixProg := filepath.Join(t.TempDir(), "nixprog")
	if out, err := exec.Command("gcc", "-o", nixProg, src, "-Wl,--dynamic-linker=/nix/store/00000000000000000000000000000000-glibc-2.40/lib/ld-linux-x86-64.so.2").CombinedOutput(); err != nil {
		fixtures.Unavailable(t, "gcc: %v\n%s", err, out)
	}
	vars = printEnvJSON(t, baseEnv(t, "NIX_LD=/x"), "--cache-dir", t.TempDir(), "-d", drv, nixProg)
	if vars["LD_LIBRARY_PATH"] == "" || vars["NIX_LD_LIBRARY_PATH"] != "" {
		t.Errorf("Nix program under nix-ld: %v, want LD_LIBRARY_PATH only", vars)
	}
}

func TestVersionFollowsKernelModule(t *testing.T) {
	root := t.TempDir()
	a := filepath.Join(root, "drv/a")
	b := filepath.Join(root, "drv/b")
	fixtures.FakeDriver(t, a, "535.261.03", "amd64")
	fixtures.FakeDriver(t, b, "550.54.14", "amd64")
	for _, tc := range []struct{ module, want string }{
		{"", "535.261.03"}, // no module: -d order
		{"550.54.14", "550.54.14"},
		{"535.261.03", "535.261.03"},
	} {
		t.Run("module "+tc.module, func(t *testing.T) {
			if tc.module != "" {
				fixtures.SetModuleVersion(t, root, tc.module)
			}
			cache := t.TempDir()
			out, errOut, code := nixglhost(t, baseEnv(t), "--driver-root", root, "--cache-dir", cache, "-d", "/drv/a", "-d", "/drv/b", "-p")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			m, err := hostdrivers.ReadManifest(filepath.Dir(strings.TrimSpace(out)))
			if err != nil {
				t.Fatal(err)
			}
			if m.DriverVersion != tc.want {
				t.Errorf("chose %s (%s), want %s", m.DriverVersion, m.Reason, tc.want)
			}
			for _, f := range m.Files {
				if f.Version != "" && f.Version != tc.want {
					t.Errorf("entry mixes versions: %s is %s", f.Base, f.Version)
				}
			}
		})
	}
}

// entryLib runs `nixglhost --cache-dir cache -d drv -p` and returns the
// entry's lib/ it prints.
func entryLib(t *testing.T, cache, drv string) string {
	t.Helper()
	out, errOut, code := nixglhost(t, baseEnv(t), "--cache-dir", cache, "-d", drv, "-p")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	return strings.TrimSpace(out)
}

// upgradeDriver replaces the fake libcuda in drv as a driver upgrade does:
// a new file renamed over the old one (a new inode and size).
func upgradeDriver(t *testing.T, drv string) {
	t.Helper()
	cuda := filepath.Join(drv, "libcuda.so.535.261.03")
	b, err := os.ReadFile(cuda)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cuda+".new", append(b, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cuda+".new", cuda); err != nil {
		t.Fatal(err)
	}
}

func TestFreshAfterDriverUpgrade(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	cache := t.TempDir()
	first := entryLib(t, cache, drv)
	if again := entryLib(t, cache, drv); again != first {
		t.Fatalf("a second launch used another entry: %s, then %s", first, again)
	}
	upgradeDriver(t, drv)
	if next := entryLib(t, cache, drv); next == first {
		t.Errorf("invariant 6: the driver changed but the entry %s was reused", next)
	}
}

func TestConcurrentColdLaunches(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	cache := t.TempDir()
	const n = 32
	var wg sync.WaitGroup
	outs := make([]string, n)
	codes := make([]int, n)
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i], codes[i] = nixglhost(t, baseEnv(t), "--cache-dir", cache, "-d", drv, "-p")
		}()
	}
	wg.Wait()
	for i := range n {
		if codes[i] != 0 || strings.TrimSpace(outs[i]) != strings.TrimSpace(outs[0]) {
			t.Errorf("launch %d: exit %d, path %q (first %q): %s", i, codes[i], outs[i], outs[0], errs[i])
		}
	}
	entryOf(t, cache) // exactly one entry
	left, _ := filepath.Glob(filepath.Join(cache, ".tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary build directories left behind: %v", left)
	}
}

func TestBadInput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	fixtures.Must(t, os.WriteFile(file, nil, 0o644))
	empty := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"no program", []string{}, 2, "no PROGRAM"},
		{"unknown flag", []string{"--frobnicate", "true"}, 2, "frobnicate"},
		{"-d missing", []string{"-d", "/nonexistent/drv", "true"}, 1, "/nonexistent/drv"},
		{"-d is a file", []string{"-d", file, "true"}, 1, file},
		{"program missing", []string{"no-such-program-xyz"}, 1, "no-such-program-xyz"},
		{"driver root missing", []string{"--driver-root", "/nonexistent/root", "true"}, 1, "--driver-root"},
		{"empty dir: warning, program runs", []string{"-d", empty, "true"}, 0, "no NVIDIA driver found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := nixglhost(t, baseEnv(t), append([]string{"--cache-dir", t.TempDir()}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.inStderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and a message containing %q", code, stderr, tt.code, tt.inStderr)
			}
		})
	}
}

func TestSameDirSpelledThreeWays(t *testing.T) {
	parent := t.TempDir()
	fixtures.FakeDriver(t, filepath.Join(parent, "drv"), "535.261.03", "amd64")
	cache := t.TempDir()
	var paths []string
	for _, d := range []string{"drv", "drv/", "./drv", filepath.Join(parent, "drv")} {
		self := testBinary(t)
		cmd := execSelf(t, self, baseEnv(t), "--cache-dir", cache, "-d", d, "-p")
		cmd.Dir = parent
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("-d %s: %v", d, err)
		}
		paths = append(paths, strings.TrimSpace(string(out)))
	}
	for _, p := range paths[1:] {
		if p != paths[0] {
			t.Errorf("-d spellings gave different entries: %v", paths)
		}
	}
}

func TestGlibcHazardWarning(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	_, stderr, code := nixglhost(t, baseEnv(t, "LD_LIBRARY_PATH=/lib/x86_64-linux-gnu"), "--cache-dir", t.TempDir(), "-d", drv, "-p")
	if code != 0 || !strings.Contains(stderr, "/lib/x86_64-linux-gnu holds libc.so.6") {
		t.Errorf("exit %d, stderr %q: want a warning about the inherited libc", code, stderr)
	}
}

func TestPrintEnvShell(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	out, _, code := nixglhost(t, baseEnv(t, "LD_LIBRARY_PATH=/it's"), "--cache-dir", t.TempDir(), "-d", drv, "--print-env")
	if code != 0 || !strings.Contains(out, `export LD_LIBRARY_PATH='/it'\''s:`) {
		t.Errorf("exit %d, --print-env:\n%s", code, out)
	}
}

// TestOwnEntryNotTakenForTheDriver: a program run under nixglhost that runs
// nixglhost again hands it its LD_LIBRARY_PATH, which names the parent's
// entry; the nested launch must find the host driver, not the entry.
func TestOwnEntryNotTakenForTheDriver(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	cache := t.TempDir()
	out, _, code := nixglhost(t, baseEnv(t), "--cache-dir", cache, "-d", drv, "-p")
	if code != 0 {
		t.Fatal("first launch failed")
	}
	lib := strings.TrimSpace(out)
	// The entry's lib/ on LD_LIBRARY_PATH, the real driver nowhere else
	// than a -d-less discovery would not find it: only the entry is there.
	_, stderr, code := nixglhost(t, baseEnv(t, "LD_LIBRARY_PATH="+lib, "DEBUG=1"), "--cache-dir", t.TempDir(), "--print-env")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "a nixglhost cache entry, not the host's driver") {
		t.Errorf("the parent's entry on LD_LIBRARY_PATH was searched as a driver directory:\n%s", stderr)
	}
}

// TestPrintPathWithoutDriver: -p with no driver fails rather than print
// nothing, which `$LD_LIBRARY_PATH:$(nixglhost -p)` would turn into an
// empty element (the current directory).
func TestPrintPathWithoutDriver(t *testing.T) {
	out, stderr, code := nixglhost(t, baseEnv(t), "--cache-dir", t.TempDir(), "-d", t.TempDir(), "-p")
	if code != 1 || out != "" || !strings.Contains(stderr, "no library directory to add") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1, nothing printed, a reason", code, out, stderr)
	}
}

// TestDebugValues: debug output (which lands in the program's stderr) is
// on only for 1, true or yes, in NIXGLHOST_DEBUG or DEBUG; DEBUG=false
// used to turn it on.
func TestDebugValues(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	for _, tt := range []struct {
		env string
		on  bool
	}{
		{"DEBUG=1", true}, {"DEBUG=true", true}, {"DEBUG=YES", true}, {"NIXGLHOST_DEBUG=1", true},
		{"DEBUG=false", false}, {"DEBUG=0", false}, {"DEBUG=no", false}, {"DEBUG=", false}, {"NIXGLHOST_DEBUG=off", false},
	} {
		_, stderr, code := nixglhost(t, baseEnv(t, tt.env), "--cache-dir", t.TempDir(), "-d", drv, "-p")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", tt.env, code, stderr)
		}
		if got := strings.Contains(stderr, "level=DEBUG"); got != tt.on {
			t.Errorf("%s: debug output %v, want %v\n%s", tt.env, got, tt.on, stderr)
		}
	}
}
