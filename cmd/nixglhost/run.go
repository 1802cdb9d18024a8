package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/environment"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/cli"
	"github.com/nixglhost/nixglhost/internal/program"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// config is the parsed command line.
type config struct {
	dirs       []string
	printPath  bool
	printEnv   bool
	prime      bool
	mesa       bool
	mesaOnly   bool
	doctor     bool
	json       bool
	driverRoot string
	cacheDir   string
	verbose    bool
	version    bool
	help       bool
	program    []string
	// System mode and the pre-build hook (sysmode.go, hook.go).
	linkRun      bool
	cdiSpec      bool
	cdiDir       string
	unlinkRun    bool
	runDir       string
	hook         bool
	hookFeatures string
	// The cache commands (cachecmd.go).
	cacheList, cacheGC, cacheClear bool
	// mode is what the command line asks for, and doctorOf the mode whose
	// plan --doctor shows (mode.go).
	mode, doctorOf mode
}

type dirList []string

func (d *dirList) String() string     { return strings.Join(*d, ",") }
func (d *dirList) Set(v string) error { *d = append(*d, v); return nil }

// newFlagSet registers every flag of internal/cli's table, bound to c's
// fields (dirs for -d), with the table's defaults. A flag of the table
// without a binding here is an error, which TestFlagsBound catches.
func newFlagSet(c *config, dirs *dirList) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet("nixglhost", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	bools := map[string]*bool{
		"p": &c.printPath, "print-env": &c.printEnv, "prime": &c.prime, "mesa": &c.mesa, "mesa-only": &c.mesaOnly, "doctor": &c.doctor, "json": &c.json,
		"v": &c.verbose, "verbose": &c.verbose, "version": &c.version, "h": &c.help, "help": &c.help,
		"link-run-opengl-driver": &c.linkRun, "unlink-run-opengl-driver": &c.unlinkRun, "cdi-spec": &c.cdiSpec,
		"nix-pre-build-hook": &c.hook, "cache-list": &c.cacheList, "cache-gc": &c.cacheGC, "cache-clear": &c.cacheClear,
	}
	strs := map[string]*string{
		"driver-root": &c.driverRoot, "cache-dir": &c.cacheDir, "run-dir": &c.runDir, "cdi-dir": &c.cdiDir,
		"hook-features": &c.hookFeatures,
	}
	for _, f := range cli.Flags {
		for _, name := range []string{f.Short, f.Long} {
			switch {
			case name == "":
			case f.Arg == "" && bools[name] != nil:
				fs.BoolVar(bools[name], name, false, f.Help)
			case f.Repeatable && name == "d":
				fs.Var(dirs, name, f.Help)
			case f.Arg != "" && !f.Repeatable && strs[name] != nil:
				fs.StringVar(strs[name], name, f.Default, f.Help)
			default:
				return nil, fmt.Errorf("flag %s of internal/cli has no binding in cmd/nixglhost", name)
			}
		}
	}
	return fs, nil
}

// getenv is hostdrivers.LookupEnv's value: "" for a variable not set.
func getenv(environ []string, k string) string {
	v, _ := hostdrivers.LookupEnv(environ, k)
	return v
}

// run prepares the driver and prints or execs. On success with a PROGRAM to
// run, it does not return.
//
// It is long because it is the launch itself, step after step from set-up to
// exec; each step is a call.
func run(c *config, stdout, stderr io.Writer, environ []string) error {
	s, err := newLaunchSetup(c, stderr, environ)
	if err != nil {
		return err
	}
	log, o, root, cacheDir, fallbacks := s.log, s.opts, s.opts.Root, s.cacheDir, s.fallbacks
	if buildHook != nil {
		o.BuildHook = buildHook(stderr)
	}
	var prog *program.Program
	if len(c.program) > 0 {
		prog, err = program.Find(c.program[0], environ)
		if err != nil {
			return err
		}
		o.Target = prog.Ident
		log.Debug("program", "path", prog.Path, "class", prog.Ident.Class, "machine", prog.Ident.Machine, "interp", prog.Interp)
	}
	for _, w := range environment.GlibcHazards(root, getenv(environ, "LD_LIBRARY_PATH")) {
		fmt.Fprintf(stderr, "nixglhost: warning: %s\n", w)
	}
	sess := new(hostdrivers.Session)
	p, err := sess.Prepare(o, cacheDir, fallbacks...)
	var noDriver *hostdrivers.NoDriverError
	if errors.As(err, &noDriver) {
		p, err = nil, nil
	}
	if err != nil {
		return err
	}
	var changes []environment.Change
	// libs are the entries' lib/ directories, the 32-bit companion's after
	// the program's.
	var libs []string
	nixLD := prog != nil && prog.FHS && program.NixLDPresent(root, environ)
	if p != nil {
		for _, w := range p.Warnings {
			fmt.Fprintf(stderr, "nixglhost: warning: %s\n", w)
		}
		// A -d that leaves a chosen library without a driver library it
		// needs (found neither there nor on the host's search path): the
		// API it serves will fail.
		if len(c.dirs) > 0 {
			for _, x := range p.Manifest.Missing {
				if x.Code == hostdrivers.SkipNoComponent {
					fmt.Fprintf(stderr, "nixglhost: warning: %s: %s, in none of the -d directories nor on the host's search path; what needs it will fail\n", x.Path, x.Reason)
				}
			}
		}
	}
	if p == nil && !c.printPath {
		fmt.Fprintf(stderr, "nixglhost: warning: %v (run with DEBUG=1 to see where it looked); running without it\n", noDriver)
	}
	if p != nil {
		if nixLD {
			log.Debug("FHS program under nix-ld: using NIX_LD_LIBRARY_PATH")
		}
		eo := environment.EnvOptions{NixLD: nixLD, Prime: c.prime}
		libs = append(libs, filepath.Join(p.Dir, "lib"))
		if p32 := companion(sess, o, cacheDir, fallbacks, stderr); p32 != nil {
			eo.Companion, eo.CompanionManifest = p32.Dir, p32.Manifest
			libs = append(libs, filepath.Join(p32.Dir, "lib"))
		}
		changes = environment.Env(environ, p.Dir, p.Manifest, eo)
		for _, ch := range changes {
			log.Debug("environment", "name", ch.Name, "value", ch.Value, "kept", ch.Kept)
		}
	}
	switch {
	case c.printPath:
		if p == nil {
			// An empty answer would leave `...:$(nixglhost -p)` with an
			// empty element, which the loader reads as the current
			// directory: fail instead.
			return fmt.Errorf("-p: %v, no library directory to add", noDriver)
		}
		// Both lib/ directories, as the launch puts them on the library
		// path: the loader skips a library of the wrong class.
		fmt.Fprintln(stdout, strings.Join(libs, ":"))
		return nil
	case c.printEnv:
		return printEnv(stdout, changes, c.json)
	}
	for _, w := range launchWarnings(p, prog, nixLD, environ) {
		fmt.Fprintf(stderr, "nixglhost: warning: %s\n", w)
	}
	env := environment.Apply(environ, changes)
	argv := append([]string{c.program[0]}, c.program[1:]...)
	// Exec is the very last step: no deferred call runs across it.
	if err := unix.Exec(prog.Path, argv, env); err != nil {
		return fmt.Errorf("exec %s: %w", prog.Path, err)
	}
	return nil
}

// companion prepares the 32-bit entry for the 32-bit programs a 64-bit
// program may start, when the host has a 32-bit driver; nil otherwise. A
// failure costs only those programs their driver: a warning, not an error.
func companion(sess *hostdrivers.Session, o *hostdrivers.Options, cacheDir string, fallbacks []string, stderr io.Writer) *hostdrivers.Prepared {
	p, err := sess.PrepareCompanion(o, cacheDir, fallbacks...)
	var noDriver *hostdrivers.NoDriverError
	switch {
	case errors.As(err, &noDriver):
		return nil
	case err != nil:
		fmt.Fprintf(stderr, "nixglhost: warning: the 32-bit driver entry: %v; 32-bit programs started from here get no driver\n", err)
		return nil
	}
	return p
}

// printEnv prints the variables as POSIX shell exports, or a JSON object.
func printEnv(w io.Writer, changes []environment.Change, asJSON bool) error {
	if asJSON {
		m := map[string]string{}
		for _, c := range changes {
			m[c.Name] = c.Value
		}
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	for _, c := range changes {
		fmt.Fprintf(w, "export %s=%s\n", c.Name, shellQuote(c.Value))
	}
	return nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// withoutCache drops library path entries inside the cache directory (a
// nested nixglhost sees its parent's entry), so they are not taken for the
// host's driver.
func withoutCache(lp string, cacheDirs ...string) string {
	var keep []string
next:
	for _, d := range strings.Split(lp, ":") {
		for _, c := range cacheDirs {
			if d == c || strings.HasPrefix(d, c+"/") {
				continue next
			}
		}
		keep = append(keep, d)
	}
	return strings.Join(keep, ":")
}

// cacheDirs returns the cache root and the fallbacks used when it cannot
// be written (a read-only or full home directory): $XDG_RUNTIME_DIR/nixglhost,
// then a per-user directory under the system temporary directory. An
// explicit --cache-dir has no fallback, and may be a symlink: it is the
// user's choice, resolved here.
func cacheDirs(flagVal string, environ []string) (string, []string, error) {
	if flagVal != "" {
		abs, err := filepath.Abs(flagVal)
		if err != nil {
			return "", nil, fmt.Errorf("--cache-dir %s: %w", flagVal, err)
		}
		if r, err := filepath.EvalSymlinks(abs); err == nil {
			abs = r
		}
		if strings.Contains(abs, ":") {
			return "", nil, fmt.Errorf("--cache-dir %s: the path holds a ':', which would split its lib/ in two LD_LIBRARY_PATH entries; choose a directory without one", abs)
		}
		return abs, nil, nil
	}
	var dirs []string
	switch d, err := cacheDir("", environ); {
	case err == nil:
		dirs = append(dirs, d)
	case !errors.Is(err, errNoCacheHome):
		return "", nil, err
	}
	if r := getenv(environ, "XDG_RUNTIME_DIR"); filepath.IsAbs(r) && !strings.Contains(r, ":") {
		dirs = append(dirs, filepath.Join(r, "nixglhost"))
	}
	tmp := getenv(environ, "TMPDIR")
	if !filepath.IsAbs(tmp) || strings.Contains(tmp, ":") {
		tmp = "/tmp"
	}
	dirs = append(dirs, filepath.Join(tmp, fmt.Sprintf("nixglhost-%d", os.Geteuid())))
	return dirs[0], dirs[1:], nil
}

// buildHook, when set, gives each cold build a hook called at each of its
// steps (hostdrivers.Options.BuildHook). Only the tests set it, in the
// test binary (the crash-injection tests pause a build there): the
// release binary has no way to reach it.
var buildHook func(stderr io.Writer) func(step string)

// errNoCacheHome: neither XDG_CACHE_HOME nor HOME names a directory.
var errNoCacheHome = errors.New("no cache directory: set --cache-dir, XDG_CACHE_HOME or HOME")

// cacheDir returns the cache root: the flag, $XDG_CACHE_HOME/nixglhost, or
// ~/.cache/nixglhost (not nix-gl-host: numtide's nix-gl-host keeps its own
// cache there, which is not ours to touch).
func cacheDir(flagVal string, environ []string) (string, error) {
	if flagVal != "" {
		abs, err := filepath.Abs(flagVal)
		if err != nil {
			return "", fmt.Errorf("--cache-dir %s: %w", flagVal, err)
		}
		return abs, nil
	}
	colon := func(v, val string) error {
		return fmt.Errorf("%s=%s holds a ':', which would split the cache entry's lib/ in two LD_LIBRARY_PATH entries, one of them relative; set it to a path without one, or pass --cache-dir", v, val)
	}
	if x := getenv(environ, "XDG_CACHE_HOME"); filepath.IsAbs(x) {
		if strings.Contains(x, ":") {
			return "", colon("XDG_CACHE_HOME", x)
		}
		return filepath.Join(x, "nixglhost"), nil
	}
	if h := getenv(environ, "HOME"); filepath.IsAbs(h) {
		if strings.Contains(h, ":") {
			return "", colon("HOME", h)
		}
		return filepath.Join(h, ".cache", "nixglhost"), nil
	}
	return "", errNoCacheHome
}
