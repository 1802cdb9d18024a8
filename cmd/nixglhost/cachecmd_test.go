package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/internal/sysentry"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// runMain1 runs main1 in this process with env and returns its stdout,
// stderr and exit status (the cache commands and -p never exec).
func runMain1(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := main1(append([]string{"nixglhost"}, args...), nil, &stdout, &stderr, env)
	return stdout.String(), stderr.String(), code
}

// TestCacheFlagsRefused: a cache command with another mode, a PROGRAM,
// -d or another cache command is a usage error (exit 2) that names what
// conflicts; --json goes with every cache command.
func TestCacheFlagsRefused(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--cache-gc", "-p"}, "-p and --cache-gc exclude each other"},
		{[]string{"--cache-list", "--doctor"}, "--doctor and --cache-list exclude each other"},
		{[]string{"--cache-clear", "--", "prog"}, `--cache-clear takes no PROGRAM (got "prog")`},
		{[]string{"--cache-gc", "--cache-clear"}, "exclude each other"},
		{[]string{"--cache-clear", "--link-run-opengl-driver"}, "--link-run-opengl-driver and --cache-clear exclude each other"},
		{[]string{"--cache-list", "--nix-pre-build-hook", "x.drv"}, "--nix-pre-build-hook and --cache-list exclude each other"},
		{[]string{"--cache-list", "-d", "/drv"}, "-d does not go with --cache-list"},
		{[]string{"--cache-gc", "--run-dir", "/x"}, "--run-dir goes with"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := runMain1(t, baseEnv(t), tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
		})
	}
	for _, args := range [][]string{{"--cache-list", "--json"}, {"--cache-gc", "--json"}, {"--cache-clear", "--json", "--cache-dir", "/x"}} {
		if c, err := parseArgs(args); err != nil || !c.cacheCommand() || !c.json {
			t.Errorf("parseArgs(%q) = %+v, %v", args, c, err)
		}
	}
}

// cacheJSON is the part of the cache commands' JSON the tests read.
type cacheJSON struct {
	Caches []struct {
		Kind    string
		Root    string
		Error   string
		Entries []hostdrivers.EntryInfo
		Removed []hostdrivers.Leftover
		Kept    []hostdrivers.Leftover
		Others  []hostdrivers.Leftover
	}
}

// TestCacheCommands drives --cache-list, --cache-gc and --cache-clear
// through main1 on a cache with a current entry, a stale one (its driver
// upgraded two days ago) and foreign files with our name shapes: the list
// names both entries, their mode and state, and what the collector would
// take; --cache-gc removes the stale one and says why, then says there is
// nothing to collect; --cache-clear removes the other and names what it
// leaves; every foreign path survives byte for byte and CACHEDIR.TAG
// stays. A directory without our tag is refused, unchanged; a missing one
// is said to hold no cache.
func TestCacheCommands(t *testing.T) {
	env := baseEnv(t)
	cache := filepath.Join(t.TempDir(), "cache")
	current := filepath.Dir(entryLib(t, cache, fakeDriverDir(t, "535.261.03")))
	upgraded := fakeDriverDir(t, "535.261.03")
	stale := filepath.Dir(entryLib(t, cache, upgraded))
	upgradeDriver(t, upgraded)
	old := time.Now().Add(-48 * time.Hour)
	fixtures.Must(t, os.Chtimes(stale, old, old))
	foreign := map[string]string{
		"photos/a.jpg":                                          "x\n",
		strings.Repeat("0", 32) + "/data":                       "mine\n",
		".lock-" + strings.Repeat("9", 32):                      "my notes\n",
		".index-" + strings.Repeat("7", 24):                     "not an index\n",
		".trash-" + strings.Repeat("8", 32) + "-1/photos/b.jpg": "y\n",
	}
	for p, content := range foreign {
		fixtures.Write(t, filepath.Join(cache, p), content)
	}
	snapshot := func() map[string]string {
		out := map[string]string{}
		for p := range foreign {
			top := strings.Split(p, "/")[0]
			for k, v := range fixtures.Snapshot(t, filepath.Join(cache, top)) {
				out[filepath.Join(top, k)] = v
			}
		}
		return out
	}
	before := snapshot()
	args := func(extra ...string) []string { return append([]string{"--cache-dir", cache}, extra...) }

	stdout, stderr, code := runMain1(t, env, args("--cache-list")...)
	if code != 0 {
		t.Fatalf("--cache-list: exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		cache + ": 2 entries",
		filepath.Base(current) + "  535.261.03", "wrapper", "current", "stale",
		"--cache-gc would remove it: its host driver files changed",
		"LAST USED is the files' access time",
		"not nixglhost's, left alone: photos (not a name nixglhost gives what it makes)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--cache-list does not say %q:\n%s", want, stdout)
		}
	}
	stdout, stderr, code = runMain1(t, env, args("--cache-list", "--json")...)
	var list cacheJSON
	if code != 0 || json.Unmarshal([]byte(stdout), &list) != nil || len(list.Caches) != 1 ||
		list.Caches[0].Root != cache || list.Caches[0].Kind != "cache-dir" {
		t.Fatalf("--cache-list --json: exit %d: %s\n%s", code, stderr, stdout)
	}
	states := map[string]hostdrivers.EntryState{}
	for _, e := range list.Caches[0].Entries {
		states[e.Path] = e.State
		if e.Mode != hostdrivers.EntryWrapper || e.Size <= 0 {
			t.Errorf("%s: mode %q, size %d", e.Key, e.Mode, e.Size)
		}
	}
	if diff := cmp.Diff(map[string]hostdrivers.EntryState{current: hostdrivers.StateCurrent, stale: hostdrivers.StateStale}, states); diff != "" {
		t.Errorf("--cache-list --json states (-want +got):\n%s", diff)
	}
	if n := len(list.Caches[0].Others); n != len(foreign) {
		t.Errorf("--cache-list --json names %d foreign paths, want %d", n, len(foreign))
	}

	stdout, stderr, code = runMain1(t, env, args("--cache-gc")...)
	if code != 0 || !strings.Contains(stdout, "removed "+stale+": its host driver files changed or are gone") {
		t.Errorf("--cache-gc: exit %d: %s\n%s", code, stderr, stdout)
	}
	if _, err := os.Lstat(stale); err == nil {
		t.Errorf("%s is still there after --cache-gc", stale)
	}
	stdout, _, code = runMain1(t, env, args("--cache-gc")...)
	if code != 0 || !strings.Contains(stdout, "nothing to collect") {
		t.Errorf("second --cache-gc: exit %d:\n%s", code, stdout)
	}

	stdout, stderr, code = runMain1(t, env, args("--cache-clear")...)
	if code != 0 {
		t.Fatalf("--cache-clear: exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"removed " + current + ": a cache entry (driver 535.261.03, wrapper, ",
		"left alone " + filepath.Join(cache, "photos") + ": not nixglhost's",
		cache + ": removed 1 entry (",
		"CACHEDIR.TAG stays",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--cache-clear does not say %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Lstat(current); err == nil {
		t.Errorf("%s is still there after --cache-clear", current)
	}
	if !hostdrivers.IsMarkedRoot(cache) {
		t.Errorf("%s lost its tag", cache)
	}
	if diff := cmp.Diff(before, snapshot()); diff != "" {
		t.Errorf("foreign paths changed (-before +after):\n%s", diff)
	}

	// A user's directory given by mistake: refused, nothing changed.
	mine := t.TempDir()
	fixtures.Must(t, os.Chmod(mine, 0o700))
	fixtures.Write(t, filepath.Join(mine, "projects", "notes"), "mine\n")
	snap := fixtures.Snapshot(t, mine)
	for _, cmd := range []string{"--cache-clear", "--cache-gc"} {
		_, stderr, code = runMain1(t, env, "--cache-dir", mine, cmd)
		if code != 1 || !strings.Contains(stderr, mine+" is not marked as a nixglhost cache") {
			t.Errorf("%s on %s: exit %d, %q; want 1 and a refusal naming it", cmd, mine, code, stderr)
		}
	}
	if diff := cmp.Diff(snap, fixtures.Snapshot(t, mine)); diff != "" {
		t.Errorf("refused directory changed (-before +after):\n%s", diff)
	}
	nowhere := filepath.Join(t.TempDir(), "none")
	for _, cmd := range []string{"--cache-list", "--cache-gc", "--cache-clear"} {
		stdout, stderr, code = runMain1(t, env, "--cache-dir", nowhere, cmd)
		if code != 0 || !strings.Contains(stdout, nowhere+": no cache here") {
			t.Errorf("%s on a missing directory: exit %d, %q, %q", cmd, code, stdout, stderr)
		}
	}
}

// TestCacheClearSystemLinked: the entry system mode linked at
// RUN/opengl-driver is listed as self-contained and in use, and
// --cache-clear keeps it, saying why, while the link still leads to a
// complete entry; once unlinked it is cleared. System mode's lock and
// record stay.
func TestCacheClearSystemLinked(t *testing.T) {
	s := newSysRoot(t)
	fixtures.FakeDriver(t, filepath.Join(s.root, "drv"), "535.261.03", "amd64")
	env := baseEnv(t)
	if _, stderr, code := runMain1(t, env, s.args("-d", "/drv", "--link-run-opengl-driver")...); code != 0 {
		t.Fatalf("--link-run-opengl-driver: exit %d: %s", code, stderr)
	}
	entry := s.linkTarget(t)
	stdout, stderr, code := runMain1(t, env, "--cache-dir", s.cache, "--cache-list")
	for _, want := range []string{"self-contained", "seen at " + s.link, "in use: " + s.link + " points to it"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("--cache-list: exit %d, %s; does not say %q:\n%s", code, stderr, want, stdout)
		}
	}
	stdout, stderr, code = runMain1(t, env, "--cache-dir", s.cache, "--cache-clear")
	if code != 0 || !strings.Contains(stdout, "kept "+entry+": in use: "+s.link+" points to it") {
		t.Errorf("--cache-clear: exit %d, %s:\n%s", code, stderr, stdout)
	}
	s.linkTarget(t)
	system := map[string]string{}
	for _, n := range []string{sysentry.HistoryBase, lockBase} {
		system[n] = fixtures.Describe(t, filepath.Join(s.cache, n))
	}
	if _, stderr, code := runMain1(t, env, "--run-dir", s.run, "--cache-dir", s.cache, "--unlink-run-opengl-driver"); code != 0 {
		t.Fatalf("--unlink-run-opengl-driver: exit %d: %s", code, stderr)
	}
	stdout, stderr, code = runMain1(t, env, "--cache-dir", s.cache, "--cache-clear")
	if code != 0 || !strings.Contains(stdout, "removed "+entry+": a cache entry (driver 535.261.03, self-contained, ") {
		t.Errorf("--cache-clear after unlinking: exit %d, %s:\n%s", code, stderr, stdout)
	}
	for n, d := range system {
		if got := fixtures.Describe(t, filepath.Join(s.cache, n)); got != d {
			t.Errorf("%s: %s, was %s", n, got, d)
		}
	}
}

// TestCacheCommandRoots: the cache commands act on --cache-dir alone
// (named the system cache when it is /var/cache/nix-gl-host), else on the
// user's cache and the fallbacks a launch would use, and, as root, on the
// system cache too.
func TestCacheCommandRoots(t *testing.T) {
	home, tmp := t.TempDir(), t.TempDir()
	uid := strconv.Itoa(os.Geteuid())
	var system []cacheRoot
	if os.Geteuid() == 0 {
		system = []cacheRoot{{systemCacheDir, "system", true}}
	}
	tests := []struct {
		name     string
		cacheDir string
		env      []string
		want     []cacheRoot
	}{
		{"default", "", []string{"HOME=" + home, "TMPDIR=" + tmp, "XDG_RUNTIME_DIR=/run/user/7"}, append([]cacheRoot{
			{filepath.Join(home, ".cache", "nixglhost"), "user", true},
			{"/run/user/7/nixglhost", "fallback", false},
			{filepath.Join(tmp, "nixglhost-"+uid), "fallback", false},
		}, system...)},
		{"no home", "", []string{"TMPDIR=" + tmp}, append([]cacheRoot{
			{filepath.Join(tmp, "nixglhost-"+uid), "fallback", false},
		}, system...)},
		{"--cache-dir", home, nil, []cacheRoot{{home, "cache-dir", true}}},
		{"--cache-dir, the system cache", systemCacheDir, nil, []cacheRoot{{systemCacheDir, "system", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cacheCommandRoots(&config{cacheDir: tt.cacheDir}, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(cacheRoot{})); diff != "" {
				t.Errorf("roots (-want +got):\n%s", diff)
			}
		})
	}
}
