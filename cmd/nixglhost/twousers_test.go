package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// Two unprivileged users of one machine; uids that no account uses.
const victimUID, attackerUID = 64101, 64102

// sharedMachine is a root-owned directory every user can read, holding a
// copy of the test binary, a fake driver readable by all, and a sticky,
// world-writable temporary directory like /tmp.
type sharedMachine struct {
	base, bin, drv, tmp string
}

func newSharedMachine(t *testing.T) *sharedMachine {
	t.Helper()
	if os.Geteuid() != 0 {
		fixtures.Unavailable(t, "running as two unprivileged users needs root")
	}
	base, err := os.MkdirTemp("", "nxtwo")
	fixtures.Must(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	fixtures.Must(t, os.Chmod(base, 0o755))
	m := &sharedMachine{base: base, bin: filepath.Join(base, "nixglhost.test"), drv: filepath.Join(base, "drv"), tmp: filepath.Join(base, "tmp")}
	b, err := os.ReadFile(testBinary(t))
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(m.bin, b, 0o755))
	fixtures.FakeDriver(t, m.drv, "535.261.03", "amd64")
	fixtures.Must(t, filepath.Walk(m.drv, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink == 0 {
			return os.Chmod(p, fi.Mode().Perm()|0o055)
		}
		return err
	}))
	fixtures.Must(t, os.Mkdir(m.tmp, 0o755))
	fixtures.Must(t, os.Chmod(m.tmp, 0o777|os.ModeSticky))
	return m
}

// dirOf makes a directory under base owned by uid, with mode.
func (m *sharedMachine) dirOf(t *testing.T, name string, uid int, mode os.FileMode) string {
	t.Helper()
	d := filepath.Join(m.base, name)
	fixtures.Must(t, os.Mkdir(d, mode))
	fixtures.Must(t, os.Chmod(d, mode))
	fixtures.Must(t, os.Chown(d, uid, uid))
	return d
}

// attackerEntry builds, as the attacker, the entry every user's launch
// computes for m's driver, in a directory of theirs that they then make
// readable by all (the attacker wants the victim to read it).
func (m *sharedMachine) attackerEntry(t *testing.T) string {
	t.Helper()
	att := m.dirOf(t, "attacker-cache", attackerUID, 0o755)
	if out, errOut, err := m.run(attackerUID, []string{"HOME=" + att}, "--cache-dir", att, "-d", m.drv, "-p"); err != nil {
		t.Fatalf("attacker's build: %v %s\n%s", err, out, errOut)
	}
	fixtures.Must(t, filepath.Walk(att, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink == 0 {
			return os.Chmod(p, fi.Mode().Perm()|0o055)
		}
		return err
	}))
	return att
}

// run runs nixglhost as uid with env (PATH and TMPDIR added).
func (m *sharedMachine) run(uid int, env []string, args ...string) (string, string, error) {
	cmd := exec.Command(m.bin, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "TMPDIR=" + m.tmp, asMainEnv + "=1"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return string(out), stderr.String(), err
}

// attack runs move in a loop, 50 µs apart, until the returned function is
// called; that function waits for the loop to end and returns how many
// moves succeeded.
func attack(move func() bool) (stop func() int64) {
	var done atomic.Bool
	var n atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			if move() {
				n.Add(1)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	return func() int64 {
		done.Store(true)
		wg.Wait()
		return n.Load()
	}
}

// ownerOf returns path's owner, or -1 when it cannot be read.
func ownerOf(path string) int {
	fi, err := os.Lstat(path)
	if err != nil {
		return -1
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

// TestTmpFallbackRace replays the review's cross-user attack on the /tmp
// fallback. The attacker builds, as themselves, the entry every user's
// launch computes for this driver, and moves the directory holding it in
// and out of TMPDIR/nixglhost-<victim uid> in a loop (allowed in a sticky
// directory: it is theirs), while the victim launches. An attacker win is
// a victim launch that printed a library directory the victim does not own.
// Before, 3 of 49 launches ran the attacker's libcuda with HOME writable
// and 5 of 43 with HOME unwritable; the pass condition is zero wins.
func TestTmpFallbackRace(t *testing.T) {
	fixtures.SkipShort(t, "the two-user race")
	for _, tc := range []struct {
		name         string
		homeWritable bool
	}{{"HOME writable", true}, {"HOME unwritable", false}} {
		t.Run(tc.name, func(t *testing.T) {
			m := newSharedMachine(t)
			// The attacker's entry, built by the attacker.
			att := m.attackerEntry(t)
			parked := filepath.Join(m.tmp, ".parked")
			fixtures.Must(t, os.Rename(att, parked))
			target := filepath.Join(m.tmp, fmt.Sprintf("nixglhost-%d", victimUID))

			// The attacker's loop never replaces anything (as the sticky
			// bit would forbid the attacker).
			stop := attack(func() bool {
				if unix.Renameat2(unix.AT_FDCWD, parked, unix.AT_FDCWD, target, unix.RENAME_NOREPLACE) != nil {
					return false
				}
				time.Sleep(50 * time.Microsecond)
				unix.Renameat2(unix.AT_FDCWD, target, unix.AT_FDCWD, parked, unix.RENAME_NOREPLACE)
				return true
			})

			deadline := time.Now().Add(4 * time.Second)
			var launches, wins, failures int
			for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
				home := m.dirOf(t, fmt.Sprintf("victim-home-%d", i), victimUID, 0o755)
				if !tc.homeWritable {
					fixtures.Must(t, os.Chown(home, 0, 0))
				}
				out, _, err := m.run(victimUID, []string{"HOME=" + home}, "-d", m.drv, "-p")
				launches++
				lib := strings.TrimSpace(out)
				switch {
				case err != nil:
					failures++
				case ownerOf(filepath.Dir(lib)) != victimUID || !strings.HasPrefix(lib, home) && tc.homeWritable:
					wins++
					t.Errorf("launch %d used %s (owner uid %d)", i, lib, ownerOf(filepath.Dir(lib)))
				}
				// A victim directory in TMPDIR would end the race: remove it
				// so that every launch races again.
				if ownerOf(target) == victimUID {
					os.RemoveAll(target)
				}
				os.RemoveAll(home)
			}
			swaps := stop()
			t.Logf("%s: %d victim launches, %d attacker swaps, %d attacker wins, %d launches refused", tc.name, launches, swaps, wins, failures)
			if swaps == 0 {
				t.Error("the attacker never swapped: the race was not run")
			}
			if tc.homeWritable && failures != 0 {
				t.Errorf("%d launches failed with a writable HOME", failures)
			}
		})
	}
}

// TestSwappedCacheDir replays the review's hot-path attack: XDG_CACHE_HOME
// inside a group-writable directory, and another member of the group
// exchanging the checked cache directory with their own. Such a cache
// directory is now refused outright (its parent is writable by others),
// so every launch goes to the next root; none uses the attacker's entry.
func TestSwappedCacheDir(t *testing.T) {
	fixtures.SkipShort(t, "the two-user race")
	m := newSharedMachine(t)
	group := m.dirOf(t, "project", victimUID, 0o775)
	xdg := filepath.Join(group, "xdg")
	fixtures.Must(t, os.Mkdir(xdg, 0o755))
	fixtures.Must(t, os.Chown(xdg, victimUID, victimUID))
	att := m.attackerEntry(t)
	evil := filepath.Join(group, "evil")
	fixtures.Must(t, os.Rename(att, evil))
	cache := filepath.Join(xdg, "nixglhost")
	// The group member exchanges the two names (renameat2 EXCHANGE).
	stop := attack(func() bool {
		return unix.Renameat2(unix.AT_FDCWD, xdg, unix.AT_FDCWD, evil, unix.RENAME_EXCHANGE) == nil
	})
	home := m.dirOf(t, "victim-home", victimUID, 0o755)
	var launches, wins int
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		out, errOut, err := m.run(victimUID, []string{"HOME=" + home, "XDG_CACHE_HOME=" + xdg}, "-d", m.drv, "-p")
		launches++
		if err != nil {
			t.Fatalf("launch %d: %v\n%s", i, err, errOut)
		}
		lib := strings.TrimSpace(out)
		if strings.HasPrefix(lib, group) || ownerOf(filepath.Dir(lib)) != victimUID {
			wins++
			t.Errorf("launch %d used %s", i, lib)
		}
		if i == 0 && !strings.Contains(errOut, "writable by others") {
			t.Errorf("no warning about the group-writable parent:\n%s", errOut)
		}
	}
	t.Logf("%d victim launches, %d exchanges, %d attacker wins", launches, stop(), wins)
	if _, err := os.Lstat(cache); err == nil || !errors.Is(err, fs.ErrNotExist) {
		if ownerOf(cache) == victimUID {
			t.Errorf("the victim built in %s, below a directory others can write", cache)
		}
	}
}

// TestMissingParentRace replays the second review's attack on a cache root
// whose parent does not exist yet (XDG_CACHE_HOME=/tmp/<dir>/cache, <dir>
// gone after a reboot): the attacker creates <dir> mode 0777 in the sticky
// temporary directory, in a loop, and a victim launch that creates its
// cache below it would use a path the attacker can rename at will. Before,
// the ancestor check passed the missing parent and MkdirAll then took the
// attacker's: 6 of 300 launches ran the attacker's libcuda. A win here is
// a launch whose printed library directory has an ancestor the victim does
// not own; the pass condition is zero wins.
func TestMissingParentRace(t *testing.T) {
	fixtures.SkipShort(t, "the two-user race")
	m := newSharedMachine(t)
	parent := filepath.Join(m.tmp, "job-1234")
	xdg := filepath.Join(parent, "cache")
	stop := attack(func() bool {
		if os.Mkdir(parent, 0o777) != nil {
			return false
		}
		os.Chown(parent, attackerUID, attackerUID)
		os.Chmod(parent, 0o777)
		return true
	})
	var launches, wins, refusals int
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		home := m.dirOf(t, fmt.Sprintf("victim-home-%d", i), victimUID, 0o755)
		out, errOut, err := m.run(victimUID, []string{"HOME=" + home, "XDG_CACHE_HOME=" + xdg}, "-d", m.drv, "-p")
		launches++
		if err != nil {
			t.Fatalf("launch %d: %v\n%s", i, err, errOut)
		}
		lib := strings.TrimSpace(out)
		if strings.Contains(errOut, parent) {
			refusals++
		}
		for d := filepath.Dir(lib); strings.HasPrefix(d, m.tmp+"/"); d = filepath.Dir(d) {
			if ownerOf(d) != victimUID {
				wins++
				t.Errorf("launch %d used %s, below %s (owner uid %d)", i, lib, d, ownerOf(d))
				break
			}
		}
		// Start every launch from a missing parent again.
		os.RemoveAll(parent)
		os.RemoveAll(home)
	}
	swaps := stop()
	t.Logf("%d victim launches, %d attacker creations, %d attacker wins, %d launches told of the refused parent", launches, swaps, wins, refusals)
	if swaps == 0 || refusals == 0 {
		t.Errorf("the race was not run: %d creations, %d refusals", swaps, refusals)
	}
}
