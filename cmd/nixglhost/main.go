// Command nixglhost runs a Nix-built program with the host's GPU driver.
//
// It scans the host's driver directories, builds (or reuses) a private cache
// entry laid out like NixOS's /run/opengl-driver that exposes only the driver,
// and execs the program with that entry appended to its library path. See
// README.md and DESIGN.md for the interface.
//
// The runtime's cgroup CPU-limit probing reads /proc/self/mountinfo a few
// bytes at a time (some 180 system calls) before main runs; nixglhost needs
// no CPU limit, as it execs the program within milliseconds, so it is off.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/nixglhost/nixglhost/internal/cli"
)

// version and commit are stamped at build time with -ldflags -X (make
// build, make release, the Nix package). A build without them (go build,
// go install) takes what the Go toolchain recorded: the module's version,
// the VCS revision.
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	// A launch lives for a few milliseconds and allocates little: no
	// garbage collection, unless a cold build over a huge driver comes
	// near the memory limit.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(64 << 20)
	os.Exit(main1(os.Args, os.Stdin, os.Stdout, os.Stderr, os.Environ()))
}

// main1 is the whole command without the process exit, so tests can run it:
// argv is the whole command line (argv[0] says whether nixglhost runs as
// the pre-build hook), environ the environment, whose TMPDIR places the
// last fallback cache. It returns only when it does not exec.
func main1(argv []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	if len(argv) == 0 {
		argv = []string{"nixglhost"}
	}
	c, err := parseArgs(hookArgs(argv[0], argv[1:]))
	if err != nil {
		fmt.Fprintf(stderr, "nixglhost: %v\nTry 'nixglhost --help' for more information.\n", err)
		return 2
	}
	fail := func(err error) int {
		if err != nil {
			fmt.Fprintf(stderr, "nixglhost: %v\n", err)
			return 1
		}
		return 0
	}
	switch c.mode {
	case modeHelp:
		fmt.Fprint(stdout, cli.Usage())
		return 0
	case modeVersion:
		info, _ := debug.ReadBuildInfo()
		fmt.Fprint(stdout, versionText(version, commit, info))
		return 0
	case modeDoctor:
		// The launch's plan, or that of c.doctorOf (doctorInputs).
		return runDoctor(c, stdout, stderr, environ)
	case modeCacheList, modeCacheGC, modeCacheClear:
		return runCacheCommand(c, stdout, stderr, environ)
	case modeLink:
		return fail(linkRunOpenGLDriver(c, stdout, stderr, environ))
	case modeUnlink:
		return fail(unlinkRunOpenGLDriver(c, stdout, stderr, environ))
	case modeCDI:
		return fail(writeCDISpec(c, stdout, stderr, environ))
	case modeHook:
		return fail(preBuildHook(c, stdout, stderr, environ))
	}
	// The launch, -p and --print-env.
	return fail(run(c, stdout, stderr, environ))
}

// versionText is what --version prints: the release and the commit on the
// first line, then the Go version and target, then the build flags the Go
// toolchain recorded in the binary (info; nil when there are none). The
// stamped version and commit win; without them, the module's version (go
// install ...@v1.2.3) and the VCS revision are used.
func versionText(version, commit string, info *debug.BuildInfo) string {
	settings := map[string]string{}
	var goVersion string
	if info != nil {
		goVersion = info.GoVersion
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if v := info.Main.Version; version == "dev" && v != "" && v != "(devel)" {
			version = strings.TrimPrefix(v, "v")
		}
	}
	if rev := settings["vcs.revision"]; commit == "unknown" && rev != "" {
		commit = rev[:min(12, len(rev))]
		if settings["vcs.modified"] == "true" {
			commit += "-dirty"
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "nixglhost %s (commit %s)\n", version, commit)
	if info == nil {
		b.WriteString("no build information recorded\n")
		return b.String()
	}
	fmt.Fprintf(&b, "%s %s/%s\n", goVersion, settings["GOOS"], settings["GOARCH"])
	var flags []string
	for _, s := range info.Settings {
		switch {
		case s.Key == "GOOS" || s.Key == "GOARCH" || strings.HasPrefix(s.Key, "vcs") || s.Value == "":
		case s.Key == "-compiler" && s.Value == "gc", s.Key == "-buildmode" && s.Value == "exe":
			// The defaults.
		case strings.HasPrefix(s.Key, "-") && s.Value == "true":
			flags = append(flags, s.Key)
		case strings.HasPrefix(s.Key, "-"):
			flags = append(flags, s.Key+"="+shellQuote(s.Value))
		default:
			flags = append(flags, s.Key+"="+s.Value)
		}
	}
	fmt.Fprintf(&b, "build: %s\n", strings.Join(flags, " "))
	return b.String()
}
