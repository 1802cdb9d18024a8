package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/cdi"
	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// Tests of system mode's and --cdi-spec's ownership rule (docs/DESIGN.md,
// invariant 4; issue 22): the run directory, the links in it, the entries
// prune removes and the CDI spec are touched only when provably ours, and
// a refused run writes nothing.

// otherUID owns the files these tests plant as another user's.
const otherUID = 64103

// fakeKey is a name with the shape of a cache entry's (32 hex digits).
func fakeKey(c byte) string { return strings.Repeat(string(c), 32) }

// TestRunDirChecked: a run directory another user could write to without
// the sticky bit, or one that is a link, another user's, or below a parent
// others can write, is refused by link and unlink before anything is
// written: the link planted there (one nixglhost would take for its own)
// survives byte for byte, no cache is made, and the message names the
// directory to fix. A sticky, world-writable run directory is accepted:
// others cannot move the link root made there.
func TestRunDirChecked(t *testing.T) {
	tests := []struct {
		name   string
		asRoot bool
		// setup makes the run directory in base and returns it, with the
		// path the refusal must name ("" when it is accepted).
		setup   func(t *testing.T, base string) (run, named string)
		wantErr string
	}{
		{"world-writable", false, func(t *testing.T, base string) (string, string) {
			run := fixtures.MkdirMode(t, filepath.Join(base, "run"), 0o777)
			return run, run
		}, "writable by others"},
		{"group-writable", false, func(t *testing.T, base string) (string, string) {
			run := fixtures.MkdirMode(t, filepath.Join(base, "run"), 0o775)
			return run, run
		}, "writable by others"},
		{"a symbolic link", false, func(t *testing.T, base string) (string, string) {
			real := fixtures.MkdirMode(t, filepath.Join(base, "real"), 0o755)
			run := filepath.Join(base, "run")
			fixtures.Must(t, os.Symlink(real, run))
			return run, run
		}, "symbolic link"},
		{"below a world-writable parent", false, func(t *testing.T, base string) (string, string) {
			parent := fixtures.MkdirMode(t, filepath.Join(base, "open"), 0o777)
			return fixtures.MkdirMode(t, filepath.Join(parent, "run"), 0o755), parent
		}, "writable by others"},
		{"another user's", true, func(t *testing.T, base string) (string, string) {
			run := fixtures.MkdirMode(t, filepath.Join(base, "run"), 0o755)
			fixtures.Must(t, os.Chown(run, otherUID, otherUID))
			return run, run
		}, "belongs to uid"},
		{"sticky and world-writable", false, func(t *testing.T, base string) (string, string) {
			return fixtures.MkdirMode(t, filepath.Join(base, "run"), 0o777|os.ModeSticky), ""
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.asRoot && os.Geteuid() != 0 {
				fixtures.Unavailable(t, "giving a directory to another user needs root")
			}
			s := newSysRoot(t)
			fixtures.FakeDriver(t, filepath.Join(s.root, "drv"), "535.261.03", "amd64")
			base := t.TempDir()
			run, named := tt.setup(t, base)
			s.run, s.link = run, filepath.Join(run, "opengl-driver")
			if named == "" {
				stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", "/drv", "--link-run-opengl-driver")...)
				if code != 0 {
					t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
				}
				s.linkTarget(t)
				return
			}
			// A link nixglhost would take for its own, as the finding
			// saw replaced.
			fixtures.Must(t, os.Symlink(filepath.Join(s.cache, fakeKey('a')), s.link))
			before := fixtures.Snapshot(t, base)
			for _, mode := range []string{"--link-run-opengl-driver", "--unlink-run-opengl-driver"} {
				stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", "/drv", mode)...)
				if code != 1 || !strings.Contains(stderr, tt.wantErr) || !strings.Contains(stderr, named) {
					t.Errorf("%s: exit %d, stderr %q; want 1 and a refusal naming %s (%q)", mode, code, stderr, named, tt.wantErr)
				}
				if stdout != "" {
					t.Errorf("%s: stdout %q", mode, stdout)
				}
				if d := cmp.Diff(before, fixtures.Snapshot(t, base)); d != "" {
					t.Errorf("%s changed the run directory (-before +after):\n%s", mode, d)
				}
			}
			if _, err := os.Lstat(s.cache); err == nil {
				t.Errorf("a refused run made the system cache %s", s.cache)
			}
		})
	}
}

// TestTwoRunDirsShareCache: two run directories linked from one system
// cache; a driver upgrade linked through one of them must not prune the
// entry the other's link still names (before, the other link was left
// pointing at a deleted directory). Once the other link is removed, the
// next upgrade prunes its entry.
func TestTwoRunDirsShareCache(t *testing.T) {
	s := newSysRoot(t)
	run2 := t.TempDir()
	link2 := filepath.Join(run2, "opengl-driver")
	drv := filepath.Join(s.root, "drv")
	sys := func(run string, extra ...string) string {
		t.Helper()
		args := append([]string{"--driver-root", s.root, "--run-dir", run, "--cache-dir", s.cache, "-d", "/drv"}, extra...)
		stdout, stderr, code := nixglhost(t, baseEnv(t), args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", extra, code, stdout, stderr)
		}
		return stdout
	}
	install := func(version string) {
		t.Helper()
		fixtures.Must(t, os.RemoveAll(drv))
		fixtures.FakeDriver(t, drv, version, "amd64")
	}
	resolves := func(link string) string {
		t.Helper()
		target, err := os.Readlink(link)
		fixtures.Must(t, err)
		if _, err := hostdrivers.ReadManifest(target); err != nil {
			t.Fatalf("%s -> %s, no complete entry: %v", link, target, err)
		}
		return target
	}
	install("535.261.03")
	sys(s.run, "--link-run-opengl-driver")
	sys(run2, "--link-run-opengl-driver")
	e2 := resolves(link2)
	for _, v := range []string{"550.54.14", "560.35.03"} {
		install(v)
		sys(s.run, "--link-run-opengl-driver")
		resolves(s.link)
		if got := resolves(link2); got != e2 {
			t.Fatalf("%s moved: %s, then %s", link2, e2, got)
		}
	}
	sys(run2, "--unlink-run-opengl-driver")
	install("565.57.01")
	out := sys(s.run, "--link-run-opengl-driver")
	if _, err := os.Lstat(e2); err == nil || !strings.Contains(out, "removed old entry "+e2) {
		t.Errorf("the unlinked run directory's entry %s was kept (%v):\n%s", e2, err, out)
	}
}

// TestPruneLeavesForeign: names planted in the system cache with an
// entry's shape, and listed in system mode's record of what it linked,
// survive byte for byte through driver upgrades: a directory with no
// manifest, one whose manifest names another key, a link to a directory
// outside the cache, a regular file. Only the entries system mode made
// are pruned.
func TestPruneLeavesForeign(t *testing.T) {
	s := newSysRoot(t)
	drv := filepath.Join(s.root, "drv")
	link := func(version string) string {
		t.Helper()
		fixtures.Must(t, os.RemoveAll(drv))
		fixtures.FakeDriver(t, drv, version, "amd64")
		stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", "/drv", "--link-run-opengl-driver")...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		return stdout
	}
	link("535.261.03")
	e1 := s.linkTarget(t)
	outside := t.TempDir()
	fixtures.Write(t, filepath.Join(outside, "keep/me"), "precious\n")
	planted := map[string]func(p string){
		fakeKey('b'): func(p string) { fixtures.Write(t, filepath.Join(p, "lib/data"), "not ours\n") },
		fakeKey('c'): func(p string) {
			fixtures.Write(t, filepath.Join(p, "manifest.json"), `{"format":1,"key":"`+fakeKey('d')+`"}`)
		},
		fakeKey('e'): func(p string) { fixtures.Must(t, os.Symlink(outside, p)) },
		fakeKey('f'): func(p string) { fixtures.Write(t, p, "a file\n") },
	}
	var names []string
	for name, make := range planted {
		make(filepath.Join(s.cache, name))
		names = append(names, name)
	}
	hist := filepath.Join(s.cache, ".system-mode.linked")
	b, err := os.ReadFile(hist)
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(hist, append(b, []byte(strings.Join(names, "\n")+"\n")...), 0o644))
	snap := func() map[string]string {
		out := map[string]string{}
		for _, name := range names {
			p := filepath.Join(s.cache, name)
			if _, err := os.Lstat(p); err != nil {
				out[name] = fixtures.Describe(t, p)
				continue
			}
			for k, v := range fixtures.Snapshot(t, p) {
				out[filepath.Join(name, k)] = v
			}
		}
		for k, v := range fixtures.Snapshot(t, outside) {
			out[filepath.Join("outside", k)] = v
		}
		return out
	}
	before := snap()
	link("550.54.14")
	out := link("560.35.03")
	if d := cmp.Diff(before, snap()); d != "" {
		t.Errorf("foreign names in the system cache changed (-before +after):\n%s", d)
	}
	if _, err := os.Lstat(e1); err == nil || !strings.Contains(out, "removed old entry "+e1) {
		t.Errorf("system mode's own old entry %s was not pruned (%v):\n%s", e1, err, out)
	}
}

// TestForeignLinkInStickyRunDir: in a sticky run directory anyone can
// create the link's name first. A link that another user made, even one
// pointing at an entry of the system cache, and a link to a name in the
// cache that is not an entry's, are refused by link and unlink and left
// as they are.
func TestForeignLinkInStickyRunDir(t *testing.T) {
	tests := []struct {
		name    string
		asRoot  bool
		plant   func(t *testing.T, s *sysRoot)
		wantErr string
	}{
		{"another user's link into the cache", true, func(t *testing.T, s *sysRoot) {
			fixtures.Must(t, os.Symlink(filepath.Join(s.cache, fakeKey('a')), s.link))
			fixtures.Must(t, os.Lchown(s.link, otherUID, otherUID))
		}, "belongs to uid"},
		{"a link to a name in the cache that is no entry's", false, func(t *testing.T, s *sysRoot) {
			fixtures.Must(t, os.Symlink(filepath.Join(s.cache, "photos"), s.link))
		}, "not an entry of nixglhost's system cache"},
		{"another user's regular file", true, func(t *testing.T, s *sysRoot) {
			fixtures.Write(t, s.link, "mine\n")
			fixtures.Must(t, os.Lchown(s.link, otherUID, otherUID))
		}, "not a link nixglhost made"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.asRoot && os.Geteuid() != 0 {
				fixtures.Unavailable(t, "giving a file to another user needs root")
			}
			s := newSysRoot(t)
			fixtures.FakeDriver(t, filepath.Join(s.root, "drv"), "535.261.03", "amd64")
			fixtures.Must(t, os.Chmod(s.run, 0o777|os.ModeSticky))
			tt.plant(t, s)
			before := fixtures.Snapshot(t, s.run)
			for _, mode := range []string{"--link-run-opengl-driver", "--unlink-run-opengl-driver"} {
				stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", "/drv", mode)...)
				if code != 1 || !strings.Contains(stderr, tt.wantErr) || !strings.Contains(stderr, s.link) {
					t.Errorf("%s: exit %d, stderr %q; want 1 and %q naming %s", mode, code, stderr, tt.wantErr, s.link)
				}
				if stdout != "" {
					t.Errorf("%s: stdout %q", mode, stdout)
				}
				if d := cmp.Diff(before, fixtures.Snapshot(t, s.run)); d != "" {
					t.Errorf("%s changed the run directory (-before +after):\n%s", mode, d)
				}
			}
		})
	}
}

// TestCDIRefusesBeforeWriting: --cdi-spec refuses a spec file it did not
// write (a foreign spec, of another kind or of its own with no record of
// it, a link, a directory of that name), a foreign file at its record's
// name, and a CDI directory that others could redirect (a parent others
// can write, a parent that is another user's link), before anything is
// written: no
// system cache, no directory created, every planted file byte for byte.
// A CDI directory two levels below an existing one is created, 0755.
func TestCDIRefusesBeforeWriting(t *testing.T) {
	tests := []struct {
		name   string
		asRoot bool
		// setup returns the --cdi-dir and the path the refusal must name
		// ("" when the spec is written).
		setup   func(t *testing.T, base string) (dir, named string)
		wantErr string
	}{
		{"a foreign spec", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			fixtures.Write(t, filepath.Join(dir, cdi.FileName), `{"cdiVersion":"0.6.0","kind":"nvidia.com/gpu","devices":[]}`)
			return dir, filepath.Join(dir, cdi.FileName)
		}, "did not write it"},
		{"a foreign spec of nixglhost's kind", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			fixtures.Write(t, filepath.Join(dir, cdi.FileName), `{"cdiVersion":"0.5.0","kind":"nixglhost.org/gpu","devices":[{"name":"all","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia0"}]}}]}`)
			return dir, filepath.Join(dir, cdi.FileName)
		}, "no record " + cdi.RecordName},
		{"a foreign file at the record's name", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			fixtures.Write(t, filepath.Join(dir, cdi.RecordName), "someone's\n")
			return dir, filepath.Join(dir, cdi.RecordName)
		}, "did not write it"},
		{"the spec's name is a link", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			fixtures.Write(t, filepath.Join(base, "elsewhere.json"), `{"annotations":{"nixglhost.org/generator":"nixglhost"}}`)
			fixtures.Must(t, os.Symlink(filepath.Join(base, "elsewhere.json"), filepath.Join(dir, cdi.FileName)))
			return dir, filepath.Join(dir, cdi.FileName)
		}, "did not write it"},
		{"the spec's name is a directory", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			fixtures.Write(t, filepath.Join(dir, cdi.FileName, "x"), "x")
			return dir, filepath.Join(dir, cdi.FileName)
		}, "did not write it"},
		{"a missing directory below one others can write", false, func(t *testing.T, base string) (string, string) {
			open := fixtures.MkdirMode(t, filepath.Join(base, "open"), 0o777)
			return filepath.Join(open, "etc", "cdi"), open
		}, "writable by others"},
		{"a parent that is another user's link", true, func(t *testing.T, base string) (string, string) {
			l := fixtures.OthersLink(t, base, "etc", otherUID)
			return filepath.Join(l, "cdi"), l
		}, "belongs to uid"},
		{"a world-writable sticky CDI directory", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o777|os.ModeSticky)
			return dir, dir
		}, "writable by others"},
		{"created two levels deep", false, func(t *testing.T, base string) (string, string) {
			return filepath.Join(base, "etc", "cdi"), ""
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.asRoot && os.Geteuid() != 0 {
				fixtures.Unavailable(t, "giving files to another user needs root")
			}
			root := t.TempDir()
			fixtures.FakeDriver(t, filepath.Join(root, "drv"), "535.261.03", "amd64")
			cache := filepath.Join(t.TempDir(), "nix-gl-host")
			base := t.TempDir()
			dir, named := tt.setup(t, base)
			before := fixtures.Snapshot(t, base)
			stdout, stderr, code := nixglhost(t, baseEnv(t), "--driver-root", root, "--cache-dir", cache, "-d", "/drv", "--cdi-dir", dir, "--cdi-spec")
			if named == "" {
				if code != 0 {
					t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
				}
				for _, p := range []string{filepath.Dir(dir), dir} {
					if fi, err := os.Lstat(p); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
						t.Errorf("%s: %v, %v; want a directory, mode 0755", p, fi, err)
					}
				}
				if _, err := os.Stat(filepath.Join(dir, cdi.FileName)); err != nil {
					t.Errorf("no spec written: %v", err)
				}
				return
			}
			if code != 1 || !strings.Contains(stderr, tt.wantErr) || !strings.Contains(stderr, named) {
				t.Errorf("exit %d, stderr %q; want 1 and %q naming %s", code, stderr, tt.wantErr, named)
			}
			if d := cmp.Diff(before, fixtures.Snapshot(t, base)); d != "" {
				t.Errorf("a refused run changed files (-before +after):\n%s", d)
			}
			if _, err := os.Lstat(cache); err == nil {
				t.Errorf("a refused run made the system cache %s", cache)
			}
		})
	}
}
