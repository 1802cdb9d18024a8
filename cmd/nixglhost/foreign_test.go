package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestForeignCacheDirKept replays issue 22's two reproductions with the
// real binary, as an unprivileged user and as root: a --cache-dir that
// holds a user's old directories (~/scratch with photos/ and projects/,
// three days old), and root's slip of --cache-dir /etc. Before, the launch
// exited 0 and the cold path's collector removed every directory older
// than a day. Now the launch is refused, the message names the directory
// and the fix, and every file is byte for byte what it was.
func TestForeignCacheDirKept(t *testing.T) {
	m := newSharedMachine(t)
	tests := []struct {
		name string
		uid  int
		tree map[string]string
		args []string
	}{
		{"user scratch", victimUID, map[string]string{"photos/a.jpg": "x\n", "projects/.keep": ""}, []string{"--", "true"}},
		{"root etc", 0, map[string]string{"apt/sources.list": "deb x\n", "dpkg/status": "Package: x\n", "X11/Xsession": "#!/bin/sh\n", "hostname": "box\n"}, []string{"-p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := m.dirOf(t, strings.ReplaceAll(tt.name, " ", "-"), tt.uid, 0o755)
			old := time.Now().Add(-72 * time.Hour)
			for rel, content := range tt.tree {
				p := fixtures.Write(t, filepath.Join(dir, rel), content)
				fixtures.Must(t, os.Lchown(p, tt.uid, tt.uid))
				fixtures.Must(t, os.Lchown(filepath.Dir(p), tt.uid, tt.uid))
				fixtures.Must(t, os.Chtimes(filepath.Dir(p), old, old))
			}
			home := m.dirOf(t, "home-"+strings.ReplaceAll(tt.name, " ", "-"), tt.uid, 0o755)
			before := fixtures.Snapshot(t, dir)
			args := append([]string{"--cache-dir", dir, "-d", m.drv}, tt.args...)
			out, errOut, err := m.run(tt.uid, []string{"HOME=" + home}, args...)
			if err == nil {
				t.Errorf("launch with --cache-dir %s succeeded (%q); want a refusal", dir, out)
			}
			for _, want := range []string{dir, "did not make", filepath.Join(dir, "nixglhost")} {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr does not say %q:\n%s", want, errOut)
				}
			}
			if diff := cmp.Diff(before, fixtures.Snapshot(t, dir)); diff != "" {
				t.Errorf("%s changed (-before +after):\n%s", dir, diff)
			}
		})
	}
}
