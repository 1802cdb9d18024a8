package hostdrivers

// This file builds a cache entry as its Plan says.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// build makes the entry in dir (a fresh temporary directory): the links
// and copies of lib/ and deps/, the backends, the vendor files, then the
// manifest, each as the plan says.
func build(o *Options, dir string, pl *Plan) (*Manifest, error) {
	b := &builder{o: o, pl: pl, dir: dir, lib: filepath.Join(dir, "lib"), deps: filepath.Join(dir, "deps"),
		driDir: mesaDRIDir(pl.Selection), exposed: map[string]bool{}, apis: map[catalog.API]bool{}, patchedSrc: map[string]string{}}
	for _, d := range []string{b.lib, b.deps} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	for _, step := range []func() error{b.driverFiles, b.hiddenDeps, b.backendFiles} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	o.hook("links")
	if err := runJobs(len(b.jobs), b.patch); err != nil {
		return nil, err
	}
	o.hook("patched")
	outs, err := writeVendor(dir, pl.Vendor)
	if err != nil {
		return nil, fmt.Errorf("cache entry %s: %w", dir, err)
	}
	m := b.manifest(outs)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	o.hook("data")
	// The manifest is written last: its presence marks a complete entry.
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("cache entry %s: %w", dir, err)
	}
	return m, nil
}

// builder is one build's state: where the entry is, what lib/ exposes so
// far, and the copies left to patch.
type builder struct {
	o              *Options
	pl             *Plan
	dir, lib, deps string
	driDir         string
	jobs           []patchJob
	exposed        map[string]bool
	apis           map[catalog.API]bool
	// patchedSrc maps each name in lib/ of a patched copy to its host file.
	patchedSrc map[string]string
}

// patchJob is one patched copy to make; the jobs run in parallel.
type patchJob struct {
	src, dst, runpath string
	// rpath writes runpath as a DT_RPATH (a driver file's copy in a
	// self-contained entry, or Mesa's: see copyRpath).
	rpath bool
	// dri, when set, replaces the copy's compiled-in DRI driver search
	// path (driDir...) with itself.
	dri string
}

// driverFiles puts each chosen driver file in lib/: a link, a shim, or a
// patch job; then its other names as links to it.
func (b *builder) driverFiles() error {
	root, log := b.pl.Root, b.o.logger()
	for _, f := range b.pl.Selection.Files {
		hp := ldpath.HostPath(root, f.Real)
		dst := filepath.Join(b.lib, f.Base)
		switch f.Mode {
		case ModePatched:
			j := patchJob{src: hp, dst: dst, runpath: driverRunpath, rpath: copyRpath(b.o.SelfContained, f)}
			if b.driDir != "" && f.entry.DRILoader {
				j.dri = "$ORIGIN"
			}
			b.jobs = append(b.jobs, j)
			b.patchedSrc[f.Base] = hp
		case ModeShim:
			if err := writeShim(b.deps, hp, dst, f); err != nil {
				return err
			}
		default:
			if err := os.Symlink(hp, dst); err != nil {
				return err
			}
		}
		b.exposed[f.Base] = true
		for _, l := range f.Links {
			if err := os.Symlink(f.Base, filepath.Join(b.lib, l)); err != nil {
				return err
			}
			b.exposed[l] = true
			if f.Mode == ModePatched {
				b.patchedSrc[l] = hp
			}
		}
		b.apis[f.API] = true
		log.Debug("driver file", "name", f.Base, "from", f.Real, "mode", f.Mode, "links", f.Links)
	}
	return nil
}

// hiddenDeps puts each hidden dependency in deps/: a link or a patch job,
// and its soname as a link when the file's name differs.
func (b *builder) hiddenDeps() error {
	root, log := b.pl.Root, b.o.logger()
	for _, d := range b.pl.Closure.Deps {
		hp := ldpath.HostPath(root, d.Real)
		base := path.Base(d.Real)
		dst := filepath.Join(b.deps, base)
		if _, err := os.Lstat(dst); err == nil {
			// Two sonames resolving to one file: link the second name.
		} else if d.Mode == ModePatched {
			j := patchJob{src: hp, dst: dst, runpath: depRunpath}
			if b.driDir != "" && strings.HasPrefix(d.Name, "libgbm.so") {
				// libgbm's DRI backend looks for the same drivers.
				j.dri = "$ORIGIN/../lib"
			}
			b.jobs = append(b.jobs, j)
		} else if err := os.Symlink(hp, dst); err != nil {
			return err
		}
		if d.Name != base {
			if err := os.Symlink(base, filepath.Join(b.deps, d.Name)); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
		}
		log.Debug("hidden dependency", "name", d.Name, "from", d.Real, "mode", d.Mode, "for", d.For)
	}
	return nil
}

// backendFiles makes the GBM and VDPAU backends (links, or patch jobs for
// the copies) and the companion's per-platform VDPAU links.
func (b *builder) backendFiles() error {
	copies, err := backends(b.lib, b.exposed, b.patchedSrc)
	if err != nil {
		return err
	}
	if err := makeVDPAUPlatformLinks(b.lib, b.pl.VDPAULinks); err != nil {
		return err
	}
	for _, c := range copies {
		b.jobs = append(b.jobs, patchJob{src: c[0], dst: c[1], runpath: backendRunpath})
	}
	return nil
}

// patch makes the copy of job i: its search path, and its DRI directory
// when it has one. A DRI rewrite that matches nothing fails the build: the
// copy would load the host's drivers.
func (b *builder) patch(i int) error {
	j := b.jobs[i]
	patch := elfscan.PatchRunpath
	if j.rpath {
		patch = elfscan.PatchRpath
	}
	if err := patch(j.src, j.dst, j.runpath); err != nil {
		return err
	}
	if j.dri == "" {
		return nil
	}
	n, err := elfscan.ReplaceRodataString(j.dst, b.driDir, j.dri)
	if err != nil {
		return fmt.Errorf("%s: DRI search path: %w", j.src, err)
	}
	if n == 0 {
		// Its loader would keep looking in the host's directory.
		return fmt.Errorf("%s: the DRI drivers' directory %s is not compiled into it: its copy would load the host's drivers", j.src, b.driDir)
	}
	b.o.logger().Debug("DRI search path", "file", j.dst, "was", b.driDir, "now", j.dri, "strings", n)
	return nil
}

// manifest describes the entry built: the plan's decisions and the vendor
// files written (outs).
func (b *builder) manifest(outs []DataOut) *Manifest {
	pl, sel, cl, t := b.pl, b.pl.Selection, b.pl.Closure, b.pl.Target
	var apiList []catalog.API
	for a := range b.apis {
		apiList = append(apiList, a)
	}
	for _, d := range outs {
		if !b.apis[d.API] {
			b.apis[d.API] = true
			apiList = append(apiList, d.API)
		}
	}
	sort.Slice(apiList, func(i, j int) bool { return apiList[i] < apiList[j] })
	return &Manifest{
		Format: FormatVersion, Key: pl.Key, Root: pl.Root, Host: hostName(), Mode: pl.Mode, SeenAt: pl.SeenAt,
		Class: t.Class.String(), Machine: t.Machine.String(),
		DriverVersion: sel.Version, ModuleVersion: pl.Module, Reason: sel.Reason, Compat: sel.Compat,
		APIs: apiList, Files: sel.Files, Deps: cl.Deps, Data: outs,
		Missing: cl.Missing, Skipped: append(sel.Skipped, pl.VendorSkipped...),
		GlibcNeeds: glibcNeeds(sel.Files, cl.Deps),
	}
}

// backends adds the GBM and VDPAU backends NVIDIA's installer makes:
// lib/gbm/nvidia-drm_gbm.so for libnvidia-allocator.so.1 and
// lib/vdpau/libvdpau_nvidia.so.1 for the VDPAU driver. A backend whose
// library is a link in lib/ is a link to it; one whose library is a
// patched copy needs a copy of its own (see backendRunpath): those are
// returned as {host file, destination} pairs for the caller to patch.
func backends(lib string, exposed map[string]bool, patchedSrc map[string]string) ([][2]string, error) {
	var copies [][2]string
	for _, l := range backendsOf(exposed) {
		d := filepath.Join(lib, l.sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		dst := filepath.Join(d, l.name)
		if src, ok := patchedSrc[l.target]; ok {
			copies = append(copies, [2]string{src, dst})
			continue
		}
		if err := os.Symlink("../"+l.target, dst); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	return copies, nil
}

// mesaDRIDir returns the host directory of the DRI drivers sel holds
// ("/usr/lib/x86_64-linux-gnu/dri"), or "". Mesa's loaders (libEGL_mesa,
// libGLX_mesa, libgbm) have it compiled in as the first element of their
// search path; their copies get "$ORIGIN" there instead, which dlopen
// expands to the directory of the loader that calls it (the entry's lib/),
// so that an entry with no environment (system mode, /run/opengl-driver)
// loads the entry's DRI drivers and not the host's, whose generic
// libraries a Nix program's loader cannot find. LIBGL_DRIVERS_PATH, which
// the wrapper sets, still comes first. See docs/DESIGN.md, "Mesa".
func mesaDRIDir(sel *Selection) string {
	for _, f := range sel.Files {
		if f.API == catalog.APIDRI && strings.HasSuffix(f.Base, "_dri.so") {
			return path.Dir(f.Real)
		}
	}
	return ""
}

// backendLink is a backend in lib/<sub>/<name>, for the library target
// of lib/.
type backendLink struct{ sub, name, target string }

// backendsOf returns the backends an entry whose lib/ holds exposed gets.
func backendsOf(exposed map[string]bool) []backendLink {
	var out []backendLink
	for _, l := range backendLinks {
		if exposed[l.target] {
			out = append(out, l)
		}
	}
	return out
}

// runJobs runs n jobs on up to GOMAXPROCS goroutines and returns the first
// error.
func runJobs(n int, f func(int) error) error {
	if n == 0 {
		return nil
	}
	workers := min(runtime.GOMAXPROCS(0), n)
	next := make(chan int)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	// The first error only: when the disk is full every job fails the
	// same way, and the cause is said once.
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// syncTree fsyncs every regular file and directory under dir (symlinks
// need nothing: they are written with their directory).
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// syncDir fsyncs the directory dir, so that a rename into it is durable;
// a failure costs only a rebuild after a crash, so it is not reported.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}
