package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	log := newLogger(c, stderr, environ)
	root, err := filepath.Abs(c.driverRoot)
	if err != nil {
		return fail(fmt.Errorf("--driver-root %s: %w", c.driverRoot, err))
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return fail(fmt.Errorf("--driver-root %s: not a directory", c.driverRoot))
	}
	// The launch's own choice of cache root (an explicit symlink resolved),
	// so that the doctor judges the directory the launch would use.
	cache, _, err := cacheDirs(c.cacheDir, environ)
	if err != nil {
		return fail(err)
	}
	o := &hostdrivers.Options{Root: root, Logger: log, LibraryPath: withoutCache(getenv(environ, "LD_LIBRARY_PATH"), cache)}
	for _, d := range c.dirs {
		if root == "/" {
			if d, err = filepath.Abs(d); err != nil {
				return fail(fmt.Errorf("-d %s: %w", d, err))
			}
		} else if !filepath.IsAbs(d) {
			return fail(fmt.Errorf("-d %s: give a path inside --driver-root %s, starting with /", d, root))
		}
		o.Dirs = append(o.Dirs, filepath.Clean(d))
	}
	do := doctor.DoctorOptions{Environ: environ, CacheDir: cache, StoreDir: getenv(environ, "NIX_STORE_DIR")}
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
