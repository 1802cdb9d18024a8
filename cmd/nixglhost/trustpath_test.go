package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// needRoot skips (or, with fixtures.RequireEnv, fails) a test that gives
// files to other uids.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		fixtures.Unavailable(t, "giving files to another user needs root")
	}
}

// mkdirAs makes the directory p with mode (exactly, sticky bit included),
// owned by uid.
func mkdirAs(t *testing.T, p string, uid int, mode os.FileMode) string {
	t.Helper()
	fixtures.Must(t, os.MkdirAll(p, 0o755))
	fixtures.Must(t, os.Chmod(p, mode))
	fixtures.Must(t, os.Chown(p, uid, uid))
	return p
}

// chownTree gives every file and directory under dir (links included,
// not followed) to uid.
func chownTree(t *testing.T, dir string, uid int) {
	t.Helper()
	fixtures.Must(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	}))
}

// TestRootModesCheckDriverAncestors: system mode links a driver only when
// every directory above its files, from / down, belongs to root and others
// cannot write it (sticky directories such as /tmp excepted above the
// file's own directory: others cannot move a name of root's out of them).
// Before, a root-owned -d directory under a user's directory was linked,
// and that user could swap it for their own libraries at any time.
func TestRootModesCheckDriverAncestors(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name string
		// setup makes the driver under s and returns the -d directory
		// (inside the root), the --driver-root to use ("" for s.root)
		// and the path the refusal must name ("" when the link must be
		// made).
		setup func(t *testing.T, s *sysRoot) (dir, root, named string)
		want  string
	}{
		{"parent owned by a user", func(t *testing.T, s *sysRoot) (string, string, string) {
			home := mkdirAs(t, filepath.Join(s.root, "home"), attackerUID, 0o755)
			fixtures.FakeDriver(t, filepath.Join(home, "drv"), "535.261.03", "amd64")
			return "/home/drv", "", home
		}, "belongs to uid 64102"},
		{"grandparent owned by a user", func(t *testing.T, s *sysRoot) (string, string, string) {
			u := mkdirAs(t, filepath.Join(s.root, "u"), attackerUID, 0o755)
			mkdirAs(t, filepath.Join(u, "nv"), 0, 0o755)
			fixtures.FakeDriver(t, filepath.Join(u, "nv", "drv"), "535.261.03", "amd64")
			return "/u/nv/drv", "", u
		}, "belongs to uid 64102"},
		{"parent writable by others, not sticky", func(t *testing.T, s *sysRoot) (string, string, string) {
			opt := mkdirAs(t, filepath.Join(s.root, "opt"), 0, 0o777)
			fixtures.FakeDriver(t, filepath.Join(opt, "drv"), "535.261.03", "amd64")
			return "/opt/drv", "", opt
		}, "writable by others"},
		{"driver root through a link into a user's directory", func(t *testing.T, s *sysRoot) (string, string, string) {
			base := t.TempDir()
			att := mkdirAs(t, filepath.Join(base, "att"), attackerUID, 0o755)
			host := mkdirAs(t, filepath.Join(att, "host"), 0, 0o755)
			fixtures.FakeDriver(t, filepath.Join(host, "drv"), "535.261.03", "amd64")
			link := filepath.Join(base, "hostlink")
			fixtures.Must(t, os.Symlink(host, link))
			return "/drv", link, att
		}, "belongs to uid 64102"},
		{"sticky parent, root's directory below", func(t *testing.T, s *sysRoot) (string, string, string) {
			tmp := mkdirAs(t, filepath.Join(s.root, "tmp"), 0, 0o777|os.ModeSticky)
			fixtures.FakeDriver(t, filepath.Join(tmp, "drv"), "535.261.03", "amd64")
			return "/tmp/drv", "", ""
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSysRoot(t)
			dir, root, named := tt.setup(t, s)
			if root != "" {
				s.root = root
			}
			stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", dir, "--link-run-opengl-driver")...)
			t.Logf("%s", stderr)
			if named == "" {
				if code != 0 {
					t.Fatalf("exit %d, want the link made\n%s%s", code, stdout, stderr)
				}
				s.linkTarget(t)
				return
			}
			if code == 0 || !strings.Contains(stderr, named) || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q: want a refusal naming %s, saying %q", code, stderr, named, tt.want)
			}
			if _, err := os.Lstat(s.link); err == nil {
				t.Errorf("%s was linked", s.link)
			}
		})
	}
}

// TestSystemModeUnlinksEntryThatNoLongerPasses replays the review's
// attack on a linked entry: after linking, a directory above the driver
// passed to a user (who then swapped the driver directory for their own,
// or not yet), or became writable by others. Before, a re-run refused the
// swapped directory but left RUN/opengl-driver pointing at the entry whose
// links now led to that user's libraries (and, with the files unchanged,
// the hot path said "already linked"). Now the re-run removes the link,
// naming the path at fault, and fails.
func TestSystemModeUnlinksEntryThatNoLongerPasses(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name string
		// spoil changes the host after the link was made and returns the
		// path the message must name.
		spoil func(t *testing.T, parent string) string
	}{
		{"parent given to a user", func(t *testing.T, parent string) string {
			fixtures.Must(t, os.Chown(parent, attackerUID, attackerUID))
			return parent
		}},
		{"driver directory swapped by the parent's owner", func(t *testing.T, parent string) string {
			fixtures.Must(t, os.Chown(parent, attackerUID, attackerUID))
			drv := filepath.Join(parent, "drv")
			fixtures.Must(t, os.Rename(drv, drv+".old"))
			fixtures.FakeDriver(t, drv, "535.261.03", "amd64")
			chownTree(t, drv, attackerUID)
			return parent
		}},
		{"parent made writable by others", func(t *testing.T, parent string) string {
			fixtures.Must(t, os.Chmod(parent, 0o777))
			return parent
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSysRoot(t)
			parent := mkdirAs(t, filepath.Join(s.root, "home"), 0, 0o755)
			fixtures.FakeDriver(t, filepath.Join(parent, "drv"), "535.261.03", "amd64")
			args := s.args("-d", "/home/drv", "--link-run-opengl-driver")
			if stdout, stderr, code := nixglhost(t, baseEnv(t), args...); code != 0 {
				t.Fatalf("first link: exit %d\n%s%s", code, stdout, stderr)
			}
			entry := s.linkTarget(t)
			named := tt.spoil(t, parent)
			stdout, stderr, code := nixglhost(t, baseEnv(t), args...)
			t.Logf("re-run: %s", stderr)
			if code == 0 || !strings.Contains(stderr, named) {
				t.Errorf("re-run: exit %d, stdout %q, stderr %q: want a failure naming %s", code, stdout, stderr, named)
			}
			if !strings.Contains(stderr, "removed "+s.link) {
				t.Errorf("re-run: stderr %q does not say that %s was removed", stderr, s.link)
			}
			if target, err := os.Readlink(s.link); err == nil {
				t.Errorf("%s still points to %s (the entry was %s)", s.link, target, entry)
			}
		})
	}
}

// TestRootModesStopServingEntryThatNoLongerPasses: the hook and
// --cdi-spec, which found the entry on the hot path (the driver files
// unchanged), check the whole path of its files again: after the
// directory above the driver passed to a user, the hook binds nothing and
// the CDI spec is not rewritten, each naming that directory. Before, both
// served the entry as if nothing had changed.
func TestRootModesStopServingEntryThatNoLongerPasses(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name string
		// setup returns the driver root and the arguments of the mode.
		setup func(t *testing.T) (root string, args []string)
	}{
		{"pre-build hook", func(t *testing.T) (string, []string) {
			root, cache := hookRoot(t)
			return root, []string{"--nix-pre-build-hook", "--driver-root", root, "--cache-dir", cache, "-d", "/drv", drvFixture("plain-cuda")}
		}},
		{"cdi spec", func(t *testing.T) (string, []string) {
			root := fixtures.TwoGPURoot(t)
			cache := filepath.Join(t.TempDir(), "nix-gl-host")
			return root, []string{"--driver-root", root, "--cache-dir", cache, "--cdi-dir", filepath.Join(t.TempDir(), "cdi"), "--cdi-spec"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, args := tt.setup(t)
			if stdout, stderr, code := nixglhost(t, baseEnv(t), args...); code != 0 {
				t.Fatalf("first run: exit %d\n%s%s", code, stdout, stderr)
			}
			fixtures.Must(t, os.Chown(root, attackerUID, attackerUID))
			stdout, stderr, code := nixglhost(t, baseEnv(t), args...)
			t.Logf("second run: %s", stderr)
			if code == 0 || !strings.Contains(stderr, root) || !strings.Contains(stderr, "belongs to uid 64102") {
				t.Errorf("second run: exit %d, stderr %q: want a refusal naming %s", code, stderr, root)
			}
			if strings.Contains(stdout, root) {
				t.Errorf("second run served host files: %q", stdout)
			}
		})
	}
}

// TestRootModesCheckVendorFiles: a vendor file (EGL, Vulkan, OpenCL) is
// taken into root's entry only under the checks the libraries get: owned
// by root, unwritable by others, in a directory others cannot write
// (sticky or not), below directories only root controls. Before, a user's
// 10_nvidia.json from a mode-1777 directory beside the driver became
// root's, its extra fields kept.
func TestRootModesCheckVendorFiles(t *testing.T) {
	needRoot(t)
	const vendor = `{"file_format_version": "1.0.0", "ICD": {"library_path": "libEGL_nvidia.so.0"}, "planted": "by uid 64102"}` + "\n"
	tests := []struct {
		name string
		// setup plants ROOT/share/glvnd/egl_vendor.d/10_nvidia.json and
		// returns the path the refusal must name ("" when the link must
		// be made).
		setup func(t *testing.T, share, file string) string
		want  string
	}{
		{"a user's file in a sticky directory", func(t *testing.T, share, file string) string {
			mkdirAs(t, filepath.Dir(file), 0, 0o777|os.ModeSticky)
			fixtures.Write(t, file, vendor)
			fixtures.Must(t, os.Chown(file, attackerUID, attackerUID))
			return file
		}, "belongs to uid 64102"},
		{"root's file in a sticky directory", func(t *testing.T, share, file string) string {
			mkdirAs(t, filepath.Dir(file), 0, 0o777|os.ModeSticky)
			fixtures.Write(t, file, vendor)
			return filepath.Dir(file)
		}, "writable by others"},
		{"root's file writable by others", func(t *testing.T, share, file string) string {
			fixtures.Write(t, file, vendor)
			fixtures.Must(t, os.Chmod(file, 0o666))
			return file
		}, "writable by others"},
		{"root's file under a user's directory", func(t *testing.T, share, file string) string {
			fixtures.Write(t, file, vendor)
			fixtures.Must(t, os.Chown(share, attackerUID, attackerUID))
			return share
		}, "belongs to uid 64102"},
		{"root's file in root's directories", func(t *testing.T, share, file string) string {
			fixtures.Write(t, file, vendor)
			return ""
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSysRoot(t)
			fixtures.FakeDriver(t, filepath.Join(s.root, "drv"), "535.261.03", "amd64")
			share := mkdirAs(t, filepath.Join(s.root, "share"), 0, 0o755)
			file := filepath.Join(share, "glvnd", "egl_vendor.d", "10_nvidia.json")
			named := tt.setup(t, share, file)
			stdout, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", "/drv", "--link-run-opengl-driver")...)
			t.Logf("%s", stderr)
			if named != "" {
				if code == 0 || !strings.Contains(stderr, named) || !strings.Contains(stderr, tt.want) {
					t.Errorf("exit %d, stderr %q: want a refusal naming %s, saying %q", code, stderr, named, tt.want)
				}
				if _, err := os.Lstat(s.link); err == nil {
					t.Errorf("%s was linked", s.link)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d, want the link made\n%s%s", code, stdout, stderr)
			}
			got, err := os.ReadFile(filepath.Join(s.linkTarget(t), "share", "glvnd", "egl_vendor.d", "10_nvidia.json"))
			fixtures.Must(t, err)
			if want := s.link + "/lib/libEGL_nvidia.so.0"; !strings.Contains(string(got), want) {
				t.Errorf("the entry's 10_nvidia.json does not name %s:\n%s", want, got)
			}
		})
	}
}
