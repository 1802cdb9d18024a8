package main

// The Nix pre-build hook: for a derivation whose requiredSystemFeatures name
// a GPU feature, print the sandbox paths that give its builder the host's
// driver at /run/opengl-driver and the GPU device nodes.
//
// Nix runs the hook (nix.conf `pre-build-hook`, a program path with no
// arguments of its own) as `HOOK DRV [SANDBOX]` before each build and reads
// its stdout: the line "extra-sandbox-paths", then one path per line
// ("path", or "inside=outside"), then an empty line. Any other first line,
// or a non-zero exit, fails the build. Nix takes no "?" (optional) suffix
// from a hook, so only paths that exist are printed.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/drv"
	"github.com/nixglhost/nixglhost/internal/sandbox"
	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

const (
	// hookName is the name under which nixglhost acts as the hook with no
	// flag (a symlink to nixglhost), since Nix passes the hook no arguments
	// of its own.
	hookName = "nixglhost-pre-build-hook"
	// hookFeaturesEnv configures the features when --hook-features is not
	// given: names separated by commas or spaces.
	hookFeaturesEnv = "NIXGLHOST_HOOK_FEATURES"
)

// defaultHookFeatures are the requiredSystemFeatures that get the GPU;
// what each gets is its sandbox.Feature.Grant (rocm: the device nodes
// /dev/kfd and /dev/dri only, as ROCm's userspace comes from Nix itself).
var defaultHookFeatures = []sandbox.Feature{sandbox.CUDA, sandbox.OpenGL, sandbox.NVIDIAGPU, sandbox.ROCm}

// hookFeatures returns the configured features: the flag, the environment,
// or the default.
func hookFeatures(flagVal string, environ []string) []sandbox.Feature {
	v := flagVal
	if v == "" {
		v = getenv(environ, hookFeaturesEnv)
	}
	var fs []sandbox.Feature
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		fs = append(fs, sandbox.Feature(f))
	}
	if len(fs) == 0 {
		return defaultHookFeatures
	}
	return fs
}

// preBuildHook is --nix-pre-build-hook DRV [SANDBOX]. It prints nothing
// for a derivation that needs no GPU feature, and nothing (with a note on
// stderr) when the .drv is not on this machine (Nix may call the hook for
// a remote build). A .drv it cannot read or parse, or a GPU derivation on
// a host without a driver, is an error: nothing on stdout, exit 1, and Nix
// fails that build with the message.
//
// It is long because it is the hook's protocol, step after step: read the
// derivation, decide, prepare, check, print.
func preBuildHook(c *config, stdout, stderr io.Writer, environ []string) error {
	drvPath, sandboxDir := c.program[0], ""
	if len(c.program) == 2 {
		sandboxDir = c.program[1]
	}
	// Only the features are read, streaming: the hook runs before every
	// build of every user, and a .drv is any user's input.
	required, err := readDrvFeatures(drvPath, sandboxDir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "nixglhost: pre-build hook: %s is not on this machine: no sandbox paths\n", drvPath)
		return nil
	}
	if err != nil {
		return fmt.Errorf("pre-build hook: %w", err)
	}
	want := hookFeatures(c.hookFeatures, environ)
	var matched []sandbox.Feature
	var names []string
	for _, r := range required {
		if f := sandbox.Feature(r); slices.Contains(want, f) && !slices.Contains(matched, f) {
			matched = append(matched, f)
			names = append(names, r)
		}
	}
	if len(matched) == 0 {
		return nil
	}
	grant := sandbox.GrantFor(matched)
	s, err := newSystemSetup(c, stderr, environ)
	if err != nil {
		return err
	}
	s.log.Debug("derivation needs the GPU", "drv", drvPath, "features", names, "entry", grant.Entry, "devices", grant.Devices.String())
	if !grant.Entry {
		devs, err := sandbox.DeviceNodes(s.root, grant.Devices)
		if err != nil {
			return fmt.Errorf("pre-build hook: %w", err)
		}
		return writeSandboxPaths(stdout, devs)
	}
	// Shared: a system-mode run does not prune while the entry is chosen.
	unlock, err := s.lock(unix.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	// The sandbox sees the entry at /run/opengl-driver and its 32-bit
	// companion, where the host has the 32-bit driver, at NixOS's
	// /run/opengl-driver-32, as system mode links them.
	seenAt, seenAt32, err := rootPlaces(c)
	if err != nil {
		return err
	}
	o, err := s.options(c, elfscan.Ident{}, seenAt, seenAt32)
	if err != nil {
		return err
	}
	if err := s.mkCacheDir(); err != nil {
		return err
	}
	sess := new(hostdrivers.Session)
	p, err := s.serve(sess.Prepare(o, s.cacheDir))
	if err != nil {
		return fmt.Errorf("pre-build hook: derivation %s requires %s: %w", drvPath, strings.Join(names, ", "), err)
	}
	paths, err := sandboxPaths(s.root, p.Dir, 0)
	if err != nil {
		return fmt.Errorf("pre-build hook: %w", err)
	}
	if _, ok := hostdrivers.CompanionOptions(o); ok {
		p32, err := s.serve(sess.PrepareCompanion(o, s.cacheDir))
		var noDriver *hostdrivers.NoDriverError
		switch {
		case errors.As(err, &noDriver):
		case err != nil:
			// The 64-bit driver still serves the build.
			fmt.Fprintf(stderr, "nixglhost: warning: pre-build hook: the 32-bit driver: %v; %s is not given\n", err, sandbox.RunOpenGLDriver32)
		default:
			more, err := sandboxPathsAt(s.root, sandbox.RunOpenGLDriver32, p32.Dir, 0)
			if err != nil {
				return fmt.Errorf("pre-build hook: %w", err)
			}
			for _, l := range more {
				if !slices.Contains(paths, l) {
					paths = append(paths, l)
				}
			}
		}
	}
	devs, err := sandbox.DeviceNodes(s.root, grant.Devices)
	if err != nil {
		return fmt.Errorf("pre-build hook: %w", err)
	}
	return writeSandboxPaths(stdout, append(paths, devs...))
}

// entryPaths returns the sandbox lines of the entry at dir and the host
// files its links lead to, checked as sandboxPaths does, with no device
// nodes: --cdi-spec lists those per GPU itself.
func entryPaths(root, dir string) ([]string, error) {
	return sandboxPaths(root, dir, 0)
}

// sandboxPaths returns the sandbox lines of the entry at dir and the device
// nodes of devs (sandbox.Paths), each host file checked again against the
// entry's manifest: only files the entry was built from are bound into a
// sandbox or mounted into a container; a link replaced in the entry binds
// nothing. Each one's whole path is checked as it is now
// (hostdrivers.CheckTrustedPath): the sandbox and the container runtime
// open it by that path.
func sandboxPaths(root, dir string, devs sandbox.Devices) ([]string, error) {
	return sandboxPathsAt(root, sandbox.RunOpenGLDriver, dir, devs)
}

// sandboxPathsAt is sandboxPaths for an entry seen at inside.
func sandboxPathsAt(root, inside, dir string, devs sandbox.Devices) ([]string, error) {
	paths, err := sandbox.PathsAt(root, inside, dir, devs)
	if err != nil {
		return nil, err
	}
	m, err := hostdrivers.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	for _, l := range paths[1:] {
		if strings.HasPrefix(l, "/dev/") {
			continue
		}
		if err := m.Covers(l); err != nil {
			return nil, fmt.Errorf("cache entry %s: %w; remove the entry and run again", dir, err)
		}
		// Bound and mounted by this path, later: the whole path must
		// be root's.
		if err := hostdrivers.CheckTrustedPath(l); err != nil {
			return nil, fmt.Errorf("cache entry %s: %w", dir, err)
		}
	}
	return paths, nil
}

// writeSandboxPaths prints the hook's answer in one write: all or
// nothing, Nix must not see half a list.
func writeSandboxPaths(stdout io.Writer, paths []string) error {
	var b bytes.Buffer
	b.WriteString("extra-sandbox-paths\n")
	for _, l := range paths {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n")
	_, err := stdout.Write(b.Bytes())
	return err
}

// readDrvFeatures reads the derivation's requiredSystemFeatures. With a chroot store (nix --store DIR), Nix
// passes the store path as /nix/store/X.drv while the file is DIR/nix/store/X.drv
// and the sandbox is DIR/nix/store/X.drv.chroot: the sandbox path says where.
func readDrvFeatures(drvPath, sandboxDir string) ([]string, error) {
	features, err := drv.ReadFeatures(drvPath)
	if errors.Is(err, fs.ErrNotExist) && filepath.Base(sandboxDir) == filepath.Base(drvPath)+".chroot" {
		alt := filepath.Join(filepath.Dir(sandboxDir), filepath.Base(drvPath))
		if f2, err2 := drv.ReadFeatures(alt); !errors.Is(err2, fs.ErrNotExist) {
			return f2, err2
		}
	}
	return features, err
}
