package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestSystemModeRefusesBeforeTouching: system mode (root's, in real use)
// refuses a cache directory another user could have planted or can write
// to, before it changes anything there: a mode-1777 directory kept its
// mode (it used to be chmodded 0755 and then trusted), a symbolic link's
// target kept its mode, and a lock planted as a link did not create its
// target.
func TestSystemModeRefusesBeforeTouching(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the --cache-dir and the path whose mode must not
		// change, with that mode.
		setup   func(t *testing.T) (cache, watched string, mode os.FileMode)
		wantErr string
	}{
		{"mode 1777", func(t *testing.T) (string, string, os.FileMode) {
			d := filepath.Join(t.TempDir(), "shared")
			fixtures.Must(t, os.Mkdir(d, 0o755))
			fixtures.Must(t, os.Chmod(d, 0o777|os.ModeSticky))
			return d, d, 0o777 | os.ModeSticky
		}, "writable by others"},
		{"group-writable", func(t *testing.T) (string, string, os.FileMode) {
			d := filepath.Join(t.TempDir(), "group")
			fixtures.Must(t, os.Mkdir(d, 0o755))
			fixtures.Must(t, os.Chmod(d, 0o775))
			return d, d, 0o775
		}, "writable by others"},
		{"symbolic link to a private directory", func(t *testing.T) (string, string, os.FileMode) {
			private := filepath.Join(t.TempDir(), "private")
			fixtures.Must(t, os.Mkdir(private, 0o700))
			link := filepath.Join(t.TempDir(), "link")
			fixtures.Must(t, os.Symlink(private, link))
			return link, private, 0o700
		}, "symbolic link"},
		{"under a directory others can write", func(t *testing.T) (string, string, os.FileMode) {
			open := filepath.Join(t.TempDir(), "open")
			fixtures.Must(t, os.Mkdir(open, 0o755))
			fixtures.Must(t, os.Chmod(open, 0o757))
			return filepath.Join(open, "cache"), open, 0o757
		}, "writable by others"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSysRoot(t)
			fixtures.FakeDriver(t, filepath.Join(s.root, "drv"), "535.261.03", "amd64")
			cache, watched, mode := tt.setup(t)
			s.cache = cache
			_, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", "/drv", "--link-run-opengl-driver")...)
			if code == 0 || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q: want a refusal saying %q", code, stderr, tt.wantErr)
			}
			fi, err := os.Lstat(watched)
			fixtures.Must(t, err)
			if got := fi.Mode() & (os.ModePerm | os.ModeSticky); got != mode {
				t.Errorf("%s: mode %v after the refusal, want %v unchanged", watched, got, mode)
			}
			if ents, _ := os.ReadDir(watched); len(ents) != 0 {
				t.Errorf("%s: %d files written before the refusal", watched, len(ents))
			}
			if _, err := os.Lstat(s.link); err == nil {
				t.Errorf("%s was linked", s.link)
			}
		})
	}
}

// TestSystemLockNotFollowed: a .system-mode.lock that is a symbolic link
// is refused; its target is not created.
func TestSystemLockNotFollowed(t *testing.T) {
	s := newSysRoot(t)
	fixtures.FakeDriver(t, filepath.Join(s.root, "drv"), "535.261.03", "amd64")
	fixtures.Must(t, os.Mkdir(s.cache, 0o755))
	target := filepath.Join(t.TempDir(), "etc", "created-by-root")
	fixtures.Must(t, os.MkdirAll(filepath.Dir(target), 0o755))
	fixtures.Must(t, os.Symlink(target, filepath.Join(s.cache, lockBase)))
	_, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", "/drv", "--link-run-opengl-driver")...)
	// The planted link makes the cache not ours: refused before the lock
	// is opened, naming what is in the way.
	if code == 0 || !strings.Contains(stderr, lockBase) || !strings.Contains(stderr, "did not make") {
		t.Errorf("exit %d, stderr %q: want the cache with the planted lock refused", code, stderr)
	}
	if _, err := os.Lstat(target); err == nil {
		t.Errorf("%s was created through the planted lock", target)
	}
}

// TestSystemModeRefusesWritableDriver: root's system mode never links a
// driver file another user could have replaced or added: a driver
// directory writable by others (sticky or not) or a driver file writable
// by others is refused, naming it. Before, a user-replaced libcuda in a
// mode-0777 directory ran as root from /run/opengl-driver.
func TestSystemModeRefusesWritableDriver(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, drv string) string // returns the path to name
	}{
		{"directory 0777", func(t *testing.T, drv string) string {
			fixtures.Must(t, os.Chmod(drv, 0o777))
			return drv
		}},
		{"directory 1777", func(t *testing.T, drv string) string {
			fixtures.Must(t, os.Chmod(drv, 0o777|os.ModeSticky))
			return drv
		}},
		{"libcuda 0666", func(t *testing.T, drv string) string {
			p, err := filepath.EvalSymlinks(filepath.Join(drv, "libcuda.so.1"))
			fixtures.Must(t, err)
			fixtures.Must(t, os.Chmod(p, 0o666))
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSysRoot(t)
			drv := filepath.Join(s.root, "drv")
			fixtures.FakeDriver(t, drv, "535.261.03", "amd64")
			named := tt.spoil(t, drv)
			_, stderr, code := nixglhost(t, baseEnv(t), s.args("-d", "/drv", "--link-run-opengl-driver")...)
			if code == 0 || !strings.Contains(stderr, named) || !strings.Contains(stderr, "writable by others") {
				t.Errorf("exit %d, stderr %q: want a refusal naming %s", code, stderr, named)
			}
			if _, err := os.Lstat(s.link); err == nil {
				t.Errorf("%s was linked", s.link)
			}
		})
	}
}
