package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	passLine = `{"Action":"pass","Package":"p","Test":"TestA"}` + "\n" + `{"Action":"pass","Package":"p"}` + "\n"
	skipLine = `{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:3: no widget\n"}` + "\n" +
		`{"Action":"skip","Package":"p","Test":"TestB"}` + "\n" + `{"Action":"pass","Package":"p"}` + "\n"
)

func TestRun(t *testing.T) {
	t.Setenv("NIXGLHOST_REQUIRE_FIXTURES", "")
	allow := filepath.Join(t.TempDir(), "allow")
	if err := os.WriteFile(allow, []byte("p.TestB the widget is elsewhere\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		stdin      string
		want       int
		wantStdout string
		wantStderr string
	}{
		{"a passing stream on stdin", nil, passLine, 0, "PASS: 1 passed, 0 failed, 0 skipped", ""},
		{"a skip, not required", nil, skipLine, 0, "p TestB: no widget", ""},
		{"a skip, required, unlisted", []string{"-require"}, skipLine, 1, "1 skip(s) not in the allow-list", ""},
		{"a skip, required, listed", []string{"-require", "-allow", allow}, skipLine, 0, "0 not allowed", ""},
		{"a command's stream", []string{"sh", "-c", "printf '%s' '" + passLine + "'"}, "", 0, "1 passed", ""},
		{"a command that fails with a passing stream", []string{"sh", "-c", "printf '%s' '" + passLine + "'; exit 3"}, "", 1, "1 passed", "exit status 3"},
		{"a command that does not start", []string{filepath.Join(t.TempDir(), "absent")}, "", 2, "", "absent"},
		{"an allow-list that is not there", []string{"-allow", filepath.Join(t.TempDir(), "none")}, "", 2, "", "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			got := run(tt.args, strings.NewReader(tt.stdin), &stdout, &stderr)
			if got != tt.want {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", got, tt.want, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantStdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr.String())
			}
		})
	}
}
