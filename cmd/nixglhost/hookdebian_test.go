package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestPreBuildHookDebianREADME: the host files README's pre-build hook
// example lists are those the hook binds for a cuda derivation on the
// Debian root built from NVIDIA's real 535.261.03 packages, in order.
func TestPreBuildHookDebianREADME(t *testing.T) {
	root := fixtures.DebianRoot(t, "amd64")
	cache := filepath.Join(t.TempDir(), "nix-gl-host")
	stdout, stderr, code := nixglhost(t, baseEnv(t), "--nix-pre-build-hook", "--driver-root", root, "--cache-dir", cache, drvFixture("plain-cuda"))
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	var got []string
	for _, l := range strings.Split(stdout, "\n") {
		if rest, ok := strings.CutPrefix(l, root+"/"); ok {
			got = append(got, "/"+rest)
		}
	}

	readme, err := os.ReadFile(filepath.Join(fixtures.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const start = "extra-sandbox-paths\n/run/opengl-driver=/var/cache/nix-gl-host/<entry"
	_, block, ok := strings.Cut(string(readme), start)
	if !ok {
		t.Fatalf("README.md has no hook example starting %q", start)
	}
	block, _, _ = strings.Cut(block, "```")
	var want []string
	for _, l := range strings.Split(block, "\n") {
		if strings.HasPrefix(l, "/usr/") {
			want = append(want, l)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("README's host files (-want) against the hook's on the Debian root (+got):\n%s", diff)
	}
}
