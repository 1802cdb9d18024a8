package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/doctor"
)

// TestLaunchAndDoctorAgree runs each host scenario of the suite through
// the launch (-p) and the doctor with the same flags, environment and
// cache, and checks that the doctor describes the launch: it blocks
// whenever the launch fails (it may also block on what will make the
// program fail later, such as a kernel module of another version), and
// when the launch works it names the entry the launch used, with that
// entry's driver version and number of driver files, and does not block
// on the cache.
func TestLaunchAndDoctorAgree(t *testing.T) {
	multiarch := "/usr/lib/x86_64-linux-gnu"
	twoVersions := func(t *testing.T, module string) string {
		root := t.TempDir()
		fixtures.FakeDriver(t, filepath.Join(root, "a"), "535.261.03", "amd64")
		fixtures.FakeDriver(t, filepath.Join(root, "b"), "470.256.02", "amd64")
		if module != "" {
			fixtures.SetModuleVersion(t, root, module)
		}
		return root
	}
	tests := []struct {
		name string
		root func(t *testing.T) string
		args []string
		env  []string
		// cache prepares the cache directory (nil: a fresh private one).
		cache func(t *testing.T) string
	}{
		{name: "fake driver, module matches", root: func(t *testing.T) string { return fakeHost(t, "535.261.03") }},
		{name: "fake driver, module differs", root: func(t *testing.T) string { return fakeHost(t, "550.54.14") }},
		{name: "two versions, module picks the second", root: func(t *testing.T) string { return twoVersions(t, "470.256.02") }, args: []string{"-d", "/a", "-d", "/b"}},
		{name: "two versions, no module", root: func(t *testing.T) string { return twoVersions(t, "") }, args: []string{"-d", "/b", "-d", "/a"}},
		{name: "two versions through LD_LIBRARY_PATH", root: func(t *testing.T) string { return twoVersions(t, "535.261.03") }, env: []string{"LD_LIBRARY_PATH=/b:/a"}},
		{name: "-d names a missing directory", root: func(t *testing.T) string { return fakeHost(t, "535.261.03") }, args: []string{"-d", "/nowhere"}},
		{name: "no driver", root: func(t *testing.T) string { return t.TempDir() }},
		{name: "arm64 driver only", root: func(t *testing.T) string {
			root := t.TempDir()
			fixtures.FakeDriver(t, filepath.Join(root, "arm"), "535.261.03", "arm64")
			return root
		}, args: []string{"-d", "/arm"}},
		{name: "cache writable by others", root: func(t *testing.T) string { return fakeHost(t, "535.261.03") }, cache: func(t *testing.T) string {
			d := t.TempDir()
			fixtures.Must(t, os.Chmod(d, 0o777))
			return d
		}},
		{name: "Debian root (real 535)", root: func(t *testing.T) string { return fixtures.DebianRoot(t, "amd64") }},
		{name: "Debian root, -d the multiarch directory", root: func(t *testing.T) string { return fixtures.DebianRoot(t, "amd64") }, args: []string{"-d", multiarch}},
		{name: "cloud root (real 535 in /usr/local/nvidia)", root: func(t *testing.T) string { return fixtures.CloudRoot(t) }},
		{name: "Jetson root for an amd64 program", root: func(t *testing.T) string { return fixtures.JetsonRoot(t) }},
		// The host's EGL vendor file is not JSON: the entry leaves it out
		// and makes its own, and the doctor says so (it once said the
		// host's file served EGL).
		{name: "malformed host vendor file", root: func(t *testing.T) string {
			root := fakeHost(t, "535.261.03")
			fixtures.Write(t, filepath.Join(root, "usr/share/glvnd/egl_vendor.d/10_nvidia.json"), "{ not json")
			return root
		}},
		// A Mesa-only host (llvmpipe, no NVIDIA driver).
		{name: "Mesa only", root: func(t *testing.T) string {
			root := t.TempDir()
			lib := filepath.Join(root, "usr/lib/x86_64-linux-gnu")
			fixtures.Must(t, os.MkdirAll(filepath.Join(lib, "dri"), 0o755))
			fixtures.FakeStub(t, lib, "libEGL_mesa.so.0", "amd64")
			fixtures.FakeStub(t, filepath.Join(lib, "dri"), "swrast_dri.so", "amd64")
			return root
		}},
		// The 32-bit companion beside the 64-bit entry.
		{name: "Debian root with the i386 driver", root: func(t *testing.T) string {
			root := fixtures.DebianRoot(t, "amd64")
			fixtures.AddI386Driver(t, root)
			return root
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.root(t)
			cache := t.TempDir()
			if tt.cache != nil {
				cache = tt.cache(t)
			}
			env := baseEnv(t, tt.env...)
			args := append([]string{"--driver-root", root, "--cache-dir", cache}, tt.args...)
			// The doctor first, so that it judges the cache as the launch
			// finds it (empty), then the launch.
			out, _, dcode := nixglhost(t, env, append(args, "--doctor", "--json")...)
			var r doctor.Report
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("--doctor --json (exit %d): %v\n%s", dcode, err, out)
			}
			lib, lerr, lcode := nixglhost(t, env, append(args, "-p")...)
			if lcode != 0 && r.Blocking == 0 {
				t.Fatalf("the launch failed (exit %d: %s) but the doctor blocks on nothing:\n%s", lcode, strings.TrimSpace(lerr), out)
			}
			if lcode != 0 {
				return
			}
			// -p prints the program's lib/ first, then the 32-bit
			// companion's where there is one.
			entry := filepath.Dir(strings.Split(strings.TrimSpace(lib), ":")[0])
			if r.Cache.Entry != entry {
				t.Errorf("the doctor names the entry %q, the launch used %q", r.Cache.Entry, entry)
			}
			m, err := hostdrivers.ReadManifest(entry)
			if err != nil {
				t.Fatal(err)
			}
			if r.Driver.Version != m.DriverVersion || r.Driver.Files != len(m.Files) {
				t.Errorf("the doctor says driver %q with %d files; the entry holds %q with %d", r.Driver.Version, r.Driver.Files, m.DriverVersion, len(m.Files))
			}
			// The vendor files the doctor says will be made are the ones
			// the entry got from nixglhost.
			var saidMade, made []string
			for _, a := range r.APIs {
				saidMade = append(saidMade, a.Made...)
			}
			for _, d := range m.Data {
				if d.Made != "" {
					made = append(made, d.Dest)
				}
			}
			slices.Sort(saidMade)
			slices.Sort(made)
			if !slices.Equal(saidMade, made) {
				t.Errorf("the doctor says it will make %q; the entry's made files are %q", saidMade, made)
			}
			for _, f := range r.Findings {
				if f.Severity == doctor.SeverityBlocking && f.Topic == "cache" {
					t.Errorf("the doctor blocks on the cache (%s) but the launch used it", f.Message)
				}
			}
			// Every vendor file the entry holds is one the doctor names,
			// as the host's (by its source) or made.
			var said, holds []string
			for _, a := range r.APIs {
				said = append(said, a.Data...)
				said = append(said, a.Made...)
			}
			for _, d := range m.Data {
				if d.Made != "" {
					holds = append(holds, d.Dest)
				} else {
					holds = append(holds, d.Source)
				}
			}
			slices.Sort(said)
			slices.Sort(holds)
			if !slices.Equal(said, holds) {
				t.Errorf("the doctor names the vendor files %q; the entry holds %q", said, holds)
			}
			agreeOnAPIs(t, r, entry)
			// The companion the doctor reports is the one the launch
			// prepares (--print-env names its lib/).
			penv, _, _ := nixglhost(t, env, append(args, "--print-env")...)
			switch c := r.Companion; {
			case c == nil:
				t.Errorf("the doctor reports no 32-bit companion for an x86-64 launch")
			case c.Entry != "" && !strings.Contains(penv, filepath.Join(c.Entry, "lib")):
				t.Errorf("the doctor's companion entry %s is not in the launch's environment:\n%s", c.Entry, penv)
			}
		})
	}
}

// agreeOnAPIs checks the doctor's two views of the APIs against each other
// and against the entry: each row of the per-API table that finds its
// library (and the vendor file it needs) makes its API available in the
// summary, and the library is in the entry's lib/.
func agreeOnAPIs(t *testing.T, r doctor.Report, entry string) {
	t.Helper()
	avail := map[catalog.API]bool{}
	for _, a := range r.APIs {
		avail[a.API] = a.Available
	}
	for _, c := range r.Capabilities {
		if !c.Found || c.Vendor == "missing" {
			continue
		}
		if _, err := os.Stat(filepath.Join(entry, "lib", c.Library)); err != nil {
			t.Errorf("the doctor finds %s for %s; the entry lacks it: %v", c.Library, c.Name, err)
		}
		api := map[string]catalog.API{"gbm": catalog.APIGBM, "cuda": catalog.APICUDA, "nvml": catalog.APINVML, "glx": catalog.APIGLX, "egl": catalog.APIEGL}[c.Name]
		if api != "" && !avail[api] {
			t.Errorf("the per-API table serves %s (%s) but the summary says %s is not available", c.Name, c.Library, api)
		}
	}
}
