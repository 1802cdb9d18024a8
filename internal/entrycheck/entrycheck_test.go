package entrycheck_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/entrycheck"
	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// goodEntries builds, on a Debian root with the real 535 driver, a wrapper
// entry and a self-contained one (system mode's, seen at /run/x).
func goodEntries(t *testing.T) (root, wrapper, selfContained string) {
	t.Helper()
	root = fixtures.DebianRoot(t, "amd64")
	p, err := hostdrivers.Prepare(&hostdrivers.Options{Root: root}, t.TempDir())
	fixtures.Must(t, err)
	s, err := hostdrivers.Prepare(&hostdrivers.Options{Root: root, SelfContained: true, SeenAt: "/run/x"}, t.TempDir())
	fixtures.Must(t, err)
	return root, p.Dir, s.Dir
}

// copyEntry copies the entry at src, links as links, to a directory of
// the same name (its key) and returns it.
func copyEntry(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
	return dst
}

// firstIn returns the entry-relative path of the first file of dir (in
// the entry e) that pred accepts.
func firstIn(t *testing.T, e, dir string, pred func(p string, fi os.FileInfo) bool) string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e, dir))
	fixtures.Must(t, err)
	for _, d := range ents {
		p := filepath.Join(e, dir, d.Name())
		fi, err := os.Lstat(p)
		fixtures.Must(t, err)
		if pred(p, fi) {
			return filepath.Join(dir, d.Name())
		}
	}
	t.Fatalf("no file of %s in %s fits", dir, e)
	return ""
}

func isLink(_ string, fi os.FileInfo) bool    { return fi.Mode()&os.ModeSymlink != 0 }
func isRegular(_ string, fi os.FileInfo) bool { return fi.Mode().IsRegular() }

// hostLink is a lib/ or deps/ name that links to a host file.
func hostLink(p string, fi os.FileInfo) bool {
	t, _ := os.Readlink(p)
	return isLink(p, fi) && filepath.IsAbs(t)
}

// invariants returns the invariants err reports, sorted and unique.
func invariants(t *testing.T, err error) []entrycheck.Invariant {
	t.Helper()
	if err == nil {
		return nil
	}
	var e *entrycheck.Error
	if !errors.As(err, &e) {
		t.Fatalf("Entry = %v, not an *entrycheck.Error", err)
	}
	var out []entrycheck.Invariant
	for _, v := range e.Violations {
		if !slices.Contains(out, v.Invariant) {
			out = append(out, v.Invariant)
		}
	}
	slices.Sort(out)
	return out
}

// TestEntry: the entries a launch and system mode build pass; each way of
// breaking one of DESIGN's invariants, done to a copy of a good entry, is
// reported as that invariant's violation, with exactly the others the
// change also breaks (a link to a file the manifest does not record is
// also a link that leads out).
func TestEntry(t *testing.T) {
	root, wrapper, selfContained := goodEntries(t)
	for _, e := range []string{wrapper, selfContained} {
		if err := entrycheck.Entry(e); err != nil {
			t.Fatalf("a freshly built entry: %v", err)
		}
	}
	host := func(p string) string { return filepath.Join(root, p) }
	libc := host("/usr/lib/x86_64-linux-gnu/libc.so.6")
	for _, tc := range []struct {
		name  string
		entry string // the entry to copy: wrapper or selfContained
		// corrupt breaks the copy e.
		corrupt func(t *testing.T, e string)
		want    []entrycheck.Invariant
	}{
		{name: "good wrapper", entry: wrapper, corrupt: func(*testing.T, string) {}},
		{name: "good self-contained", entry: selfContained, corrupt: func(*testing.T, string) {}},
		{name: "libc in deps", entry: wrapper, want: []entrycheck.Invariant{entrycheck.DepsHidden, entrycheck.LinksStayIn, entrycheck.NoLibc},
			corrupt: func(t *testing.T, e string) {
				fixtures.Must(t, os.Symlink(libc, filepath.Join(e, "deps", "libc.so.6")))
			}},
		{name: "libgcc_s renamed in deps", entry: wrapper, want: []entrycheck.Invariant{entrycheck.LinksStayIn, entrycheck.NoLibc},
			corrupt: func(t *testing.T, e string) {
				// A dependency's link now leads to libgcc_s.
				d := firstIn(t, e, "deps", hostLink)
				fixtures.Must(t, os.Remove(filepath.Join(e, d)))
				fixtures.Must(t, os.Symlink(host("/usr/lib/x86_64-linux-gnu/libgcc_s.so.1"), filepath.Join(e, d)))
			}},
		{name: "dependency exposed in lib", entry: wrapper, want: []entrycheck.Invariant{entrycheck.DepsHidden, entrycheck.LinksStayIn},
			corrupt: func(t *testing.T, e string) {
				d := firstIn(t, e, "deps", hostLink)
				target, _ := os.Readlink(filepath.Join(e, d))
				fixtures.Must(t, os.Symlink(target, filepath.Join(e, "lib", filepath.Base(d))))
			}},
		{name: "dispatch library in lib", entry: wrapper, want: []entrycheck.Invariant{entrycheck.VendorOnly},
			corrupt: func(t *testing.T, e string) {
				fixtures.Must(t, os.Symlink("libGLX_nvidia.so.0", filepath.Join(e, "lib", "libGL.so.1")))
			}},
		{name: "stray directory in lib", entry: wrapper, want: []entrycheck.Invariant{entrycheck.VendorOnly},
			corrupt: func(t *testing.T, e string) {
				fixtures.Must(t, os.Mkdir(filepath.Join(e, "lib", "dri"), 0o755))
			}},
		{name: "wrapper copy with DT_RPATH", entry: wrapper, want: []entrycheck.Invariant{entrycheck.SearchPath},
			corrupt: func(t *testing.T, e string) { repatch(t, e, elfscan.PatchRpath, entrycheck.DriverRunpath) }},
		{name: "self-contained copy with DT_RUNPATH", entry: selfContained, want: []entrycheck.Invariant{entrycheck.SearchPath},
			corrupt: func(t *testing.T, e string) { repatch(t, e, elfscan.PatchRunpath, entrycheck.DriverRunpath) }},
		{name: "copy with another runpath", entry: wrapper, want: []entrycheck.Invariant{entrycheck.SearchPath},
			corrupt: func(t *testing.T, e string) { repatch(t, e, elfscan.PatchRunpath, "$ORIGIN/../../deps") }},
		{name: "dependency copy reaching lib", entry: wrapper, want: []entrycheck.Invariant{entrycheck.SearchPath},
			corrupt: func(t *testing.T, e string) {
				d := firstIn(t, e, "deps", isRegular)
				m, err := hostdrivers.ReadManifest(e)
				fixtures.Must(t, err)
				for _, dep := range m.Deps {
					if filepath.Base(dep.Real) == filepath.Base(d) {
						fixtures.Must(t, os.Remove(filepath.Join(e, d)))
						fixtures.Must(t, elfscan.PatchRunpath(filepath.Join(m.Root, dep.Real), filepath.Join(e, d), "$ORIGIN:$ORIGIN/../lib"))
						return
					}
				}
				t.Fatalf("%s is not in the manifest", d)
			}},
		{name: "vendor file names a missing library", entry: wrapper, want: []entrycheck.Invariant{entrycheck.VendorFilesResolve},
			corrupt: func(t *testing.T, e string) {
				p := filepath.Join(e, "share", "glvnd", "egl_vendor.d", "10_nvidia.json")
				rewrite(t, p, "libEGL_nvidia.so.0", "libEGL_other.so.0")
			}},
		{name: "vendor file library gone", entry: wrapper, want: []entrycheck.Invariant{entrycheck.ManifestTrue, entrycheck.VendorFilesResolve},
			corrupt: func(t *testing.T, e string) {
				fixtures.Must(t, os.Remove(filepath.Join(e, "lib", "libEGL_nvidia.so.0")))
			}},
		{name: "self-contained vendor file outside seen-at", entry: selfContained, want: []entrycheck.Invariant{entrycheck.VendorFilesResolve},
			corrupt: func(t *testing.T, e string) {
				p := filepath.Join(e, "etc", "OpenCL", "vendors", "nvidia.icd")
				rewrite(t, p, "/run/x/lib/", "/usr/lib/")
			}},
		{name: "host file changed", entry: wrapper, want: []entrycheck.Invariant{entrycheck.ManifestTrue},
			corrupt: func(t *testing.T, e string) {
				m, err := hostdrivers.ReadManifest(e)
				fixtures.Must(t, err)
				later := time.Now().Add(time.Hour)
				// A copy of the root's file would be another root's; touch
				// this root's, which the copy's manifest shares.
				p := filepath.Join(m.Root, m.Files[0].Real)
				fixtures.Must(t, os.Chtimes(p, later, later))
				t.Cleanup(func() {
					fixtures.Must(t, os.Chtimes(p, time.Unix(0, m.Files[0].ID.MtimeNs), time.Unix(0, m.Files[0].ID.MtimeNs)))
				})
			}},
		{name: "key does not name the entry", entry: wrapper, want: []entrycheck.Invariant{entrycheck.ManifestTrue},
			corrupt: func(t *testing.T, e string) {
				rewrite(t, filepath.Join(e, "manifest.json"), `"key": "`+filepath.Base(e), `"key": "`+strings.Repeat("0", 32))
			}},
		{name: "patched copy recorded as a link", entry: wrapper, want: []entrycheck.Invariant{entrycheck.ManifestTrue},
			corrupt: func(t *testing.T, e string) {
				rewrite(t, filepath.Join(e, "manifest.json"), `"mode": "patched"`, `"mode": "link"`)
			}},
		{name: "unlisted vendor file", entry: wrapper, want: []entrycheck.Invariant{entrycheck.ManifestTrue},
			corrupt: func(t *testing.T, e string) {
				fixtures.Write(t, filepath.Join(e, "share", "vulkan", "icd.d", "extra.json"),
					`{"ICD": {"library_path": "../../../lib/libGLX_nvidia.so.0"}}`)
			}},
		{name: "link out of lib", entry: wrapper, want: []entrycheck.Invariant{entrycheck.LinksStayIn},
			corrupt: func(t *testing.T, e string) {
				l := firstIn(t, e, "lib", func(p string, fi os.FileInfo) bool {
					target, _ := os.Readlink(p)
					return isLink(p, fi) && !filepath.IsAbs(target)
				})
				target, _ := os.Readlink(filepath.Join(e, l))
				fixtures.Must(t, os.Remove(filepath.Join(e, l)))
				fixtures.Must(t, os.Symlink("../deps/../lib/"+target, filepath.Join(e, l)))
			}},
		{name: "link to an unrecorded host file", entry: wrapper, want: []entrycheck.Invariant{entrycheck.LinksStayIn},
			corrupt: func(t *testing.T, e string) {
				// A copy of the host file, elsewhere: the library is
				// there, but not where the manifest says it came from.
				l := firstIn(t, e, "lib", hostLink)
				b, err := os.ReadFile(filepath.Join(e, l))
				fixtures.Must(t, err)
				other := filepath.Join(t.TempDir(), filepath.Base(l))
				fixtures.Must(t, os.WriteFile(other, b, 0o755))
				fixtures.Must(t, os.Remove(filepath.Join(e, l)))
				fixtures.Must(t, os.Symlink(other, filepath.Join(e, l)))
			}},
		{name: "link among vendor files", entry: wrapper, want: []entrycheck.Invariant{entrycheck.LinksStayIn},
			corrupt: func(t *testing.T, e string) {
				p := filepath.Join(e, "share", "vulkan", "icd.d", "other.json")
				fixtures.Must(t, os.Symlink("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json", p))
			}},
		{name: "backend link out of lib", entry: wrapper, want: []entrycheck.Invariant{entrycheck.LinksStayIn},
			corrupt: func(t *testing.T, e string) {
				p := filepath.Join(e, "lib", "gbm", "nvidia-drm_gbm.so")
				fixtures.Must(t, os.Remove(p))
				fixtures.Must(t, os.Symlink(host("/usr/lib/x86_64-linux-gnu/nvidia/current/libnvidia-allocator.so.1"), p))
			}},
		{name: "stray file at the top", entry: wrapper, want: []entrycheck.Invariant{entrycheck.Layout},
			corrupt: func(t *testing.T, e string) { fixtures.Write(t, filepath.Join(e, "notes.txt"), "x") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := copyEntry(t, tc.entry)
			tc.corrupt(t, e)
			err := entrycheck.Entry(e)
			if diff := cmp.Diff(tc.want, invariants(t, err)); diff != "" {
				t.Errorf("violations (-want +got):\n%s\n%v", diff, err)
			}
		})
	}
}

// repatch replaces the first patched driver copy in lib/ of e by a copy of
// its host file patched with patch and runpath.
func repatch(t *testing.T, e string, patch func(src, dst, runpath string) error, runpath string) {
	t.Helper()
	m, err := hostdrivers.ReadManifest(e)
	fixtures.Must(t, err)
	for _, f := range m.Files {
		if f.Mode == hostdrivers.ModePatched {
			dst := filepath.Join(e, "lib", f.Base)
			fixtures.Must(t, os.Remove(dst))
			fixtures.Must(t, patch(filepath.Join(m.Root, f.Real), dst, runpath))
			return
		}
	}
	t.Fatalf("%s holds no patched copy", e)
}

// rewrite replaces old by new in the file p, which must hold old.
func rewrite(t *testing.T, p, old, new string) {
	t.Helper()
	b, err := os.ReadFile(p)
	fixtures.Must(t, err)
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not hold %q:\n%s", p, old, b)
	}
	fixtures.Must(t, os.WriteFile(p, []byte(strings.ReplaceAll(string(b), old, new)), 0o644))
}

// TestEntryShims: a Mesa entry (Debian's Mesa, on a Mesa-only root) passes,
// and each break of its shims or of deps/plugins/ is reported.
func TestEntryShims(t *testing.T) {
	root := t.TempDir()
	fixtures.Must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	fixtures.AddMesa(t, root)
	p, err := hostdrivers.Prepare(&hostdrivers.Options{Root: root}, t.TempDir())
	fixtures.Must(t, err)
	if err := entrycheck.Entry(p.Dir); err != nil {
		t.Fatalf("a good Mesa entry: %v", err)
	}
	plugins := filepath.Join("deps", "plugins")
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, e string)
		want  []entrycheck.Invariant
	}{
		{"a plugin link to another host file", func(t *testing.T, e string) {
			a := firstIn(t, e, plugins, isLink)
			target, err := os.Readlink(filepath.Join(e, a))
			fixtures.Must(t, err)
			fixtures.Must(t, os.Remove(filepath.Join(e, a)))
			fixtures.Must(t, os.Symlink(filepath.Join(filepath.Dir(target), "..", filepath.Base(target)), filepath.Join(e, a)))
		}, []entrycheck.Invariant{entrycheck.LinksStayIn}},
		{"a foreign file in deps/plugins", func(t *testing.T, e string) {
			fixtures.Must(t, os.Symlink("/usr/lib/x86_64-linux-gnu/libc.so.6", filepath.Join(e, plugins, "libfoo.so")))
		}, []entrycheck.Invariant{entrycheck.DepsHidden, entrycheck.NoLibc}},
		{"a shim that loads another plug-in", func(t *testing.T, e string) {
			var shims []string
			ents, err := os.ReadDir(filepath.Join(e, plugins))
			fixtures.Must(t, err)
			for _, d := range ents {
				shims = append(shims, filepath.Join(e, "lib", d.Name()))
			}
			if len(shims) < 2 {
				t.Fatalf("%d shims in a Mesa entry, want at least two", len(shims))
			}
			b, err := os.ReadFile(shims[1])
			fixtures.Must(t, err)
			fixtures.Must(t, os.Remove(shims[0]))
			fixtures.Must(t, os.WriteFile(shims[0], b, 0o644))
		}, []entrycheck.Invariant{entrycheck.SearchPath}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := copyEntry(t, p.Dir)
			tc.spoil(t, e)
			if diff := cmp.Diff(tc.want, invariants(t, entrycheck.Entry(e))); diff != "" {
				t.Errorf("invariants (-want +got):\n%s\n%v", diff, entrycheck.Entry(e))
			}
		})
	}
}
