package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nixglhost/nixglhost/internal/archrun"
	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// TestHostileDriverDirs puts broken and hostile files next to (or instead
// of) a driver and checks the outcome each time: the program still runs,
// the good driver is used when there is one, and the skipped file is
// reported under DEBUG=1.
func TestHostileDriverDirs(t *testing.T) {
	v := "535.261.03"
	tests := []struct {
		name string
		// setup fills dir; the fake driver is there first when good is set.
		good     bool
		setup    func(t *testing.T, dir string)
		wantCUDA bool   // libcuda.so.1 in the entry
		inDebug  string // what DEBUG=1 says about it
	}{
		{"non-ELF libcuda.so.1", false, func(t *testing.T, d string) {
			fixtures.Must(t, os.WriteFile(filepath.Join(d, "libcuda.so.1"), []byte("#!/bin/sh\necho not a library\n"), 0o755))
		}, false, "bad magic"},
		{"truncated ELF", false, func(t *testing.T, d string) {
			b, err := os.ReadFile("/bin/true")
			fixtures.Must(t, err)
			fixtures.Must(t, os.WriteFile(filepath.Join(d, "libcuda.so.1"), b[:100], 0o755))
		}, false, "libcuda.so.1"},
		{"other machine next to the right one", true, func(t *testing.T, d string) {
			other := filepath.Join(d, "arm")
			fixtures.Must(t, os.Mkdir(other, 0o755))
			fixtures.FakeStub(t, other, "libnvidia-ml.so.1", "arm64")
			fixtures.Must(t, os.Rename(filepath.Join(other, "libnvidia-ml.so.1"), filepath.Join(d, "libnvidia-ml.so.1.aarch64")))
			// A lone wrong-machine driver file with a name of its own.
			fixtures.FakeStub(t, other, "libnvidia-encode.so.1", "arm64")
			fixtures.Must(t, os.Rename(filepath.Join(other, "libnvidia-encode.so.1"), filepath.Join(d, "libnvidia-encode.so.1")))
		}, true, "wrong architecture"},
		{"symlink loop", true, func(t *testing.T, d string) {
			fixtures.Must(t, os.Symlink("libnvidia-fbc.so.1", filepath.Join(d, "libnvidia-fbc.so")))
			fixtures.Must(t, os.Symlink("libnvidia-fbc.so", filepath.Join(d, "libnvidia-fbc.so.1")))
		}, true, "unresolvable"},
		{"dangling symlink", true, func(t *testing.T, d string) {
			fixtures.Must(t, os.Symlink("/nonexistent/libnvidia-cfg.so.1", filepath.Join(d, "libnvidia-cfg.so.1")))
		}, true, "unresolvable"},
		{"directory named like a library", true, func(t *testing.T, d string) {
			fixtures.Must(t, os.Mkdir(filepath.Join(d, "libnvidia-opencl.so.1"), 0o755))
		}, true, "not a regular file"},
		// Run as an unprivileged user (root reads a file of mode 0).
		{"unreadable library", true, func(t *testing.T, d string) {
			p := filepath.Join(d, "libnvidia-encode.so.1")
			fixtures.FakeStub(t, d, "libnvidia-encode.so.1", "amd64")
			fixtures.Must(t, os.Chmod(p, 0))
		}, true, "permission denied"},
		{"10 000 unrelated files", true, func(t *testing.T, d string) {
			for i := range 10000 {
				fixtures.Must(t, os.WriteFile(filepath.Join(d, fmt.Sprintf("libunrelated%d.so.1", i)), nil, 0o644))
			}
		}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.HasPrefix(tt.name, "10 000") {
				fixtures.SkipShort(t, "the 10 000-file directory")
			}
			if strings.HasPrefix(tt.name, "unreadable") && !fixtures.AsNonRoot(t) {
				return
			}
			dir := t.TempDir()
			if tt.good {
				fixtures.FakeDriver(t, dir, v, "amd64")
			}
			tt.setup(t, dir)
			cache := t.TempDir()
			stdout, stderr, code := nixglhost(t, baseEnv(t, "DEBUG=1"), "--cache-dir", cache, "-d", dir, "--", "/bin/echo", "ran")
			if code != 0 || !strings.Contains(stdout, "ran") {
				t.Fatalf("exit %d, stdout %q: the program must still run\n%s", code, stdout, stderr)
			}
			if tt.inDebug != "" && !strings.Contains(stderr, tt.inDebug) {
				t.Errorf("DEBUG=1 does not report %q:\n%s", tt.inDebug, stderr)
			}
			ents, _ := os.ReadDir(cache)
			var entry string
			for _, e := range ents {
				if hostdrivers.IsKeyName(e.Name()) {
					entry = filepath.Join(cache, e.Name())
				}
			}
			_, err := os.Stat(filepath.Join(entry, "lib", "libcuda.so.1"))
			if got := entry != "" && err == nil; got != tt.wantCUDA {
				t.Errorf("libcuda.so.1 in the entry: %v, want %v (entry %q)", got, tt.wantCUDA, entry)
			}
			if entry != "" {
				m, err := hostdrivers.ReadManifest(entry)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range m.Files {
					if f.API == "" || strings.Contains(f.Base, "unrelated") {
						t.Errorf("entry holds %s", f.Base)
					}
				}
			}
		})
	}
}

// TestReadOnlyDriverDir: a driver on a read-only file system (as
// /usr/local/nvidia is on GPU clouds) is used as it is; nothing is written
// there. A read-only bind mount needs root and a mount namespace.
func TestReadOnlyDriverDir(t *testing.T) {
	dir := t.TempDir()
	fixtures.FakeDriver(t, dir, "535.261.03", "amd64")
	if os.Geteuid() != 0 {
		fixtures.Unavailable(t, "a read-only bind mount needs root")
	}
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		fixtures.Unavailable(t, "bind mount: %v", err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		fixtures.Unavailable(t, "read-only remount: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o644); err == nil {
		t.Fatal("the bind mount is writable")
	}
	out, errOut, code := nixglhost(t, baseEnv(t), "--cache-dir", t.TempDir(), "-d", dir, "-p")
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "/lib") {
		t.Errorf("read-only driver dir: exit %d, %q\n%s", code, out, errOut)
	}
}

// TestUnreadableAsUser runs nixglhost as an unprivileged user (root can
// read anything, so the EACCES cases need one): an unreadable driver file
// and an unreadable driver directory are skipped with a reason, the good
// driver is still used, and the program runs.
func TestUnreadableAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		fixtures.Unavailable(t, "switching to an unprivileged user needs root")
	}
	const uid, gid = 65534, 65534 // nobody, nogroup
	base, err := os.MkdirTemp("", "nxuser")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	fixtures.Must(t, os.Chmod(base, 0o755))
	self := testBinary(t)
	bin := filepath.Join(base, "nixglhost.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	fixtures.Must(t, os.WriteFile(bin, b, 0o755))
	drv := filepath.Join(base, "drv")
	fixtures.FakeDriver(t, drv, "535.261.03", "amd64")
	filepath.Walk(drv, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink == 0 {
			fixtures.Must(t, os.Chmod(p, fi.Mode().Perm()|0o055))
		}
		return nil
	})
	// An unreadable DSO with a driver name of its own, and an unreadable dir.
	fixtures.FakeStub(t, drv, "libnvidia-encode.so.1", "amd64")
	fixtures.Must(t, os.Chmod(filepath.Join(drv, "libnvidia-encode.so.1"), 0o600))
	locked := filepath.Join(base, "locked")
	fixtures.Must(t, os.Mkdir(locked, 0o700))
	home := filepath.Join(base, "home")
	fixtures.Must(t, os.Mkdir(home, 0o700))
	fixtures.Must(t, os.Chown(home, uid, gid))

	cmd := exec.Command(bin, "-d", drv, "-d", locked, "--", "/bin/echo", "ran")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "DEBUG=1", asMainEnv + "=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	stderr := errb.String()
	if err != nil {
		t.Fatalf("as an unprivileged user: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, locked) || !strings.Contains(stderr, "permission denied") {
		t.Errorf("the unreadable directory %s is not reported under DEBUG=1:\n%s", locked, stderr)
	}
	if !strings.Contains(string(out), "ran") {
		t.Errorf("the program did not run: %q\n%s", out, stderr)
	}
	if !strings.Contains(stderr, "libnvidia-encode.so.1") || !strings.Contains(stderr, "permission denied") {
		t.Errorf("the unreadable libnvidia-encode.so.1 is not reported under DEBUG=1:\n%s", stderr)
	}
	entries, _ := filepath.Glob(filepath.Join(home, ".cache", "nixglhost", "*", "lib", "libcuda.so.1"))
	if len(entries) != 1 {
		t.Errorf("no entry with libcuda.so.1 in the user's cache: %v", entries)
	}
}

// TestWrongArchitectureSaid: a -d whose driver is for another architecture
// than the program's is named at launch, with the reason, instead of a
// silent run (an arm64 driver for an amd64 program used to give an entry
// holding only nvoptix.bin, and -p exit 0) or a bare "no NVIDIA driver
// found" (a 64-bit driver for a 32-bit program).
func TestWrongArchitectureSaid(t *testing.T) {
	root := t.TempDir()
	fixtures.FakeDriver(t, filepath.Join(root, "arm"), "535.261.03", "arm64")
	fixtures.Must(t, os.WriteFile(filepath.Join(root, "arm", "nvoptix.bin"), []byte("optix data"), 0o644))
	fixtures.FakeDriver(t, filepath.Join(root, "x64"), "535.261.03", "amd64")
	prog32 := filepath.Join(t.TempDir(), "prog32")
	fixtures.Must(t, os.WriteFile(prog32, archrun.TinyProgram("386", 0), 0o755))
	tests := []struct {
		name, dir string
		prog      []string
		want      string
	}{
		{"arm64 driver, amd64 program", "/arm", nil, "ELFCLASS64 EM_X86_64 programs"},
		{"amd64 driver, i386 program", "/x64", []string{prog32}, "ELFCLASS32 EM_386 programs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--driver-root", root, "--cache-dir", t.TempDir(), "-d", tt.dir, "-p"}, tt.prog...)
			out, errOut, code := nixglhost(t, baseEnv(t), args...)
			if code == 0 || out != "" || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "another architecture") || !strings.Contains(errOut, tt.dir+"/") {
				t.Errorf("-p: exit %d, stdout %q, stderr %q: want a refusal saying the driver in %s is for another architecture than %s", code, out, errOut, tt.dir, tt.want)
			}
		})
	}
}
