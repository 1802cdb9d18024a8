package main

import (
	"bytes"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nixglhost/nixglhost/internal/cli"
)

// TestParseMode: each command line parses into one mode (and, for the
// doctor, the mode whose plan it shows), or is refused with a message that
// names what does not go together.
func TestParseMode(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		mode    mode
		of      mode
		program []string
		err     string
	}{
		{name: "launch", args: []string{"prog", "-p"}, mode: modeLaunch, program: []string{"prog", "-p"}},
		{name: "launch after --", args: []string{"-d", "/x", "--prime", "--", "-prog"}, mode: modeLaunch, program: []string{"-prog"}},
		{name: "-p", args: []string{"-p"}, mode: modePrintPath},
		{name: "--print-env --json", args: []string{"--print-env", "--json", "prog"}, mode: modePrintEnv, program: []string{"prog"}},
		{name: "doctor of a launch", args: []string{"--prime", "--doctor", "prog", "arg"}, mode: modeDoctor, program: []string{"prog", "arg"}},
		{name: "doctor of system mode", args: []string{"--doctor", "--link-run-opengl-driver", "--run-dir", "/r", "-d", "/x"}, mode: modeDoctor, of: modeLink},
		{name: "doctor of --cdi-spec", args: []string{"--cdi-spec", "--cdi-dir", "/c", "--doctor", "--json"}, mode: modeDoctor, of: modeCDI},
		{name: "doctor of the hook", args: []string{"--doctor", "--nix-pre-build-hook", "--hook-features", "cuda"}, mode: modeDoctor, of: modeHook},
		{name: "link", args: []string{"--link-run-opengl-driver", "--mesa"}, mode: modeLink},
		{name: "unlink takes link's flags", args: []string{"-d", "/x", "--unlink-run-opengl-driver", "--run-dir", "/r"}, mode: modeUnlink},
		{name: "hook", args: []string{"--nix-pre-build-hook", "/x.drv", "/sandbox"}, mode: modeHook, program: []string{"/x.drv", "/sandbox"}},
		{name: "cache-gc", args: []string{"--cache-gc", "--json", "--cache-dir", "/c", "-v"}, mode: modeCacheGC},
		{name: "help wins", args: []string{"-p", "--doctor", "--help", "prog"}, mode: modeHelp, program: []string{"prog"}},
		{name: "-h", args: []string{"-h"}, mode: modeHelp},
		{name: "version", args: []string{"--version"}, mode: modeVersion},
		{name: "one-dash long flag", args: []string{"-doctor"}, mode: modeDoctor},

		{name: "-p --doctor", args: []string{"-p", "--doctor"}, err: "-p and --doctor exclude each other"},
		{name: "--print-env -p", args: []string{"--print-env", "-p"}, err: "-p and --print-env exclude each other"},
		{name: "three modes", args: []string{"--cdi-spec", "--doctor", "--link-run-opengl-driver"}, err: "--doctor, --link-run-opengl-driver and --cdi-spec exclude each other"},
		{name: "doctor of unlink", args: []string{"--doctor", "--unlink-run-opengl-driver"}, err: "--doctor and --unlink-run-opengl-driver exclude each other"},
		{name: "doctor of a cache command", args: []string{"--doctor", "--cache-list"}, err: "--doctor and --cache-list exclude each other"},
		{name: "version and a mode", args: []string{"--version", "-p"}, err: "-p and --version exclude each other"},
		{name: "version takes nothing", args: []string{"--version", "-v"}, err: "--verbose does not go with --version"},
		{name: "version and a program", args: []string{"--version", "prog"}, err: `--version takes no PROGRAM (got "prog")`},
		{name: "--prime with -p", args: []string{"--prime", "-p"}, err: "--prime goes with a launch, --print-env or --doctor, not with -p"},
		{name: "--prime with system mode's doctor", args: []string{"--doctor", "--prime", "--cdi-spec"}, err: "--prime goes with a launch, --print-env or --doctor, not with --doctor --cdi-spec"},
		{name: "system mode's doctor takes no program", args: []string{"--doctor", "--link-run-opengl-driver", "prog"}, err: `--doctor --link-run-opengl-driver takes no PROGRAM (got "prog")`},
		{name: "the hook's doctor takes no DRV", args: []string{"--doctor", "--nix-pre-build-hook", "/x.drv"}, err: `--doctor --nix-pre-build-hook takes no PROGRAM (got "/x.drv")`},
		{name: "--json with a launch", args: []string{"--json", "prog"}, err: "--json goes with --print-env, --doctor, --cache-list, --cache-gc or --cache-clear, not with a launch"},
		{name: "--cdi-dir without --cdi-spec", args: []string{"--cdi-dir", "/c", "--link-run-opengl-driver"}, err: "--cdi-dir goes with --cdi-spec, not with --link-run-opengl-driver"},
		{name: "--run-dir with --cdi-spec", args: []string{"--run-dir", "/r", "--cdi-spec"}, err: "--run-dir goes with --link-run-opengl-driver or --unlink-run-opengl-driver, not with --cdi-spec"},
		{name: "-d with a cache command", args: []string{"--cache-clear", "-d", "/x"}, err: "-d does not go with --cache-clear"},
		{name: "no program", args: nil, err: "no PROGRAM given"},
		{name: "unknown flag", args: []string{"--docter"}, err: "unknown flag --docter; did you mean --doctor?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseArgs(tt.args)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err && !strings.HasPrefix(err.Error(), tt.err) {
					t.Fatalf("parseArgs(%q) = %v, want the error %q", tt.args, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.args, err)
			}
			type got struct {
				Mode, Of string
				Program  []string
			}
			want := got{tt.mode.String(), tt.of.String(), tt.program}
			if d := cmp.Diff(want, got{c.mode.String(), c.doctorOf.String(), c.program}, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("parseArgs(%q) (-want +got):\n%s", tt.args, d)
			}
		})
	}
}

// TestUsageErrors: a refused command line exits 2 with the message and a
// pointer to --help on stderr, nothing on stdout, and nothing run.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-docter"}, "nixglhost: unknown flag --docter; did you mean --doctor?\n"},
		{[]string{"--print-env", "-p"}, "nixglhost: -p and --print-env exclude each other: give one\n"},
		{[]string{"-p", "--doctor"}, "nixglhost: -p and --doctor exclude each other: give one\n"},
		{[]string{"--cache-dir"}, "nixglhost: --cache-dir needs an argument: --cache-dir DIR\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := main1(append([]string{"nixglhost"}, tt.args...), nil, &stdout, &stderr, []string{"HOME=" + t.TempDir()})
			want := tt.want + "Try 'nixglhost --help' for more information.\n"
			if code != 2 || stdout.Len() != 0 || stderr.String() != want {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing, %q", code, stdout.String(), stderr.String(), want)
			}
		})
	}
}

// TestModeRulesCoverFlags: every flag of internal/cli's table either asks
// for a mode or goes with one, each mode's flag is in the table, and every
// mode but the launch has a flag; a flag added to the table without a
// place here fails.
func TestModeRulesCoverFlags(t *testing.T) {
	placed := map[string]bool{}
	for m := modeLaunch; m < numModes; m++ {
		r := modeRules[m]
		if m != modeLaunch {
			if _, ok := cli.Lookup(cli.Flags, r.flag); !ok || r.flag == "" {
				t.Errorf("mode %d: flag %q is not in cli.Flags", m, r.flag)
			}
		}
		placed[r.flag] = true
		for _, o := range r.options {
			if _, ok := cli.Lookup(cli.Flags, o); !ok {
				t.Errorf("%s: option %q is not in cli.Flags", m, o)
			}
			placed[o] = true
		}
	}
	for _, f := range cli.Flags {
		if !placed[flagKey(f)] {
			t.Errorf("%s is in cli.Flags but neither asks for a mode nor goes with one: add it to modeRules", f.Display())
		}
	}
}

// TestCheckAgreesWithFlag: cli.Check refuses exactly what the flag package
// would, so that every refusal gets Check's wording.
func TestCheckAgreesWithFlag(t *testing.T) {
	for _, args := range [][]string{
		{"-d"}, {"-d", "-p"}, {"--cache-dir="}, {"-doctor=false"}, {"--doctor=yes"}, {"---x"}, {"-=x"},
		{"--", "-x"}, {"-", "-x"}, {"--d=/x"}, {"-h=1"}, {"--docter"}, {"prog", "--docter"}, {"-vp"},
		{"--driver-root", "--cache-dir"}, {"--hook-features"},
	} {
		c := &config{}
		var dirs dirList
		fs, err := newFlagSet(c, &dirs)
		if err != nil {
			t.Fatal(err)
		}
		fs.SetOutput(io.Discard)
		perr := fs.Parse(args)
		cerr := cli.Check(cli.Flags, args)
		if (perr == nil) != (cerr == nil) {
			t.Errorf("%q: the flag package says %v, cli.Check says %v", args, perr, cerr)
		}
	}
}

// TestVersionText: --version names the release, the commit, the Go version
// and target and the build flags; without stamps, the module version and
// the VCS revision the toolchain recorded.
func TestVersionText(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "-buildmode", Value: "exe"}, {Key: "-compiler", Value: "gc"}, {Key: "-trimpath", Value: "true"},
		{Key: "-ldflags", Value: "-s -w -X main.version=0.9.0"}, {Key: "CGO_ENABLED", Value: "0"}, {Key: "CGO_CFLAGS", Value: ""},
		{Key: "GOARCH", Value: "arm64"}, {Key: "GOOS", Value: "linux"}, {Key: "GOARM64", Value: "v8.0"},
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"},
	}}
	tests := []struct {
		name            string
		version, commit string
		info            *debug.BuildInfo
		want            string
	}{
		{"stamped", "0.9.0", "fedcba987654", info, "nixglhost 0.9.0 (commit fedcba987654)\ngo1.26.0 linux/arm64\n" +
			"build: -trimpath -ldflags='-s -w -X main.version=0.9.0' CGO_ENABLED=0 GOARM64=v8.0\n"},
		{"go install", "dev", "unknown", info, "nixglhost 1.2.3 (commit 0123456789ab-dirty)\ngo1.26.0 linux/arm64\n" +
			"build: -trimpath -ldflags='-s -w -X main.version=0.9.0' CGO_ENABLED=0 GOARM64=v8.0\n"},
		{"no build info", "dev", "unknown", nil, "nixglhost dev (commit unknown)\nno build information recorded\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, versionText(tt.version, tt.commit, tt.info)); d != "" {
				t.Errorf("versionText (-want +got):\n%s", d)
			}
		})
	}
	var out bytes.Buffer
	if code := main1([]string{"nixglhost", "--version"}, nil, &out, io.Discard, nil); code != 0 ||
		!strings.HasPrefix(out.String(), "nixglhost "+version+" (commit ") || !strings.Contains(out.String(), "\ngo1.") {
		t.Errorf("--version: exit %d, printed %q", code, out.String())
	}
}

// TestSynopsisHasEveryMode: every mode but --help and --version has a form
// of its own in the synopsis (usage and man page), and every flag a form
// names goes with that form's mode.
func TestSynopsisHasEveryMode(t *testing.T) {
	for m := modeLaunch + 1; m < numModes; m++ {
		if m == modeHelp || m == modeVersion {
			continue
		}
		found := false
		for _, s := range cli.Synopsis {
			found = found || slices.Contains(strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(" []|.", r) }), m.String())
		}
		if !found {
			t.Errorf("no synopsis line names %s", m)
		}
	}
}

// TestHookFeatureValues: the completions offer for --hook-features the
// features the hook gives the GPU by default.
func TestHookFeatureValues(t *testing.T) {
	f, _ := cli.Lookup(cli.Flags, "hook-features")
	var want []string
	for _, x := range defaultHookFeatures {
		want = append(want, string(x))
	}
	if d := cmp.Diff(want, f.Values); d != "" {
		t.Errorf("--hook-features Values vs defaultHookFeatures (-hook +table):\n%s", d)
	}
}
