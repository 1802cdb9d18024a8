package main

// --cdi-spec: the CDI spec that gives containers the GPU with no wrapper
// (DESIGN.md, "Containers").

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/cdi"
	"github.com/nixglhost/nixglhost/pkg/elfscan"
)

// writeCDISpec is --cdi-spec: build (or find) the self-contained entry in
// the system cache, seen at /run/opengl-driver in the container, and write
// the spec naming it, its host files and the GPUs' device nodes.
func writeCDISpec(c *config, stdout, stderr io.Writer, environ []string) error {
	dir, err := filepath.Abs(c.cdiDir)
	if err != nil {
		return fmt.Errorf("--cdi-dir %s: %w", c.cdiDir, err)
	}
	// Refuse a CDI directory or spec file that is not ours before the
	// system cache is made or an entry built (cdi.Write checks again).
	if err := cdi.Check(dir); err != nil {
		return fmt.Errorf("%w%s", err, rootHint(err))
	}
	s, err := newSystemSetup(c, stderr, environ)
	if err != nil {
		return err
	}
	// Shared: a system-mode run does not prune while the entry is chosen.
	unlock, err := s.lock(unix.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := s.prepare(c, elfscan.Ident{}, cdi.RunOpenGLDriver)
	if err != nil {
		return err
	}
	paths, err := entryPaths(s.root, p.Dir)
	if err != nil {
		return err
	}
	var host []string
	for _, l := range paths[1:] {
		if !strings.HasPrefix(l, "/dev/") {
			host = append(host, l)
		}
	}
	gpus, err := cdi.ReadGPUs(s.root)
	if err != nil {
		return err
	}
	spec, err := cdi.Build(s.root, p.Dir, host, gpus)
	if err != nil {
		return err
	}
	changed, err := cdi.Write(dir, spec)
	if err != nil {
		return fmt.Errorf("%w%s", err, rootHint(err))
	}
	state := "written"
	if !changed {
		state = "already up to date"
	}
	fmt.Fprintf(stdout, "%s: %s (cdiVersion %s, entry %s, %d GPUs: %s=all", filepath.Join(dir, cdi.FileName), state, spec.Version, p.Dir, len(gpus), cdi.Kind)
	for _, g := range gpus {
		fmt.Fprintf(stdout, ", =%s, =%s", g.Minor, g.UUID)
	}
	fmt.Fprintln(stdout, ")")
	return nil
}
