package main

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nixglhost/nixglhost/internal/cli"
)

// This file turns the command line into one typed mode: parseArgs checks
// the flags' spelling (cli.Check), binds them (newFlagSet), finds the one
// mode they ask for and refuses, before anything is read or written, a flag
// or an argument that does not go with it. main1 (main.go) dispatches on
// the mode.

// mode is the one thing a command line asks nixglhost to do.
type mode int

const (
	// modeLaunch runs PROGRAM with the driver (no mode flag).
	modeLaunch mode = iota
	// modePrintPath is -p.
	modePrintPath
	// modePrintEnv is --print-env.
	modePrintEnv
	// modeDoctor is --doctor; config.doctorOf says which mode's plan it
	// shows.
	modeDoctor
	// modeLink is --link-run-opengl-driver.
	modeLink
	// modeUnlink is --unlink-run-opengl-driver.
	modeUnlink
	// modeCDI is --cdi-spec.
	modeCDI
	// modeHook is --nix-pre-build-hook.
	modeHook
	// modeCacheList is --cache-list.
	modeCacheList
	// modeCacheGC is --cache-gc.
	modeCacheGC
	// modeCacheClear is --cache-clear.
	modeCacheClear
	// modeVersion is --version.
	modeVersion
	// modeHelp is -h, --help.
	modeHelp
	numModes
)

// argRule says what a mode takes after its flags.
type argRule int

const (
	// argsNone: nothing.
	argsNone argRule = iota
	// argsProgram: PROGRAM [ARGS...], required.
	argsProgram
	// argsMaybeProgram: [PROGRAM [ARGS...]].
	argsMaybeProgram
	// argsDrv: DRV [SANDBOX], the pre-build hook's.
	argsDrv
)

// modeRule is what a mode takes.
type modeRule struct {
	// flag names the flag that asks for the mode, as cli.Flags names it
	// (its Long, else its Short); "" for the launch.
	flag string
	// options are the other flags that go with it, named the same way.
	options []string
	// args is what follows the flags.
	args argRule
}

// planFlags are the flags that shape the plan of an entry: where the driver
// is, which drivers, where the entry goes; and -v, which every mode takes
// but --version and --help.
var planFlags = []string{"d", "driver-root", "mesa", "mesa-only", "cache-dir", "verbose"}

// withFlags returns a new slice of base and more.
func withFlags(base []string, more ...string) []string {
	return append(slices.Clone(base), more...)
}

// modeRules says, for each mode, what goes with it; every combination not
// listed is a usage error. --prime only sets variables, so it goes with the
// launch, --print-env and the doctor (which judges that launch); --json
// with what prints a report. --unlink-run-opengl-driver takes
// --link-run-opengl-driver's flags, so that a unit's ExecStop can repeat
// its ExecStart.
var modeRules = [numModes]modeRule{
	modeLaunch:     {"", withFlags(planFlags, "prime"), argsProgram},
	modePrintPath:  {"p", planFlags, argsMaybeProgram},
	modePrintEnv:   {"print-env", withFlags(planFlags, "prime", "json"), argsMaybeProgram},
	modeDoctor:     {"doctor", withFlags(planFlags, "prime", "json"), argsMaybeProgram},
	modeLink:       {"link-run-opengl-driver", withFlags(planFlags, "run-dir"), argsNone},
	modeUnlink:     {"unlink-run-opengl-driver", withFlags(planFlags, "run-dir"), argsNone},
	modeCDI:        {"cdi-spec", withFlags(planFlags, "cdi-dir"), argsNone},
	modeHook:       {"nix-pre-build-hook", withFlags(planFlags, "hook-features"), argsDrv},
	modeCacheList:  {"cache-list", []string{"cache-dir", "json", "verbose"}, argsNone},
	modeCacheGC:    {"cache-gc", []string{"cache-dir", "json", "verbose"}, argsNone},
	modeCacheClear: {"cache-clear", []string{"cache-dir", "json", "verbose"}, argsNone},
	modeVersion:    {"version", nil, argsNone},
	modeHelp:       {"help", nil, argsNone},
}

// doctorModes are the modes whose plan --doctor can be asked for, beside the
// launch's: those that build an entry.
var doctorModes = []mode{modeLink, modeCDI, modeHook}

// String returns the mode as its flag spells it ("--doctor"), "a launch"
// for the launch.
func (m mode) String() string {
	if m < 0 || m >= numModes {
		return fmt.Sprintf("mode(%d)", int(m))
	}
	if m == modeLaunch {
		return "a launch"
	}
	f, _ := cli.Lookup(cli.Flags, modeRules[m].flag)
	return f.Display()
}

// flagKey names f as modeRules does: its Long, else its Short.
func flagKey(f cli.Flag) string {
	if f.Long != "" {
		return f.Long
	}
	return f.Short
}

// flagDisplay spells the flag modeRules names key, GNU style.
func flagDisplay(key string) string {
	f, _ := cli.Lookup(cli.Flags, key)
	return f.Display()
}

// parseArgs parses the flags before PROGRAM, everything from PROGRAM on
// being PROGRAM's, untouched, and sets c.mode (and c.doctorOf).
func parseArgs(args []string) (*config, error) {
	if err := cli.Check(cli.Flags, args); err != nil {
		return nil, err
	}
	c := &config{}
	var dirs dirList
	fs, err := newFlagSet(c, &dirs)
	if err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		// cli.Check refuses all that Parse would; this is a backstop.
		return nil, err
	}
	c.dirs = dirs
	c.program = fs.Args()
	// The flags given, by key, in the table's order.
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) {
		if f, ok := cli.Lookup(cli.Flags, fl.Name); ok {
			set[flagKey(f)] = true
		}
	})
	var given []string
	for _, f := range cli.Flags {
		if set[flagKey(f)] {
			given = append(given, flagKey(f))
		}
	}
	if c.mode, c.doctorOf, err = pickMode(given, c.program); err != nil {
		return nil, err
	}
	return c, nil
}

// pickMode returns the mode the flags given (keys, in the table's order)
// and the words after them ask for, and for the doctor, the mode whose plan
// it shows; or the usage error that names what does not go together.
func pickMode(given, program []string) (m, of mode, err error) {
	if slices.Contains(given, "help") {
		// Asking for help is answered whatever else is on the line.
		return modeHelp, modeLaunch, nil
	}
	var modes []mode
	for m := modeLaunch + 1; m < numModes; m++ {
		if slices.Contains(given, modeRules[m].flag) {
			modes = append(modes, m)
		}
	}
	m, of = modeLaunch, modeLaunch
	switch {
	case len(modes) == 1:
		m = modes[0]
	case len(modes) == 2 && modes[0] == modeDoctor && slices.Contains(doctorModes, modes[1]):
		m, of = modeDoctor, modes[1]
	case len(modes) > 1:
		var names []string
		for _, x := range modes {
			names = append(names, x.String())
		}
		return 0, 0, fmt.Errorf("%s exclude each other: give one", andList(names))
	}
	rule := modeRules[m]
	options, takes := rule.options, rule.args
	what := m.String()
	if of != modeLaunch {
		// The doctor of a system mode or the hook takes that mode's
		// flags and --json, and nothing after them: it shows the entry
		// that mode would build (the hook's for any DRV).
		options, takes = withFlags(modeRules[of].options, "json"), argsNone
		what += " " + of.String()
	}
	for _, k := range given {
		if k == rule.flag || (of != modeLaunch && k == modeRules[of].flag) || slices.Contains(options, k) {
			continue
		}
		return 0, 0, optionError(k, what)
	}
	switch {
	case takes == argsProgram && len(program) == 0:
		return 0, 0, errors.New("no PROGRAM given")
	case takes == argsNone && len(program) > 0:
		return 0, 0, fmt.Errorf("%s takes no PROGRAM (got %q)", what, program[0])
	case takes == argsDrv && (len(program) < 1 || len(program) > 2):
		return 0, 0, fmt.Errorf("%s takes DRV [SANDBOX]", what)
	}
	return m, of, nil
}

// optionError says that the flag key does not go with what (a mode, as
// String spells it), and what it goes with where that is short to say.
func optionError(key, what string) error {
	var with []string
	for m := modeLaunch; m < numModes; m++ {
		if slices.Contains(modeRules[m].options, key) {
			with = append(with, m.String())
		}
	}
	if len(with) > 0 && len(with) <= 5 {
		return fmt.Errorf("%s goes with %s, not with %s", flagDisplay(key), orList(with), what)
	}
	return fmt.Errorf("%s does not go with %s", flagDisplay(key), what)
}

// andList joins names as "a and b", "a, b and c".
func andList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// orList joins names as "a or b", "a, b or c".
func orList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// hookArgs turns a hook invocation by name (argv[0] is hookName) into
// nixglhost's arguments; other invocations are returned unchanged.
func hookArgs(argv0 string, args []string) []string {
	if filepath.Base(argv0) != hookName {
		return args
	}
	// Nix passes absolute paths only, so they cannot pass for flags; a
	// wrapper script may put flags before them.
	return append([]string{"--nix-pre-build-hook"}, args...)
}
