package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nixglhost/nixglhost/internal/cli"
	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// The test binary doubles as nixglhost: with this variable set, TestMain
// runs the command instead of the tests, so end-to-end tests exec a real
// process without a separate build.
const asMainEnv = "NIXGLHOST_TEST_AS_MAIN"

// And as a program that reports what it was given.
const asEchoEnv = "NIXGLHOST_TEST_AS_ECHO"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Unsetenv(asMainEnv)
		if step := os.Getenv(pauseEnv); step != "" {
			buildHook = func(stderr io.Writer) func(string) { return pauseAt(step, stderr) }
		}
		main()
	}
	if os.Getenv(asEchoEnv) == "1" {
		echoMain()
	}
	os.Exit(m.Run())
}

// nixglhost runs the command as a process with exactly env (plus the
// variable that makes the test binary act as nixglhost) and returns its
// stdout, stderr and exit code.
func nixglhost(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(append([]string(nil), env...), asMainEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running nixglhost %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), stderr.String(), code
}

// execSelf returns a command running the test binary as nixglhost.
func execSelf(t *testing.T, self string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(self, args...)
	cmd.Env = append(append([]string(nil), env...), asMainEnv+"=1")
	return cmd
}

// testBinary returns the path of the running test binary, which runs main
// when TestMain is asked to (execSelf).
func testBinary(t testing.TB) string {
	t.Helper()
	self, err := os.Executable()
	fixtures.Must(t, err)
	return self
}

// pauseEnv names a build step ("tmpdir", "links", "patched", "data",
// "rename") at which a cold build of the test binary acting as nixglhost
// stops and waits to be killed: the crash-injection tests use it. The
// release binary does not read it.
const pauseEnv = "NIXGLHOST_TEST_PAUSE_AT"

func pauseAt(step string, stderr io.Writer) func(string) {
	return func(s string) {
		if s == step {
			fmt.Fprintf(stderr, "nixglhost: paused at %s\n", s)
			for {
				time.Sleep(time.Hour)
			}
		}
	}
}

// TestFlagsBound: every flag of internal/cli's table is registered, bound to
// the configuration, with its default; nothing else is registered; --help
// prints the table's usage.
func TestFlagsBound(t *testing.T) {
	c := &config{}
	var dirs dirList
	fs, err := newFlagSet(c, &dirs)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range cli.Flags {
		for _, n := range []string{f.Short, f.Long} {
			if n == "" {
				continue
			}
			want = append(want, n)
			fl := fs.Lookup(n)
			if fl == nil {
				t.Errorf("-%s is in the table but not registered", n)
			} else if fl.DefValue != f.Default && !(f.Arg == "" && fl.DefValue == "false") && !f.Repeatable {
				t.Errorf("-%s: default %q, the table says %q", n, fl.DefValue, f.Default)
			}
		}
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n != len(want) {
		t.Errorf("%d flags registered, the table has %d names", n, len(want))
	}
	c2, err := parseArgs([]string{"-d", "/a", "-d", "/b", "--driver-root", "/r", "--", "prog", "-d"})
	if err != nil || !slices.Equal(c2.dirs, []string{"/a", "/b"}) || c2.driverRoot != "/r" || !slices.Equal(c2.program, []string{"prog", "-d"}) {
		t.Errorf("parseArgs = %+v, %v", c2, err)
	}
	var out bytes.Buffer
	if code := main1([]string{"nixglhost", "--help"}, nil, &out, io.Discard, nil); code != 0 || out.String() != cli.Usage() {
		t.Errorf("--help: exit %d, printed %q, want cli.Usage()", code, out.String())
	}
}
