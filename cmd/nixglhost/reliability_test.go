package main

import (
	"github.com/google/go-cmp/cmp"

	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// lineTimeout bounds the wait for a line a child promises: a generous
// limit for a loaded 2-core machine, reached only when the child hangs.
const lineTimeout = 60 * time.Second

// readLine reads one line from r, giving up after d. On a timeout the
// reading goroutine stays blocked until the caller kills the child, which
// closes the pipe; the caller does so before failing.
func readLine(r *bufio.Reader, d time.Duration) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := r.ReadString('\n')
		ch <- result{line, err}
	}()
	select {
	case res := <-ch:
		return res.line, res.err
	case <-time.After(d):
		return "", fmt.Errorf("no line within %v", d)
	}
}

// TestCrashMidBuild kills the builder with SIGKILL at each step of a cold
// build: no entry a later launch would use is left, and the later launch
// cleans up the abandoned temporary directory and builds a good entry.
func TestCrashMidBuild(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	self := testBinary(t)
	for _, step := range []string{"tmpdir", "links", "patched", "data", "rename"} {
		t.Run(step, func(t *testing.T) {
			cache := t.TempDir()
			cmd := execSelf(t, self, baseEnv(t, pauseEnv+"="+step), "--cache-dir", cache, "-d", drv, "-p")
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := readLine(bufio.NewReader(stderr), lineTimeout)
			if err != nil || !strings.Contains(line, "paused at "+step) {
				cmd.Process.Kill()
				t.Fatalf("builder did not pause at %s: %q %v", step, line, err)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			go io.Copy(io.Discard, stderr)
			ents, _ := os.ReadDir(cache)
			for _, e := range ents {
				if hostdrivers.IsKeyName(e.Name()) {
					t.Errorf("killed at %s, an entry %s is in place", step, e.Name())
				}
			}
			out, errOut, code := nixglhost(t, baseEnv(t), "--cache-dir", cache, "-d", drv, "-p")
			if code != 0 {
				t.Fatalf("launch after the crash: exit %d: %s", code, errOut)
			}
			if _, err := hostdrivers.ReadManifest(filepath.Dir(strings.TrimSpace(out))); err != nil {
				t.Errorf("entry after the crash: %v", err)
			}
			if left, _ := filepath.Glob(filepath.Join(cache, ".tmp-*")); len(left) != 0 {
				t.Errorf("abandoned build directories not cleaned up: %v", left)
			}
		})
	}
}

func TestCacheRootPermissions(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	home := t.TempDir()
	def := filepath.Join(home, ".cache", "nixglhost")
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + home}

	// Created 0700.
	if _, errOut, code := nixglhost(t, env, "-d", drv, "-p"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if fi, err := os.Stat(def); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache root %s: %v, mode %v, want 0700", def, err, fi.Mode())
	}

	// World-writable: refused, with a message naming it and the fix; the
	// launch falls back to the runtime directory.
	fixtures.Must(t, os.Chmod(def, 0o777))
	runtime := t.TempDir()
	fixtures.Must(t, os.Chmod(runtime, 0o700))
	out, errOut, code := nixglhost(t, append(env, "XDG_RUNTIME_DIR="+runtime, "DEBUG=1"), "-d", drv, "-p")
	if code != 0 || !strings.HasPrefix(out, filepath.Join(runtime, "nixglhost")) {
		t.Errorf("world-writable cache root: exit %d, entry %q; want the fallback under %s\n%s", code, out, runtime, errOut)
	}
	if !strings.Contains(errOut, "writable by others") || !strings.Contains(errOut, def) {
		t.Errorf("no message naming %s as writable by others:\n%s", def, errOut)
	}

	// A symlink planted as the cache root: refused, never followed.
	fixtures.Must(t, os.RemoveAll(def))
	elsewhere := t.TempDir()
	fixtures.Must(t, os.Symlink(elsewhere, def))
	_, errOut, code = nixglhost(t, []string{"PATH=/usr/bin:/bin", "HOME=" + home, "TMPDIR=" + t.TempDir(), "DEBUG=1"}, "-d", drv, "-p")
	if code != 0 || !strings.Contains(errOut, "is a symbolic link") {
		t.Errorf("symlinked cache root: exit %d\n%s", code, errOut)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("nixglhost wrote through the planted symlink into %s", elsewhere)
	}
}

// TestCacheDirUnusable: a --cache-dir that cannot be made is a clear
// failure naming the directory in the way, the cause and the fix (as a
// user, a read-only parent was "%!w(<nil>)": no cause at all). The read-only parent runs
// as an unprivileged user (root writes into a directory of mode 0500).
func TestCacheDirUnusable(t *testing.T) {
	tests := []struct {
		name   string
		asUser bool
		parent func(t *testing.T) string
		cause  string
	}{
		{"read-only parent", true, func(t *testing.T) string {
			ro := t.TempDir()
			fixtures.Must(t, os.Chmod(ro, 0o500))
			return ro
		}, "permission denied"},
		{"a file as parent", false, func(t *testing.T) string {
			return fixtures.Write(t, filepath.Join(t.TempDir(), "file"), "")
		}, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.asUser && !fixtures.AsNonRoot(t) {
				return
			}
			drv := fakeDriverDir(t, "535.261.03")
			parent := tt.parent(t)
			_, errOut, code := nixglhost(t, []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, "--cache-dir", filepath.Join(parent, "c"), "-d", drv, "-p")
			for _, want := range []string{parent, tt.cause, "--cache-dir"} {
				if code != 1 || !strings.Contains(errOut, want) {
					t.Errorf("exit %d, want 1 and a message with %q:\n%s", code, want, errOut)
				}
			}
		})
	}
}

func TestPlantedSymlinkInEntry(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	cache := t.TempDir()
	out, _, _ := nixglhost(t, baseEnv(t), "--cache-dir", cache, "-d", drv, "-p")
	entry := filepath.Dir(strings.TrimSpace(out))
	// Replace the manifest with a symlink to an attacker's file.
	evil := filepath.Join(t.TempDir(), "manifest.json")
	b, err := os.ReadFile(filepath.Join(entry, "manifest.json"))
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(evil, b, 0o644))
	fixtures.Must(t, os.Remove(filepath.Join(entry, "manifest.json")))
	fixtures.Must(t, os.Symlink(evil, filepath.Join(entry, "manifest.json")))
	// The entry no longer proves itself ours (its manifest is a link):
	// it is neither used nor removed, and the launch says what is in
	// the way.
	before := fixtures.Snapshot(t, entry)
	_, errOut, code := nixglhost(t, baseEnv(t, "DEBUG=1"), "--cache-dir", cache, "-d", drv, "-p")
	if code == 0 || !strings.Contains(errOut, "symbolic link") || !strings.Contains(errOut, entry) {
		t.Errorf("exit %d; want a refusal naming %s and the planted manifest link:\n%s", code, entry, errOut)
	}
	if diff := cmp.Diff(before, fixtures.Snapshot(t, entry)); diff != "" {
		t.Errorf("the entry changed (-before +after):\n%s", diff)
	}
}

// TestSignalsReachProgram: nixglhost execs, so SIGTERM sent to the pid it
// was started as reaches the program's own handler.
func TestSignalsReachProgram(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	self := testBinary(t)
	cmd := execSelf(t, self, baseEnv(t), "--cache-dir", t.TempDir(), "-d", drv, "--",
		"/bin/sh", "-c", `trap 'echo got-TERM; exit 42' TERM; echo ready; while :; do sleep 0.01; done`)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	if line, err := readLine(r, lineTimeout); line != "ready\n" {
		cmd.Process.Kill()
		t.Fatalf("program did not start: %q %v", line, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	var rest []byte
	go func() {
		// Read to the end before Wait, which closes the pipe.
		rest, _ = io.ReadAll(r)
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 42 || !strings.Contains(string(rest), "got-TERM") {
			t.Errorf("after SIGTERM: %v, output %q; want the program's handler and exit 42", err, rest)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("program did not exit after SIGTERM")
	}
}

// TestOldEntriesRemoved: after a driver upgrade the old entry stays while a
// job started before it may still use it, and goes once it is older than a
// day, at the next cold build.
func TestOldEntriesRemoved(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	cache := t.TempDir()
	launch := func() string { return filepath.Dir(entryLib(t, cache, drv)) }
	upgrade := func() { upgradeDriver(t, drv) }
	a := launch()
	upgrade()
	b := launch()
	if _, err := os.Stat(a); err != nil {
		t.Fatalf("the entry of the old driver went at once: %v", err)
	}
	// A day and more later, the next cold build removes it.
	old := time.Now().Add(-49 * time.Hour)
	os.Chtimes(a, old, old)
	upgrade()
	c := launch()
	if _, err := os.Stat(a); err == nil {
		t.Errorf("the entry %s of a replaced driver, two days old, is still there", a)
	}
	for _, keep := range []string{b, c} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("a recent entry %s was removed: %v", keep, err)
		}
	}
}

// TestSharedHomeOtherMachinesEntries: on a home directory shared by many
// nodes, an entry another machine built is not judged by this one's files:
// it stays while a job there may use it, and goes only when very old.
func TestSharedHomeOtherMachinesEntries(t *testing.T) {
	drv := fakeDriverDir(t, "535.261.03")
	cache := t.TempDir()
	foreign := filepath.Dir(entryLib(t, cache, drv))
	// Make it another machine's: its manifest names another host.
	mp := filepath.Join(foreign, "manifest.json")
	b, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["host"] = "another_node"
	b, _ = json.Marshal(m)
	fixtures.Must(t, os.WriteFile(mp, b, 0o644))
	old := time.Now().Add(-72 * time.Hour)
	os.Chtimes(foreign, old, old)
	upgradeDriver(t, drv) // this machine builds a new entry, and collects
	entryLib(t, cache, drv)
	if _, err := os.Stat(foreign); err != nil {
		t.Fatalf("another machine's three-day-old entry was removed: %v", err)
	}
	older := time.Now().Add(-31 * 24 * time.Hour)
	os.Chtimes(foreign, older, older)
	upgradeDriver(t, drv)
	entryLib(t, cache, drv)
	if _, err := os.Stat(foreign); err == nil {
		t.Errorf("another machine's month-old entry is still there")
	}
}

// entryRename matches strace's line for the rename of a temporary build
// directory (.tmp-KEY-...) itself, not of a file inside it.
var entryRename = regexp.MustCompile(`rename[a-z0-9]*\((?:AT_FDCWD, )?"[^"]*/\.tmp-[^"/]*",`)

// TestDurableBeforeRename: a cold build fsyncs the entry's files and
// directories before the rename that publishes it, so that after a power
// cut the hot path never trusts a renamed entry with empty files
// (strace's account of the system calls).
func TestDurableBeforeRename(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		fixtures.Unavailable(t, "strace not installed: %v", err)
	}
	drv := fakeDriverDir(t, "535.261.03")
	cache := t.TempDir()
	trace := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-o", trace, "-e", "trace=fsync,rename,renameat,renameat2", testBinary(t), "--cache-dir", cache, "-d", drv, "-p")
	cmd.Env = append(baseEnv(t), asMainEnv+"=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "ptrace") {
			fixtures.Unavailable(t, "strace cannot trace here: %s", out)
		}
		t.Fatalf("strace nixglhost: %v\n%s", err, out)
	}
	b, err := os.ReadFile(trace)
	fixtures.Must(t, err)
	fsyncs := 0
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(l, "fsync(") && strings.Contains(l, "= 0"):
			fsyncs++
		case entryRename.MatchString(l):
			// The entry's rename: lib, deps, the entry directory and the
			// manifest at least must be on disk by now.
			if fsyncs < 4 {
				t.Errorf("%d fsyncs before the entry's rename, want at least 4:\n%s", fsyncs, b)
			}
			return
		}
	}
	t.Fatalf("no rename of the entry in the trace:\n%s", b)
}
