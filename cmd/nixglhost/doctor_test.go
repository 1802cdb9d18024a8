package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/doctor"
)

// fakeHost returns a fake host root with a gcc-built 535 driver in its
// multiarch directory and a loaded kernel module of version module.
func fakeHost(t *testing.T, module string) string {
	t.Helper()
	root := t.TempDir()
	fixtures.FakeDriver(t, filepath.Join(root, "usr/lib/x86_64-linux-gnu"), "535.261.03", "amd64")
	fixtures.SetModuleVersion(t, root, module)
	return root
}

// TestDoctorCommand runs --doctor as a process: the exit code says whether
// something blocks, --json prints a Report, and PROGRAM is optional.
func TestDoctorCommand(t *testing.T) {
	clean, mismatch := fakeHost(t, "535.261.03"), fakeHost(t, "550.54.14")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		blocking []string
	}{
		{"clean", []string{"--driver-root", clean, "--doctor"}, 0, nil},
		{"clean with program", []string{"--driver-root", clean, "--doctor", self}, 0, nil},
		{"mismatch", []string{"--driver-root", mismatch, "--doctor"}, 1, []string{"module"}},
		{"missing -d", []string{"--driver-root", clean, "-d", "/nowhere", "--doctor"}, 1, []string{"driver"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv(t)
			text, errText, code := nixglhost(t, env, append([]string{"--cache-dir", t.TempDir()}, tt.args...)...)
			if code != tt.code || errText != "" {
				t.Errorf("exit %d (stderr %q), want %d\n%s", code, errText, tt.code, text)
			}
			if !strings.HasPrefix(text, "nixglhost doctor: ") {
				t.Errorf("human report starts %q", text)
			}
			out, _, code := nixglhost(t, env, append([]string{"--cache-dir", t.TempDir(), "--json"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("--json exit %d, want %d", code, tt.code)
			}
			dec := json.NewDecoder(bytes.NewReader([]byte(out)))
			dec.DisallowUnknownFields()
			var r doctor.Report
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("--doctor --json: %v\n%s", err, out)
			}
			var blocking []string
			for _, f := range r.Findings {
				if f.Severity == doctor.SeverityBlocking {
					blocking = append(blocking, string(f.Topic))
				}
			}
			if diff := cmp.Diff(tt.blocking, blocking); diff != "" {
				t.Errorf("blocking findings (-want +got):\n%s", diff)
			}
			if (r.Program != nil) != (len(tt.args) == 4) {
				t.Errorf("program report %+v for args %v", r.Program, tt.args)
			}
		})
	}
}

// TestDoctorArgs: --json goes with --doctor, and --doctor needs no PROGRAM.
func TestDoctorArgs(t *testing.T) {
	c, err := parseArgs([]string{"--doctor", "--json"})
	if err != nil || !c.doctor || !c.json || len(c.program) != 0 {
		t.Errorf("parseArgs(--doctor --json) = %+v, %v", c, err)
	}
	c, err = parseArgs([]string{"-d", "/x", "--doctor", "prog", "arg"})
	if err != nil || !c.doctor || !cmp.Equal(c.program, []string{"prog", "arg"}) {
		t.Errorf("parseArgs(--doctor prog) = %+v, %v", c, err)
	}
	if _, err := parseArgs([]string{"--json", "prog"}); err == nil {
		t.Error("--json without --print-env or --doctor accepted")
	}
}

// TestLaunchWarnsBlocking: `nixglhost -- prog` on a host whose kernel
// module does not match its userspace driver prints one warning line naming
// both versions, then runs the program all the same.
func TestLaunchWarnsBlocking(t *testing.T) {
	self := testBinary(t)
	for _, tt := range []struct {
		name, module string
		// compat adds a cuda_compat libcuda for the module's branch,
		// given with -d before the host's driver: it bridges the
		// mismatch, for the launch's warning as for the doctor (one
		// rule: hostdrivers.ModuleMismatch).
		compat bool
		want   []string
	}{
		{"mismatch", "550.54.14", false, []string{"nixglhost: warning: kernel module 550.54.14 is loaded but the userspace driver is 535.261.03: expect \"Driver/library version mismatch\" (run nixglhost --doctor)"}},
		{"clean", "535.261.03", false, nil},
		{"cuda_compat bridges", "470.256.02", true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeHost(t, tt.module)
			args := []string{"--cache-dir", filepath.Join(filepath.Dir(root), "cache"), "--driver-root", root}
			if tt.compat {
				fixtures.CompatLib(t, filepath.Join(root, "compat"), "550.54.14", `{"Format":1,"CUDA Version":"12.4","Driver":[470],"Device":[]}`)
				args = append(args, "-d", "/compat", "-d", "/usr/lib/x86_64-linux-gnu")
			}
			env := baseEnv(t, asEchoEnv+"=1", "NIXGLHOST_TEST_EXIT=3")
			out, _, _ := nixglhost(t, baseEnv(t), append(args, "--doctor", "--json")...)
			var r doctor.Report
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("--doctor --json: %v\n%s", err, out)
			}
			moduleBlocks := slices.ContainsFunc(r.Findings, func(f doctor.Finding) bool { return f.Topic == "module" && f.Severity == doctor.SeverityBlocking })
			if moduleBlocks != (tt.want != nil) {
				t.Errorf("the doctor blocks on the module: %t; the launch warns: %t", moduleBlocks, tt.want != nil)
			}
			// Twice: the cold launch builds the entry, the hot one reads it.
			for _, run := range []string{"cold", "hot"} {
				cmd := execSelf(t, self, env, append(args, "--", self, "arg")...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				if ee, ok := err.(interface{ ExitCode() int }); !ok || ee.ExitCode() != 3 {
					t.Fatalf("%s: exit %v, want the program's 3; stderr:\n%s", run, err, stderr.String())
				}
				var got echoed
				if err := json.Unmarshal(stdout.Bytes(), &got); err != nil || !cmp.Equal(got.Args, []string{self, "arg"}) {
					t.Fatalf("%s: the program did not run as asked: %v %s", run, err, stdout.String())
				}
				lines := strings.Split(strings.TrimSuffix(stderr.String(), "to stderr"), "\n")
				var warnings []string
				for _, l := range lines {
					if l != "" {
						warnings = append(warnings, l)
					}
				}
				if diff := cmp.Diff(tt.want, warnings); diff != "" {
					t.Errorf("%s: warnings (-want +got):\n%s", run, diff)
				}
			}
		})
	}
}

// TestDoctorAgreesOnCacheDir: for each kind of --cache-dir, the doctor
// blocks on the cache exactly when the launch refuses it. A mode-0777
// directory used to pass the doctor ("writable, nothing blocks") while
// the launch exited 1.
func TestDoctorAgreesOnCacheDir(t *testing.T) {
	host := fakeHost(t, "535.261.03")
	tests := []struct {
		name    string
		setup   func(t *testing.T) string
		refused bool
	}{
		{"private", func(t *testing.T) string { return t.TempDir() }, false},
		{"not yet made", func(t *testing.T) string { return filepath.Join(t.TempDir(), "new") }, false},
		{"mode 0777", func(t *testing.T) string {
			d := t.TempDir()
			fixtures.Must(t, os.Chmod(d, 0o777))
			return d
		}, true},
		{"group-writable", func(t *testing.T) string {
			d := t.TempDir()
			fixtures.Must(t, os.Chmod(d, 0o770))
			return d
		}, true},
		// An explicit --cache-dir is the user's choice: both resolve it.
		{"symbolic link to a private directory", func(t *testing.T) string {
			l := filepath.Join(t.TempDir(), "link")
			fixtures.Must(t, os.Symlink(t.TempDir(), l))
			return l
		}, false},
		{"symbolic link to a mode-0777 directory", func(t *testing.T) string {
			d := t.TempDir()
			fixtures.Must(t, os.Chmod(d, 0o777))
			l := filepath.Join(t.TempDir(), "link")
			fixtures.Must(t, os.Symlink(d, l))
			return l
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv(t)
			cache := tt.setup(t)
			_, launchErr, launchCode := nixglhost(t, env, "--driver-root", host, "--cache-dir", cache, "-p")
			out, _, code := nixglhost(t, env, "--driver-root", host, "--cache-dir", cache, "--doctor", "--json")
			var r doctor.Report
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("--doctor --json: %v\n%s", err, out)
			}
			cacheBlocks := false
			for _, f := range r.Findings {
				cacheBlocks = cacheBlocks || f.Severity == doctor.SeverityBlocking && f.Topic == "cache"
			}
			if (launchCode != 0) != tt.refused || cacheBlocks != tt.refused || (code != 0) != tt.refused {
				t.Errorf("launch exit %d (%s); doctor exit %d, blocks on the cache: %v; want refused=%v\n%s", launchCode, strings.TrimSpace(launchErr), code, cacheBlocks, tt.refused, out)
			}
		})
	}
}

// TestColonInCachePath: a cache path holding ':' would put two entries, one
// relative, on the program's library path; the launch and the doctor
// refuse it, naming where it came from.
func TestColonInCachePath(t *testing.T) {
	host := fakeHost(t, "535.261.03")
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"XDG_CACHE_HOME", []string{"XDG_CACHE_HOME=" + t.TempDir() + "/a:b"}, nil, "XDG_CACHE_HOME="},
		{"--cache-dir", nil, []string{"--cache-dir", t.TempDir() + "/a:b"}, "--cache-dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append(baseEnv(t), tt.env...)
			for _, mode := range []string{"-p", "--doctor"} {
				args := append(append([]string{"--driver-root", host}, tt.args...), mode)
				out, errOut, code := nixglhost(t, env, args...)
				if code == 0 || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "':'") {
					t.Errorf("%s: exit %d, stderr %q, stdout %q: want a refusal naming %s", mode, code, errOut, out, tt.want)
				}
			}
		})
	}
}
