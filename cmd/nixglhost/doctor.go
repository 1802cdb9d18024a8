package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/nixglhost/nixglhost/pkg/elfscan"

	"github.com/nixglhost/nixglhost/internal/program"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/doctor"
)

// runDoctor runs --doctor: it prints doctor.Report as text, or as JSON
// with --json (the fields are documented on doctor.Report), and
// returns 0 when nothing blocks, 1 when a finding will make PROGRAM fail
// or the doctor cannot run. It builds no cache entry.
func runDoctor(c *config, stdout, stderr io.Writer, environ []string) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "nixglhost: %v\n", err)
		return 1
	}
	o, do, err := doctorInputs(c, stderr, environ)
	if err != nil {
		return fail(err)
	}
	root := o.HostRoot()
	if len(c.program) > 0 {
		prog, err := program.Find(c.program[0], environ)
		if err != nil {
			return fail(err)
		}
		do.ProgramPath = prog.Path
		do.Program = prog.ELF
		do.NixLD = prog.FHS && program.NixLDPresent(root, environ)
	}
	r, err := doctor.Doctor(o, do)
	if err != nil {
		return fail(err)
	}
	if c.json {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		fmt.Fprint(stdout, r.Text())
	}
	if r.Blocking > 0 {
		return 1
	}
	return 0
}

// doctorInputs returns the options, cache and doctor options of the mode
// the doctor is asked about: a launch's by default, or with the flags of
// a root mode (--link-run-opengl-driver, --cdi-spec, --hook), that mode's
// own (systemSetup.options), so that the report is the plan that mode
// would act on, its 32-bit companion included.
func doctorInputs(c *config, stderr io.Writer, environ []string) (*hostdrivers.Options, doctor.DoctorOptions, error) {
	do := doctor.DoctorOptions{Environ: environ, StoreDir: getenv(environ, "NIX_STORE_DIR")}
	switch {
	case c.linkRun:
		do.Mode = "system"
	case c.hook:
		do.Mode = "hook"
	case c.cdiSpec:
		do.Mode = "cdi"
	default:
		// The launch's own set-up (its cache root, an explicit symlink
		// resolved), so that the doctor judges what the launch would use.
		s, err := newLaunchSetup(c, stderr, environ)
		if err != nil {
			return nil, do, err
		}
		do.Mode, do.Companion, do.CacheDir = "launch", !c.printPath, s.cacheDir
		return s.opts, do, nil
	}
	seenAt, seenAt32, err := rootPlaces(c)
	if err != nil {
		return nil, do, err
	}
	s, err := newSystemSetup(c, stderr, environ)
	if err != nil {
		return nil, do, err
	}
	o, err := s.options(c, elfscan.Ident{}, seenAt, seenAt32)
	if err != nil {
		return nil, do, err
	}
	do.Companion = seenAt32 != ""
	do.CacheDir = s.cacheDir
	return o, do, nil
}

// launchWarnings returns the lines the launch path prints before exec, one
// per blocking finding it can see cheaply (see hostdrivers.LaunchWarnings).
//
// The glibc check reads the program's libc, so it is made only where a
// mismatch can happen: a program with its own glibc (a Nix program). An
// FHS program on the host uses the host's glibc, which the host's driver
// was built for; one under nix-ld runs with a Nix glibc and is checked.
func launchWarnings(p *hostdrivers.Prepared, prog *program.Program, nixLD bool, environ []string) []string {
	if p == nil || prog == nil {
		return nil
	}
	interp := prog.Interp
	if prog.FHS && !nixLD {
		interp = ""
	}
	return hostdrivers.LaunchWarnings(p.Manifest, interp, environ)
}
