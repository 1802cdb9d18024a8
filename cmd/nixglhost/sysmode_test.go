package main

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/doctor"
)

// sysRoot is a fake host root for system-mode tests: a gcc-built driver
// in ROOT/drv (or the real one), a run directory and a system cache.
type sysRoot struct {
	root, run, cache string
	link             string
}

func newSysRoot(t *testing.T) *sysRoot {
	t.Helper()
	s := &sysRoot{root: t.TempDir(), run: t.TempDir(), cache: filepath.Join(t.TempDir(), "nix-gl-host")}
	s.link = filepath.Join(s.run, "opengl-driver")
	return s
}

// args returns the system-mode flags for s, then extra.
func (s *sysRoot) args(extra ...string) []string {
	return append([]string{"--driver-root", s.root, "--run-dir", s.run, "--cache-dir", s.cache}, extra...)
}

// linkTarget returns where RUN/opengl-driver points, failing t unless it
// is a complete entry in the system cache.
func (s *sysRoot) linkTarget(t *testing.T) string {
	t.Helper()
	target, err := os.Readlink(s.link)
	if err != nil {
		t.Fatalf("RUN/opengl-driver: %v", err)
	}
	if filepath.Dir(target) != s.cache {
		t.Fatalf("RUN/opengl-driver -> %s, outside the system cache %s", target, s.cache)
	}
	if _, err := hostdrivers.ReadManifest(target); err != nil {
		t.Fatalf("RUN/opengl-driver -> %s, not a complete entry: %v", target, err)
	}
	return target
}

// entries returns the cache's entries (no dot files).
func (s *sysRoot) entries(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(s.cache)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(s.cache, e.Name()))
		}
	}
	return out
}

// probeWithRunpath builds the probe linked as Nix's addDriverRunpath links
// GPU programs: DT_RUNPATH STORE:RUN/opengl-driver/lib.
func probeWithRunpath(t *testing.T, store *fixtures.Store, run string) string {
	t.Helper()
	return store.Compile(t, fixtures.ProbeSource(), "probe-run", "-Wl,-rpath,"+filepath.Join(run, "opengl-driver", "lib"))
}

// TestLinkRunOpenGLDriverRealDriver: with the real 535 driver of a Debian
// root, a Nix-like program whose DT_RUNPATH names RUN/opengl-driver/lib
// cannot find libcuda before system mode, and finds and initializes it with
// no LD_LIBRARY_PATH at all after, mapping only its own libc.
func TestLinkRunOpenGLDriverRealDriver(t *testing.T) {
	s := newSysRoot(t)
	s.root = fixtures.DebianRoot(t, "amd64")
	store := fixtures.NixStore(t, "amd64")
	probe := probeWithRunpath(t, store, s.run)
	env := []string{"CUDA_CACHE_DISABLE=1"}

	before, out := store.RunProbe(t, probe, env)
	if before.CUDADlopen == "ok" {
		t.Fatalf("before system mode the probe found libcuda:\n%s", out)
	}
	stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("--link-run-opengl-driver")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("nixglhost --link-run-opengl-driver:\n%s", stdout)
	entry := s.linkTarget(t)
	checkEntry(t, entry)

	res, out := store.RunProbe(t, probe, env)
	checkProbe(t, res, out, store, s.cache)
	// With no LD_LIBRARY_PATH, libglvnd's libEGL and ocl-icd find a
	// vendor library by absolute path only, as NixOS's vendor files name
	// them: these name it where programs see the entry.
	for _, f := range []string{"share/glvnd/egl_vendor.d/10_nvidia.json", "etc/OpenCL/vendors/nvidia.icd"} {
		b, err := os.ReadFile(filepath.Join(entry, f))
		if err != nil || !strings.Contains(string(b), s.link+"/lib/lib") {
			t.Errorf("%s names no library under %s/lib: %q, %v", f, s.link, b, err)
		}
	}
	// Self-contained: the driver files are the entry's own patched copies.
	for _, m := range res.MapsContaining("libcuda") {
		if !strings.HasPrefix(m, entry+"/lib/") {
			t.Errorf("libcuda mapped from %s, want the entry's copy in %s/lib", m, entry)
		}
	}
}

// TestLinkRunOpenGLDriverLinkedInternals: a self-contained entry of the
// real 535 driver copies only what loads other libraries and can be loaded
// on its own (see docs/DESIGN.md, "Self-contained entries"). Through
// RUN/opengl-driver with no LD_LIBRARY_PATH, in a fresh process each, every
// entry point and every library the driver dlopens loads with the real
// glibc loader; libGLX_nvidia's DT_NEEDED internals (libnvidia-glcore,
// -glsi, -tls) are mapped from the host's files, found through the copy's
// DT_RPATH, and so are the leaves libcuda and libnvidia-opencl dlopen.
func TestLinkRunOpenGLDriverLinkedInternals(t *testing.T) {
	s := newSysRoot(t)
	s.root = fixtures.DebianRoot(t, "amd64")
	store := fixtures.NixStore(t, "amd64")
	probe := probeWithRunpath(t, store, s.run)
	if stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("--link-run-opengl-driver")...); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	entry := s.linkTarget(t)
	hostLib := filepath.Join(s.root, "usr/lib/x86_64-linux-gnu")
	tests := []struct {
		name string
		// fromHost are files the process must map from the host (links),
		// fromEntry from the entry (copies).
		fromHost, fromEntry []string
	}{
		{"libGLX_nvidia.so.0", []string{"libnvidia-glcore.so", "libnvidia-glsi.so", "libnvidia-tls.so"}, []string{"libGLX_nvidia.so"}},
		{"libEGL_nvidia.so.0", []string{"libnvidia-glsi.so"}, []string{"libEGL_nvidia.so"}},
		{"libGLESv2_nvidia.so.2", nil, []string{"libGLESv2_nvidia.so"}},
		{"libnvidia-eglcore.so.535.261.03", []string{"libnvidia-glsi.so"}, []string{"libnvidia-eglcore.so"}},
		{"libnvidia-rtcore.so.535.261.03", nil, []string{"libnvidia-rtcore.so"}},
		{"libnvoptix.so.1", nil, []string{"libnvoptix.so"}},
		{"libcuda.so.1", nil, []string{"libcuda.so"}},
		{"libnvidia-ml.so.1", nil, []string{"libnvidia-ml.so"}},
		{"libnvidia-opencl.so.1", nil, []string{"libnvidia-opencl.so"}},
		{"libnvcuvid.so.1", nil, []string{"libnvcuvid.so"}},
		{"libnvidia-encode.so.1", nil, []string{"libnvidia-encode.so", "libnvcuvid.so"}},
		{"libnvidia-ptxjitcompiler.so.1", []string{"libnvidia-ptxjitcompiler.so"}, nil},
		{"libnvidia-nvvm.so.4", []string{"libnvidia-nvvm.so"}, nil},
	}
	for _, tt := range tests {
		res, out := store.RunProbe(t, probe, []string{"CUDA_CACHE_DISABLE=1"}, tt.name)
		if len(res.Dlopen) != 1 || !res.Dlopen[0].OK {
			t.Errorf("dlopen %s through %s with no LD_LIBRARY_PATH failed:\n%s", tt.name, s.link, out)
			continue
		}
		for _, from := range []struct {
			files []string
			dir   string
		}{{tt.fromHost, hostLib}, {tt.fromEntry, filepath.Join(entry, "lib")}} {
			for _, want := range from.files {
				maps := res.MapsContaining("/" + want)
				if len(maps) == 0 || !strings.HasPrefix(maps[0], from.dir+"/") {
					t.Errorf("dlopen %s: %s mapped from %q, want it from %s\n%s", tt.name, want, maps, from.dir, out)
				}
			}
		}
		if libc := res.MappedLibc(); len(libc) != 1 || !strings.HasPrefix(libc[0], store.Dir+"/") {
			t.Errorf("dlopen %s: libc mapped %q, want only the store's", tt.name, libc)
		}
	}
	// The leaves libcuda dlopens are links: the entry is far smaller than
	// the driver.
	var copied, linked int64
	err := filepath.Walk(filepath.Join(entry, "lib"), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			copied += fi.Size()
		} else if fi.Mode()&os.ModeSymlink != 0 {
			if target, err := os.Readlink(p); err == nil && filepath.IsAbs(target) {
				if st, err := os.Stat(target); err == nil {
					linked += st.Size()
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if linked < copied/2 {
		t.Errorf("the entry's lib/ copies %d bytes and links %d: the leaves and internals should be links", copied, linked)
	}
	t.Logf("entry lib/: %.1f MB copied, %.1f MB linked from the host", float64(copied)/1e6, float64(linked)/1e6)
}

// TestLinkRunOpenGLDriverPtxjit: the gcc-built libcuda's cuInit dlopens
// libnvidia-ptxjitcompiler.so.1 by soname, as the real one does, and gives
// 221 when it cannot. Through RUN/opengl-driver with no LD_LIBRARY_PATH it
// can only find it through its own DT_RUNPATH: the entry is self-contained.
func TestLinkRunOpenGLDriverPtxjit(t *testing.T) {
	s := newSysRoot(t)
	fixtures.FakeDriver(t, filepath.Join(s.root, "drv"), "535.261.03", "amd64")
	store := fixtures.NixStore(t, "amd64")
	probe := probeWithRunpath(t, store, s.run)

	if res, out := store.RunProbe(t, probe, nil); res.CUDADlopen == "ok" {
		t.Fatalf("before system mode the probe found libcuda:\n%s", out)
	}
	if stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", "/drv", "--link-run-opengl-driver")...); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	res, out := store.RunProbe(t, probe, nil)
	if res.CUDADlopen != "ok" || res.CuInit != 100 || res.NVMLInit != 9 {
		t.Fatalf("probe: cuda_dlopen %q cuInit %d nvmlInit %d, want ok 100 9 (221: ptxjit not found)\n%s", res.CUDADlopen, res.CuInit, res.NVMLInit, out)
	}
	// libcuda is a copy; the leaf it dlopens is the host's file, found
	// through the copy's DT_RPATH ($ORIGIN).
	if m := res.MapsContaining("/libnvidia-ptxjitcompiler.so"); len(m) == 0 || !strings.HasPrefix(m[0], filepath.Join(s.root, "drv")+"/") {
		t.Errorf("ptxjit mapped from %q, want the host's file under %s/drv", m, s.root)
	}
	// The entry is readable by every user (Nix build users, services).
	entry := s.linkTarget(t)
	for _, p := range []string{s.cache, entry, filepath.Join(entry, "lib"), filepath.Join(entry, "lib", "libcuda.so.535.261.03"), filepath.Join(entry, "manifest.json")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o444)
		if fi.IsDir() {
			want = 0o555
		}
		if fi.Mode().Perm()&want != want {
			t.Errorf("%s is %v, want readable by all", p, fi.Mode().Perm())
		}
	}
}

// TestLinkIdempotentAndUpgrade: the same driver changes nothing; a new
// driver gets a new entry and the link moves; the previous entry is kept,
// older ones are removed.
func TestLinkIdempotentAndUpgrade(t *testing.T) {
	s := newSysRoot(t)
	drv := filepath.Join(s.root, "drv")
	link := func() string {
		t.Helper()
		stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", "/drv", "--link-run-opengl-driver")...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		return stdout
	}
	install := func(version string) {
		t.Helper()
		fixtures.Must(t, os.RemoveAll(drv))
		fixtures.FakeDriver(t, drv, version, "amd64")
	}
	install("535.261.03")
	link()
	e1 := s.linkTarget(t)
	if out := link(); !strings.Contains(out, "already linked") {
		t.Errorf("second run: %q, want \"already linked\"", out)
	}
	if got := s.linkTarget(t); got != e1 {
		t.Errorf("second run moved the link: %s, then %s", e1, got)
	}
	if diff := cmp.Diff([]string{e1}, s.entries(t)); diff != "" {
		t.Errorf("entries after a second run (-want +got):\n%s", diff)
	}

	install("550.54.14")
	link()
	e2 := s.linkTarget(t)
	if e2 == e1 {
		t.Fatalf("a new driver kept the old entry %s", e1)
	}
	if m, _ := hostdrivers.ReadManifest(e2); m.DriverVersion != "550.54.14" {
		t.Errorf("new entry has driver %s", m.DriverVersion)
	}
	if _, err := os.Stat(e1); err != nil {
		t.Errorf("the previous entry was removed at once: %v", err)
	}

	install("560.35.03")
	out := link()
	e3 := s.linkTarget(t)
	if _, err := os.Stat(e1); err == nil {
		t.Errorf("the entry before the previous one, %s, is still there", e1)
	}
	if !strings.Contains(out, "removed old entry "+e1) {
		t.Errorf("output does not say %s was removed:\n%s", e1, out)
	}
	want := []string{e2, e3}
	got := s.entries(t)
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

// TestLinkConcurrent: eight runs at once, alternating between two drivers,
// never leave RUN/opengl-driver dangling or pointing at a partial entry,
// as a reader polling it all along sees, and each run leaves it valid.
func TestLinkConcurrent(t *testing.T) {
	s := newSysRoot(t)
	fixtures.FakeDriver(t, filepath.Join(s.root, "a"), "535.261.03", "amd64")
	fixtures.FakeDriver(t, filepath.Join(s.root, "b"), "550.54.14", "amd64")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var bad []string
	var mu sync.Mutex
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			target, err := os.Readlink(s.link)
			if err != nil {
				continue // not linked yet
			}
			if _, err := os.Stat(filepath.Join(s.link, "manifest.json")); err != nil {
				mu.Lock()
				bad = append(bad, target+": "+err.Error())
				mu.Unlock()
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := []string{"/a", "/b"}[i%2]
			cmd := execSelf(t, self, baseEnv(t), s.args("-d", d, "--link-run-opengl-driver")...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("run %d: %v\n%s", i, err, out)
			}
			if _, err := os.Stat(filepath.Join(s.link, "manifest.json")); err != nil {
				t.Errorf("after run %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if len(bad) > 0 {
		t.Errorf("the link named no complete entry %d times, e.g. %s", len(bad), bad[0])
	}
	s.linkTarget(t)
	left, _ := filepath.Glob(filepath.Join(s.run, ".*"))
	if len(left) > 0 {
		t.Errorf("temporary links left in RUN: %v", left)
	}
}

// TestForeignRunOpenGLDriver: a RUN/opengl-driver nixglhost did not make
// is refused, by both link and unlink, and left as it was.
func TestForeignRunOpenGLDriver(t *testing.T) {
	for _, tc := range []struct {
		name  string
		make  func(t *testing.T, link string)
		msg   string
		check func(t *testing.T, link string)
	}{
		{
			name: "nixos-store-link",
			make: func(t *testing.T, link string) {
				if err := os.Symlink("/nix/store/0d1b7y8gc3r6y1iyq6h3w5ys6nkrkpfd-graphics-drivers", link); err != nil {
					t.Fatal(err)
				}
			},
			msg: "points to /nix/store/0d1b7y8gc3r6y1iyq6h3w5ys6nkrkpfd-graphics-drivers, outside nixglhost's system cache",
			check: func(t *testing.T, link string) {
				if got, _ := os.Readlink(link); got != "/nix/store/0d1b7y8gc3r6y1iyq6h3w5ys6nkrkpfd-graphics-drivers" {
					t.Errorf("the link changed: %q", got)
				}
			},
		},
		{
			name: "directory",
			make: func(t *testing.T, link string) {
				if err := os.MkdirAll(filepath.Join(link, "lib"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			msg: "is a directory, not a link nixglhost made",
			check: func(t *testing.T, link string) {
				if fi, err := os.Lstat(filepath.Join(link, "lib")); err != nil || !fi.IsDir() {
					t.Errorf("the directory changed: %v", err)
				}
			},
		},
		{
			name: "link-into-another-cache-entry-dotfile",
			make: func(t *testing.T, link string) {
				if err := os.Symlink("/var/tmp/elsewhere", link); err != nil {
					t.Fatal(err)
				}
			},
			msg: "outside nixglhost's system cache",
			check: func(t *testing.T, link string) {
				if got, _ := os.Readlink(link); got != "/var/tmp/elsewhere" {
					t.Errorf("the link changed: %q", got)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSysRoot(t)
			fixtures.FakeDriver(t, filepath.Join(s.root, "drv"), "535.261.03", "amd64")
			tc.make(t, s.link)
			for _, mode := range []string{"--link-run-opengl-driver", "--unlink-run-opengl-driver"} {
				stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", "/drv", mode)...)
				if code != 1 || !strings.Contains(stderr, tc.msg) || !strings.Contains(stderr, "leaving it alone") {
					t.Errorf("%s: exit %d, stderr %q; want 1 and %q", mode, code, stderr, tc.msg)
				}
				if stdout != "" {
					t.Errorf("%s: stdout %q", mode, stdout)
				}
				tc.check(t, s.link)
			}
			if _, err := os.Stat(s.cache); err == nil && len(s.entries(t)) > 0 {
				t.Errorf("a refused run built entries: %v", s.entries(t))
			}
		})
	}
}

// TestUnlinkRunOpenGLDriver removes our link, keeps the cache, and is
// happy to find nothing.
func TestUnlinkRunOpenGLDriver(t *testing.T) {
	s := newSysRoot(t)
	fixtures.FakeDriver(t, filepath.Join(s.root, "drv"), "535.261.03", "amd64")
	if stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", "/drv", "--link-run-opengl-driver")...); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	entry := s.linkTarget(t)
	stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("--unlink-run-opengl-driver")...)
	if code != 0 || !strings.Contains(stdout, "removed "+s.link) {
		t.Fatalf("unlink: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Lstat(s.link); !os.IsNotExist(err) {
		t.Errorf("the link is still there: %v", err)
	}
	if _, err := os.Stat(entry); err != nil {
		t.Errorf("unlink removed the entry: %v", err)
	}
	stdout, stderr, code = nixglhost(t, baseEnv(t), s.args("--unlink-run-opengl-driver")...)
	if code != 0 || !strings.Contains(stdout, "nothing to do") {
		t.Errorf("unlink with no link: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestLinkIgnoresItsOwnEntry: once linked, /run/opengl-driver/lib (a
// discovery source) is our own entry; a second run must take the host's
// driver again, not the entry's copies. In a fake root the link's target
// is a host path, so the root's /run/opengl-driver is made by hand to
// point at the entry as seen from inside the root.
func TestLinkIgnoresItsOwnEntry(t *testing.T) {
	s := newSysRoot(t)
	s.cache = filepath.Join(s.root, "var/cache/nix-gl-host")
	// Discovery (no -d) finds the driver in a default directory.
	fixtures.FakeDriver(t, filepath.Join(s.root, "usr/lib/x86_64-linux-gnu"), "535.261.03", "amd64")
	link := func() string {
		t.Helper()
		stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("--link-run-opengl-driver")...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		return stdout
	}
	link()
	entry := s.linkTarget(t)
	if err := os.MkdirAll(filepath.Join(s.root, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	inside := strings.TrimPrefix(entry, s.root)
	if err := os.Symlink(inside, filepath.Join(s.root, "run/opengl-driver")); err != nil {
		t.Fatal(err)
	}
	// Make the second run scan again rather than trust the cache's index
	// of the first run's inputs.
	idx, _ := filepath.Glob(filepath.Join(s.cache, ".index-*"))
	for _, p := range idx {
		fixtures.Must(t, os.Remove(p))
	}
	if out := link(); !strings.Contains(out, "already linked") {
		t.Errorf("second run: %q, want \"already linked\" (it took its own entry for the driver?)", out)
	}
	m, err := hostdrivers.ReadManifest(s.linkTarget(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		if !strings.HasPrefix(f.Real, "/usr/lib/x86_64-linux-gnu/") {
			t.Errorf("driver file %s taken from %s, want the host's /usr/lib/x86_64-linux-gnu", f.Base, f.Real)
		}
	}
}

func TestSystemModeUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"run-dir-alone", []string{"--run-dir", "/tmp", "/bin/true"}, "--run-dir goes with"},
		{"link-and-hook", []string{"--link-run-opengl-driver", "--nix-pre-build-hook", "x.drv"}, "exclude each other"},
		{"link-with-program", []string{"--link-run-opengl-driver", "/bin/true"}, "--link-run-opengl-driver takes no PROGRAM"},
		{"link-print-env", []string{"--link-run-opengl-driver", "--print-env"}, "--print-env and --link-run-opengl-driver exclude each other"},
		{"hook-no-drv", []string{"--nix-pre-build-hook"}, "takes DRV [SANDBOX]"},
		{"hook-three-args", []string{"--nix-pre-build-hook", "a", "b", "c"}, "takes DRV [SANDBOX]"},
		{"features-alone", []string{"--hook-features", "cuda", "/bin/true"}, "--hook-features goes with"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := nixglhost(t, baseEnv(t), tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.msg) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.msg)
			}
		})
	}
}

// TestLinkRunOpenGLDriver32: on a host with the 32-bit driver, system mode
// also links RUN/opengl-driver-32, as NixOS does, to a self-contained
// 32-bit entry: a 32-bit program whose DT_RUNPATH names
// RUN/opengl-driver-32/lib loads its libcuda there. Relinking keeps both
// entries; unlinking removes both links.
func TestLinkRunOpenGLDriver32(t *testing.T) {
	s := newSysRoot(t)
	s.root = fixtures.DebianRoot(t, "amd64")
	fixtures.AddI386Driver(t, s.root)
	link32 := filepath.Join(s.run, "opengl-driver-32")
	probe := filepath.Join(t.TempDir(), "probe32")
	if out, err := exec.Command("gcc", "-m32", "-o", probe, fixtures.ProbeSource(), "-ldl",
		"-Wl,--enable-new-dtags,-rpath,"+link32+"/lib").CombinedOutput(); err != nil {
		fixtures.Unavailable(t, "gcc -m32 (packages libc6-dev-i386, lib32gcc-12-dev): %v\n%s", err, out)
	}
	for i := range 2 {
		stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("--link-run-opengl-driver")...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		if i == 1 && strings.Count(stdout, "already linked") != 2 {
			t.Errorf("second run:\n%s\nwant both links already linked", stdout)
		}
	}
	entry := s.linkTarget(t)
	target, err := os.Readlink(link32)
	if err != nil || filepath.Dir(target) != s.cache || target == entry {
		t.Fatalf("RUN/opengl-driver-32 -> %q (%v), want another entry of %s", target, err, s.cache)
	}
	checkEntry(t, entry)
	checkEntry(t, target)
	f, err := elf.Open(filepath.Join(target, "lib", "libcuda.so.1"))
	fixtures.Must(t, err)
	if f.Class != elf.ELFCLASS32 {
		t.Errorf("RUN/opengl-driver-32/lib/libcuda.so.1 is %v", f.Class)
	}
	f.Close()
	cmd, err := fixtures.Runner(t, "386").Command(probe, nil, "libcuda.so.1")
	fixtures.Must(t, err)
	out, _ := cmd.CombinedOutput()
	if d, ok := fixtures.ParseProbe(string(out)).Lookup("libcuda.so.1"); !ok || !d.OK || !strings.HasPrefix(d.Path, link32+"/lib/") {
		t.Errorf("the 32-bit program's dlopen(libcuda.so.1) = %+v, want it through %s/lib\n%s", d, link32, out)
	}
	stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("--unlink-run-opengl-driver")...)
	if code != 0 {
		t.Fatalf("unlink: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, l := range []string{s.link, link32} {
		if _, err := os.Lstat(l); err == nil {
			t.Errorf("%s still there after unlinking:\n%s", l, stdout)
		}
	}
}

// TestSystemModeChoosesAsLaunch: system mode resolves the host as a launch
// does. On a host whose ld.so.conf registers a cuda_compat directory and a
// link to the linked entry, the second --link-run-opengl-driver (that
// link now an entry of ours) once relabelled every directory as -d, which turns on the
// cuda_compat preference: its entry took the compat libcuda where a launch
// takes the host's. The doctor with the system-mode flags reports that
// same entry.
func TestSystemModeChoosesAsLaunch(t *testing.T) {
	s := newSysRoot(t)
	s.cache = filepath.Join(s.root, "var/cache/nix-gl-host")
	fixtures.FakeDriver(t, filepath.Join(s.root, "usr/lib/x86_64-linux-gnu"), "535.261.03", "amd64")
	fixtures.SetModuleVersion(t, s.root, "535.261.03")
	fixtures.CompatLib(t, filepath.Join(s.root, "usr/local/cuda/compat"), "550.54.14", `{"Format":1,"CUDA Version":"12.4","Driver":[535],"Device":[]}`)
	// The host registers a link to the linked entry with ldconfig, so
	// that FHS programs find the driver too (/opt/gl, made below).
	fixtures.Write(t, filepath.Join(s.root, "etc/ld.so.conf"), "/opt/gl/lib\n/usr/local/cuda/compat\n")

	files := func(entry string) []string {
		t.Helper()
		m, err := hostdrivers.ReadManifest(entry)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range m.Files {
			out = append(out, f.Base+" "+f.Real)
		}
		return out
	}
	cache := t.TempDir()
	lib, errOut, code := nixglhost(t, baseEnv(t), "--driver-root", s.root, "--cache-dir", cache, "-p")
	if code != 0 {
		t.Fatalf("launch: exit %d: %s", code, errOut)
	}
	launch := files(filepath.Dir(strings.TrimSpace(lib)))
	if !slices.Contains(launch, "libcuda.so.535.261.03 /usr/lib/x86_64-linux-gnu/libcuda.so.535.261.03") {
		t.Fatalf("the launch's files %q lack the host's libcuda", launch)
	}
	for run := 1; run <= 2; run++ {
		if run == 2 {
			// /opt/gl is now the first run's entry.
			fixtures.Must(t, os.MkdirAll(filepath.Join(s.root, "opt"), 0o755))
			fixtures.Must(t, os.Symlink(strings.TrimPrefix(s.linkTarget(t), s.root), filepath.Join(s.root, "opt/gl")))
			// Make the second run resolve again rather than trust the
			// index of the first.
			idx, _ := filepath.Glob(filepath.Join(s.cache, ".index-*"))
			for _, p := range idx {
				fixtures.Must(t, os.Remove(p))
			}
		}
		_, stderr, code := nixglhost(t, baseEnv(t), s.args("-v", "--link-run-opengl-driver")...)
		if code != 0 {
			t.Fatalf("run %d: exit %d\n%s", run, code, stderr)
		}
		if strings.Contains(stderr, "origin=-d") {
			t.Errorf("run %d: system mode relabels discovered directories as -d:\n%s", run, grepLines(stderr, "origin="))
		}
		if got := files(s.linkTarget(t)); !slices.Equal(got, launch) {
			t.Errorf("run %d: system mode chose\n%q\nthe launch chose\n%q", run, got, launch)
		}
	}
	out, _, code := nixglhost(t, baseEnv(t), s.args("--doctor", "--json", "--link-run-opengl-driver")...)
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--doctor --link-run-opengl-driver (exit %d): %v\n%s", code, err, out)
	}
	if r.Mode != "system" || r.Cache.Entry != s.linkTarget(t) {
		t.Errorf("the doctor of system mode (mode %q) names the entry %q; RUN/opengl-driver is %q", r.Mode, r.Cache.Entry, s.linkTarget(t))
	}
	if r.Companion == nil {
		t.Errorf("the doctor of system mode reports no 32-bit companion")
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
