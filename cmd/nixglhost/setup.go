package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// This file is the one set-up path every mode shares: the logger, the
// driver root and the -d directories; launchSetup adds the user's cache
// roots for the launch, -p, --print-env and --doctor (system mode and the
// hook use the system cache instead).

// driverRoot returns --driver-root made absolute, checked to be a directory.
func driverRoot(c *config) (string, error) {
	root, err := filepath.Abs(c.driverRoot)
	if err != nil {
		return "", fmt.Errorf("--driver-root %s: %w", c.driverRoot, err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("--driver-root %s: not a directory", c.driverRoot)
	}
	return root, nil
}

// driverDirs returns the -d directories as paths inside root: relative
// ones are made absolute against the working directory when root is /, and
// refused otherwise.
func driverDirs(c *config, root string) ([]string, error) {
	var out []string
	for _, d := range c.dirs {
		if root == "/" {
			abs, err := filepath.Abs(d)
			if err != nil {
				return nil, fmt.Errorf("-d %s: %w", d, err)
			}
			d = abs
		} else if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("-d %s: give a path inside --driver-root %s, starting with /", d, root)
		}
		out = append(out, filepath.Clean(d))
	}
	return out, nil
}

// launchSetup is what a user-mode run derives from its flags and
// environment.
type launchSetup struct {
	log *slog.Logger
	// cacheDir and fallbacks are the cache roots, in order (cacheDirs).
	cacheDir  string
	fallbacks []string
	// opts are the discovery options: root, -d, the caller's
	// LD_LIBRARY_PATH less the cache roots' entries.
	opts *hostdrivers.Options
}

// newLaunchSetup is the set-up of the launch, -p, --print-env and --doctor.
func newLaunchSetup(c *config, stderr io.Writer, environ []string) (*launchSetup, error) {
	s := &launchSetup{log: newLogger(c, stderr, environ)}
	root, err := driverRoot(c)
	if err != nil {
		return nil, err
	}
	if s.cacheDir, s.fallbacks, err = cacheDirs(c.cacheDir, environ); err != nil {
		return nil, err
	}
	s.opts = &hostdrivers.Options{Root: root, Logger: s.log, Mesa: c.mesa, MesaOnly: c.mesaOnly,
		LibraryPath: withoutCache(getenv(environ, "LD_LIBRARY_PATH"), append(s.fallbacks, s.cacheDir)...)}
	if s.opts.Dirs, err = driverDirs(c, root); err != nil {
		return nil, err
	}
	return s, nil
}

// newLogger returns a logger to stderr with -v, NIXGLHOST_DEBUG or DEBUG
// (see debugOn), else a discarding one. Every mode sets up its logger here.
func newLogger(c *config, stderr io.Writer, environ []string) *slog.Logger {
	if c.verbose || debugOn(environ) {
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// debugOn reports whether the environment asks for debug output:
// NIXGLHOST_DEBUG, or DEBUG (nix-gl-host's spelling), set to 1, true or yes
// in any case. Anything else, DEBUG=false or DEBUG=0 included, leaves it
// off: debug output lands in the program's own stderr.
func debugOn(environ []string) bool {
	for _, name := range []string{"NIXGLHOST_DEBUG", "DEBUG"} {
		switch strings.ToLower(getenv(environ, name)) {
		case "1", "true", "yes":
			return true
		}
	}
	return false
}
