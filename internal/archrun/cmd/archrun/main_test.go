package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/archrun"
	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestGoProgramUnderEmulation builds a Go program for 386 and runs it
// through this command with native 386 execution disabled, as on a kernel
// without IA32 emulation: it must print its output, every time.
func TestGoProgramUnderEmulation(t *testing.T) {
	fixtures.SkipShort(t, "building a 386 Go program and running it under qemu")
	t.Setenv(archrun.NoNativeEnv, "386")
	if _, err := archrun.For("386"); err != nil {
		fixtures.Unavailable(t, "%v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from 386\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "hello")
	build := exec.Command("go", "build", "-o", prog, src)
	build.Env = append(os.Environ(), "GOARCH=386", "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		// The test binary is this command's main package; TestMain runs
		// main when asked to.
		cmd := exec.Command(self, "386", prog)
		cmd.Env = append(os.Environ(), "ARCHRUN_TEST_MAIN=1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(out)) != "hello from 386" {
			t.Fatalf("run %d: %v\n%s%s", i, err, out, stderr.String())
		}
		if n := strings.Count(stderr.String(), "running it again"); n > 0 {
			t.Logf("run %d: the emulator crashed %d time(s) first", i, n)
		}
	}
}

func TestMain(m *testing.M) {
	if os.Getenv("ARCHRUN_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func TestGoDebug(t *testing.T) {
	for old, want := range map[string]string{"": "asyncpreemptoff=1", "x=1": "x=1,asyncpreemptoff=1"} {
		if got := goDebug(old); got != want {
			t.Errorf("goDebug(%q) = %q, want %q", old, got, want)
		}
	}
}

func TestEmulatorCrash(t *testing.T) {
	signaled := exec.Command("sh", "-c", "kill -TRAP $$").Run()
	exit2 := exec.Command("sh", "-c", "exit 2").Run()
	tests := []struct {
		name   string
		err    error
		stderr string
		want   bool
	}{
		{"success", nil, "", false},
		{"killed by a signal", signaled, "", true},
		{"Go's fatal error on the signal stack", exit2, "fatal: morestack on gsignal\n", true},
		{"the program's own failure", exit2, "usage: hello\n", false},
	}
	for _, tt := range tests {
		if got := emulatorCrash(tt.err, tt.stderr); got != tt.want {
			t.Errorf("%s: emulatorCrash = %v, want %v", tt.name, got, tt.want)
		}
	}
}
