package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// releaseScript runs scripts/release.sh of the tree src with args, in the
// environment plus env, and returns its output and error.
func releaseScript(t *testing.T, src string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(src, "scripts", "release.sh"), args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// gitIn runs git in dir with a fixed identity.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// copyRepo copies the repository's tracked and untracked-but-not-ignored
// files (as the build sees them) into a new git repository with one
// commit, and returns it.
func copyRepo(t *testing.T) string {
	t.Helper()
	root := fixtures.RepoRoot()
	if _, err := exec.LookPath("git"); err != nil {
		fixtures.Unavailable(t, "git not installed: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "src")
	list, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		fixtures.Unavailable(t, "%s is not a git checkout: %v", root, err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or a link (.cache)
		}
		b, err := os.ReadFile(src)
		fixtures.Must(t, err)
		fixtures.Must(t, os.MkdirAll(filepath.Dir(filepath.Join(dst, name)), 0o755))
		fixtures.Must(t, os.WriteFile(filepath.Join(dst, name), b, fi.Mode().Perm()))
	}
	gitIn(t, dst, "init", "-q")
	gitIn(t, dst, "add", ".")
	gitIn(t, dst, "commit", "-q", "-m", "release test")
	return dst
}

// TestReleaseRefusesUntagged: make release VERSION=X.Y.Z (TAGGED=1) refuses,
// before building anything, a version that is not X.Y.Z, a tag that is
// missing or not HEAD, and a tree with changes.
func TestReleaseRefusesUntagged(t *testing.T) {
	src := copyRepo(t)
	gitIn(t, src, "tag", "-a", "v1.0.0", "-m", "v1.0.0")
	fixtures.Must(t, os.WriteFile(filepath.Join(src, "NEWS"), nil, 0o644))
	gitIn(t, src, "add", "NEWS")
	gitIn(t, src, "commit", "-q", "-m", "after the tag")
	gitIn(t, src, "tag", "-a", "v1.1.0", "-m", "v1.1.0")
	tests := []struct {
		name, version, want string
		dirty               bool
	}{
		{"not a release version", "1.1", "not a release version", false},
		{"a describe output", "1.0.0-1-gabcdef0-dirty", "no tag v1.0.0-1-gabcdef0-dirty", false},
		{"no tag", "2.0.0", "no tag v2.0.0", false},
		{"tag not HEAD", "1.0.0", "tag v1.0.0 is ", false},
		{"changed tree", "1.1.0", "the tree has changes", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.dirty {
				fixtures.Must(t, os.WriteFile(filepath.Join(src, "NEWS"), []byte("x"), 0o644))
				defer gitIn(t, src, "checkout", "--", "NEWS")
			}
			out := filepath.Join(t.TempDir(), "dist")
			got, err := releaseScript(t, src, []string{"TAGGED=1", "VERSION=" + tt.version, "COMMIT=", "ARCHES=amd64"}, "dist", out)
			if err == nil || !strings.Contains(got, tt.want) {
				t.Errorf("release.sh dist: %v, output %q; want a refusal with %q", err, got, tt.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was made: the refusal came after the build started", out)
			}
		})
	}
}

// TestRelease builds the release of a tag (amd64 only) and checks dist/:
// exactly the versioned binary, completions, man page, unit, install guide
// and SHA256SUMS; the binary's --version names the tag's version and
// commit; the unit runs /usr/local/bin/nixglhost; and the install guide's
// first block, run as written (prefix changed, sudo a no-op), installs a
// nixglhost that runs.
func TestRelease(t *testing.T) {
	fixtures.SkipShort(t, "the release build")
	if runtime.GOARCH != "amd64" {
		fixtures.Unavailable(t, "the release test builds linux/amd64 and runs it; this is %s", runtime.GOARCH)
	}
	src := copyRepo(t)
	gitIn(t, src, "tag", "-a", "v1.2.3", "-m", "v1.2.3")
	commit := gitIn(t, src, "rev-parse", "--short=12", "HEAD")
	dist := filepath.Join(t.TempDir(), "dist")
	// A file of someone else's in dist/: left alone, not summed.
	fixtures.Must(t, os.MkdirAll(dist, 0o755))
	fixtures.Must(t, os.WriteFile(filepath.Join(dist, "notes.txt"), []byte("mine"), 0o644))
	out, err := releaseScript(t, src, []string{"TAGGED=1", "VERSION=1.2.3", "COMMIT=" + commit, "ARCHES=amd64"}, "dist", dist)
	if err != nil {
		t.Fatalf("release.sh dist: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(dist)
	fixtures.Must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"INSTALL.md", "SHA256SUMS", "_nixglhost", "nixglhost-1.2.3-linux-amd64", "nixglhost-run-opengl-driver.service",
		"nixglhost.1", "nixglhost.bash", "nixglhost.fish", "notes.txt"}
	if d := cmp.Diff(want, names); d != "" {
		t.Errorf("dist/ (-want +got):\n%s", d)
	}
	if b, _ := os.ReadFile(filepath.Join(dist, "notes.txt")); string(b) != "mine" {
		t.Errorf("notes.txt changed: %q", b)
	}
	sums, _ := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if bytes.Contains(sums, []byte("notes.txt")) || len(strings.Split(strings.TrimSpace(string(sums)), "\n")) != len(want)-2 {
		t.Errorf("SHA256SUMS lists other than the release's files:\n%s", sums)
	}
	v, err := exec.Command(filepath.Join(dist, "nixglhost-1.2.3-linux-amd64"), "--version").Output()
	if err != nil || !strings.HasPrefix(string(v), "nixglhost 1.2.3 (commit "+commit+")\ngo1.") || !strings.Contains(string(v), "-trimpath") {
		t.Errorf("--version: %v, %q", err, v)
	}
	unit, _ := os.ReadFile(filepath.Join(dist, "nixglhost-run-opengl-driver.service"))
	if bytes.Contains(unit, []byte("@")) || !bytes.Contains(unit, []byte("\nExecStart=/usr/local/bin/nixglhost --link-run-opengl-driver\n")) {
		t.Errorf("the unit is not filled in for /usr/local/bin:\n%s", unit)
	}
	man, _ := os.ReadFile(filepath.Join(dist, "nixglhost.1"))
	if !bytes.Contains(man, []byte(`"nixglhost 1.2.3"`)) {
		t.Errorf("the man page does not name version 1.2.3")
	}

	// The install guide's first block, into a prefix of the test's.
	guide, _ := os.ReadFile(filepath.Join(dist, "INSTALL.md"))
	if bytes.Contains(guide, []byte("@VERSION@")) || !bytes.Contains(guide, []byte("nixglhost-1.2.3-linux-$arch")) {
		t.Errorf("INSTALL.md is not filled in for 1.2.3")
	}
	_, block, ok := strings.Cut(string(guide), "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	prefix := filepath.Join(t.TempDir(), "prefix")
	if !ok || !strings.Contains(block, "\nprefix=/usr/local\n") {
		t.Fatalf("INSTALL.md's first block does not set prefix=/usr/local:\n%s", block)
	}
	block = strings.Replace(block, "\nprefix=/usr/local\n", "\nprefix="+prefix+"\n", 1)
	cmd := exec.Command("bash", "-euc", "sudo() { \"$@\"; }\n"+block)
	cmd.Dir = dist
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(got), "nixglhost 1.2.3 (commit "+commit+")") {
		t.Fatalf("INSTALL.md's block: %v\n%s", err, got)
	}
	var installed []string
	fixtures.Must(t, filepath.Walk(prefix, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(prefix, p)
			installed = append(installed, rel)
		}
		return err
	}))
	slices.Sort(installed)
	wantInstalled := []string{"bin/nixglhost", "bin/nixglhost-pre-build-hook", "share/bash-completion/completions/nixglhost",
		"share/fish/vendor_completions.d/nixglhost.fish", "share/man/man1/nixglhost.1", "share/zsh/site-functions/_nixglhost"}
	if d := cmp.Diff(wantInstalled, installed); d != "" {
		t.Errorf("installed (-want +got):\n%s", d)
	}
	if target, err := os.Readlink(filepath.Join(prefix, "bin", "nixglhost-pre-build-hook")); err != nil || target != "nixglhost" {
		t.Errorf("nixglhost-pre-build-hook: %q, %v; want a link to nixglhost", target, err)
	}
}
