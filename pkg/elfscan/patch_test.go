package elfscan

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// loaderSrc dlopens each argument by path and prints OK and every object
// then loaded, or FAIL and dlerror.
const loaderSrc = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
static int show(struct dl_phdr_info *info, size_t size, void *data) {
	(void)size; (void)data;
	if (info->dlpi_name && info->dlpi_name[0]) printf("LOADED %s\n", info->dlpi_name);
	return 0;
}
int main(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		void *h = dlopen(argv[i], RTLD_LAZY | RTLD_LOCAL);
		if (!h) { printf("FAIL %s\n", dlerror()); return 1; }
		printf("OK %s\n", argv[i]);
	}
	dl_iterate_phdr(show, 0);
	return 0;
}
`

// loaders caches one loader program per compiler for the test binary's life.
var loaders struct {
	sync.Mutex
	dir  string
	path map[string]string
}

// loader returns the path of c's dlopen test program, building it once.
func (c compiler) loader(t testing.TB) string {
	t.Helper()
	loaders.Lock()
	defer loaders.Unlock()
	if p, ok := loaders.path[c.name]; ok {
		return p
	}
	if loaders.dir == "" {
		d, err := os.MkdirTemp("", "elfscan-loader")
		if err != nil {
			t.Fatal(err)
		}
		loaders.dir = d
		loaders.path = map[string]string{}
	}
	p := c.mustBuild(t, filepath.Join(loaders.dir, "loader-"+c.name), loaderSrc, "-ldl")
	loaders.path[c.name] = p
	return p
}

// dlopen loads lib with c's loader program and returns whether it loaded,
// the loader's output, and the objects it then had loaded.
func (c compiler) dlopen(t testing.TB, lib string, env ...string) (bool, string, []string) {
	t.Helper()
	cmd := c.command(t, c.loader(t), env, lib)
	out, err := cmd.CombinedOutput()
	var loaded []string
	for _, l := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(l, "LOADED "); ok {
			loaded = append(loaded, s)
		}
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running loader: %v", err)
	}
	return err == nil && strings.HasPrefix(string(out), "OK "), string(out), loaded
}

// tool runs an oracle tool and returns its stdout and stderr.
func tool(t testing.TB, name string, args ...string) (string, string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		fixtures.Unavailable(t, "oracle %s not installed: %v", name, err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// readelfPaths returns the RUNPATH and RPATH entries readelf -d shows.
func readelfPaths(t testing.TB, path string) (runpath, rpath []string) {
	t.Helper()
	out, _ := tool(t, "readelf", "-d", "-W", path)
	for _, l := range strings.Split(out, "\n") {
		i, j := strings.Index(l, "["), strings.LastIndex(l, "]")
		switch {
		case i < 0 || j < i:
		case strings.Contains(l, "(RUNPATH)"):
			runpath = append(runpath, l[i+1:j])
		case strings.Contains(l, "(RPATH)"):
			rpath = append(rpath, l[i+1:j])
		}
	}
	return runpath, rpath
}

// checkPatched checks the patched file against the reader and the oracles:
// the runpath all agree on, that readelf reads it without a complaint, and
// that everything but the search path is as in the original.
func checkPatched(t testing.TB, orig, patched, runpath string) {
	t.Helper()
	want, err := Read(orig)
	if err != nil {
		t.Fatalf("Read original: %v", err)
	}
	got, err := Read(patched)
	if err != nil {
		t.Fatalf("Read patched: %v", err)
	}
	want.Runpath, want.HasRunpath, want.Rpath, want.HasRpath = runpath, true, "", false
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("patched Info (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(oracleInfo(t, patched), got); diff != "" {
		t.Errorf("patched Info (-debug/elf +ours):\n%s", diff)
	}
	// The notes the program headers reach (what dl_iterate_phdr-based
	// crash reporters, systemd-coredump and debuginfod read) are kept.
	if diff := cmp.Diff(phdrNotes(t, orig), phdrNotes(t, patched)); diff != "" {
		t.Errorf("notes reachable through the program headers (-original +patched):\n%s", diff)
	}
	rp, rpath := readelfPaths(t, patched)
	if diff := cmp.Diff([]string{runpath}, rp); diff != "" || len(rpath) != 0 {
		t.Errorf("readelf -d: RUNPATH %q RPATH %q, want RUNPATH [%q] and no RPATH", rp, rpath, runpath)
	}
	if out, _ := tool(t, "patchelf", "--print-rpath", patched); strings.TrimSuffix(out, "\n") != runpath {
		t.Errorf("patchelf --print-rpath = %q, want %q", out, runpath)
	}
	for _, args := range [][]string{{"-a", "-W"}, {"--dyn-syms", "-W"}} {
		_, before := tool(t, "readelf", append(args, orig)...)
		_, after := tool(t, "readelf", append(args, patched)...)
		if added := newLines(strings.ReplaceAll(before, orig, "FILE"), strings.ReplaceAll(after, patched, "FILE")); added != "" {
			t.Errorf("readelf %s complains about the patched file (and not the original):\n%s", strings.Join(args, " "), added)
		}
	}
}

// phdrNotes returns, for each note the PT_NOTE program headers reach, its
// owner, type and descriptor in hex (the GNU build-id among them), as
// dl_iterate_phdr's callers read them.
func phdrNotes(t testing.TB, path string) []string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("debug/elf: %v", err)
	}
	defer f.Close()
	var out []string
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			t.Fatalf("%s: reading PT_NOTE: %v", path, err)
		}
		align := uint32(4)
		if p.Align == 8 {
			align = 8
		}
		up := func(n uint32) uint32 { return (n + align - 1) &^ (align - 1) }
		for len(b) >= 12 {
			namesz, descsz, typ := f.ByteOrder.Uint32(b), f.ByteOrder.Uint32(b[4:]), f.ByteOrder.Uint32(b[8:])
			if 12+uint64(up(namesz))+uint64(descsz) > uint64(len(b)) {
				break
			}
			name := strings.TrimRight(string(b[12:12+namesz]), "\x00")
			desc := b[12+up(namesz) : 12+up(namesz)+descsz]
			out = append(out, fmt.Sprintf("%s/%d/%x", name, typ, desc))
			next := 12 + up(namesz) + up(descsz)
			if uint64(next) > uint64(len(b)) {
				break
			}
			b = b[next:]
		}
	}
	sort.Strings(out)
	return out
}

// newLines returns the lines of after that are not in before.
func newLines(before, after string) string {
	old := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		old[l] = true
	}
	var b strings.Builder
	for _, l := range strings.Split(after, "\n") {
		if !old[l] {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

const (
	libBSrc = `int b(void) { return 42; }`
	libASrc = `int b(void); int a(void) { return b() + 1; }`
	progSrc = `#include <stdio.h>
int b(void);
int main(void) { printf("b=%d\n", b()); return 0; }`
)

// longPath is a search path too long for any slot a test fixture has.
var longPath = "$ORIGIN/" + strings.Repeat("x", 120) + "/../deps"

func TestPatchFixtures(t *testing.T) {
	for _, c := range []compiler{compilerAMD64, compilerARM64, compiler386} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.need(t)
			testPatchFixtures(t, c)
		})
	}
}

func testPatchFixtures(t *testing.T, c compiler) {
	dir := t.TempDir()
	// libB exists only in deps/, where the new runpath points.
	deps := filepath.Join(dir, "deps")
	if err := os.Mkdir(deps, 0o755); err != nil {
		t.Fatal(err)
	}
	c.mustBuild(t, filepath.Join(deps, "libB.so"), libBSrc, "-shared", "-fPIC", "-Wl,-soname,libB.so")
	link := []string{"-L" + deps, "-lB"}
	lib := append([]string{"-shared", "-fPIC"}, link...)
	pie := append([]string{"-fPIE", "-pie"}, link...)
	tests := []struct {
		name  string
		src   string
		flags []string
	}{
		{"runpath", libASrc, append([]string{"-Wl,-rpath,/nonexistent/runpath", "-Wl,--enable-new-dtags"}, lib...)},
		{"short-runpath", libASrc, append([]string{"-Wl,-rpath,/no", "-Wl,--enable-new-dtags"}, lib...)},
		{"rpath", libASrc, append([]string{"-Wl,-rpath,/nonexistent/rpath", "-Wl,--disable-new-dtags"}, lib...)},
		{"none", libASrc, lib},
		{"separate-code", libASrc, append([]string{"-Wl,-z,separate-code"}, lib...)},
		{"noseparate-code", libASrc, append([]string{"-Wl,-z,noseparate-code"}, lib...)},
		{"now", libASrc, append([]string{"-Wl,-z,now", "-Wl,-z,relro"}, lib...)},
		{"nonote", libASrc, append([]string{"-Wl,--build-id=none", "-Wl,-z,noseparate-code"}, lib...)},
		{"pie", progSrc, pie},
		{"pie-rpath", progSrc, append([]string{"-Wl,-rpath,/nonexistent/rpath", "-Wl,--disable-new-dtags"}, pie...)},
		{"exec", progSrc, append([]string{"-no-pie"}, link...)},
	}
	for _, tt := range tests {
		for _, runpath := range []string{"$ORIGIN/deps", "/nonexistent:" + deps, longPath + ":" + deps} {
			if runpath == longPath+":"+deps && tt.name != "none" && tt.name != "pie" {
				continue
			}
			name := tt.name + "/" + strings.ReplaceAll(runpath[:min(len(runpath), 12)], "/", "_")
			t.Run(name, func(t *testing.T) {
				sub := t.TempDir()
				orig := c.mustBuild(t, filepath.Join(sub, "orig"), tt.src, tt.flags...)
				patched := filepath.Join(dir, strings.ReplaceAll(name, "/", "-"))
				if err := PatchRunpath(orig, patched, runpath); err != nil {
					t.Fatalf("PatchRunpath: %v", err)
				}
				checkPatched(t, orig, patched, runpath)
				checkStrip(t, c, patched, runpath)
				checkRuns(t, c, orig, patched, deps, tt.src == progSrc)
			})
		}
	}
}

// checkRuns checks that the original cannot find libB and the patched file
// finds it in deps through its runpath.
func checkRuns(t *testing.T, c compiler, orig, patched, deps string, program bool) {
	t.Helper()
	if program {
		out, err := c.command(t, orig, nil).CombinedOutput()
		if err == nil {
			t.Errorf("original program ran without libB: %s", out)
		}
		out, err = c.command(t, patched, nil).CombinedOutput()
		if err != nil || string(out) != "b=42\n" {
			t.Errorf("patched program: %v\n%s", err, out)
		}
		return
	}
	if ok, out, _ := c.dlopen(t, orig); ok {
		t.Errorf("original loaded without libB in its path:\n%s", out)
	}
	ok, out, loaded := c.dlopen(t, patched)
	if !ok {
		t.Fatalf("patched file does not load:\n%s", out)
	}
	found := false
	for _, l := range loaded {
		if filepath.Dir(filepath.Clean(l)) == deps && filepath.Base(l) == "libB.so" {
			found = true
		}
	}
	if !found {
		t.Errorf("libB not loaded from %s: loaded %q", deps, loaded)
	}
}

// checkStrip strips a copy of the patched file and checks the copy keeps the
// runpath and reads cleanly.
func checkStrip(t *testing.T, c compiler, patched, runpath string) {
	t.Helper()
	strip := "strip"
	if c.name == "arm64" {
		strip = "aarch64-linux-gnu-strip"
	}
	if _, err := exec.LookPath(strip); err != nil {
		t.Logf("no %s: not checking strip", strip)
		return
	}
	if phdrsMoved(t, patched) {
		// The program header table had no room and moved into the new
		// segment (rather than take a PT_NOTE entry): GNU strip cannot
		// rewrite that layout (see PatchRunpath).
		t.Logf("program headers moved into the new segment: not checking %s", strip)
		return
	}
	out := patched + ".stripped"
	if _, stderr := tool(t, strip, "-o", out, patched); stderr != "" {
		t.Errorf("%s complains:\n%s", strip, stderr)
	}
	in, err := Read(out)
	if err != nil {
		t.Fatalf("Read stripped: %v", err)
	}
	if in.Runpath != runpath {
		t.Errorf("stripped runpath %q, want %q", in.Runpath, runpath)
	}
	if _, stderr := tool(t, "readelf", "-a", "-W", out); stderr != "" {
		t.Errorf("readelf -a on the stripped file complains:\n%s", stderr)
	}
}

// phdrsMoved reports whether path's program header table lies in its last
// PT_LOAD segment, where PatchRunpath moves it when it has no room.
func phdrsMoved(t testing.TB, path string) bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("debug/elf: %v", err)
	}
	defer f.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var phoff uint64
	if f.Class == elf.ELFCLASS64 {
		phoff = f.ByteOrder.Uint64(b[32:])
	} else {
		phoff = uint64(f.ByteOrder.Uint32(b[28:]))
	}
	var last *elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			last = p
		}
	}
	return last != nil && last.Off > 0 && phoff >= last.Off && phoff < last.Off+last.Filesz
}

func TestPatchAgain(t *testing.T) {
	c := compilerAMD64
	c.need(t)
	dir := t.TempDir()
	deps := filepath.Join(dir, "deps")
	if err := os.Mkdir(deps, 0o755); err != nil {
		t.Fatal(err)
	}
	c.mustBuild(t, filepath.Join(deps, "libB.so"), libBSrc, "-shared", "-fPIC", "-Wl,-soname,libB.so")
	orig := c.mustBuild(t, filepath.Join(dir, "orig.so"), libASrc, "-shared", "-fPIC", "-L"+deps, "-lB")
	origSize := size(t, orig)

	long1 := longPath + ":$ORIGIN/deps"
	long2 := longPath + "/yyyyyyyyyyyyyyyyyyyyyyyy:$ORIGIN/deps"
	steps := []struct {
		runpath string
		grow    int64 // the most the file may grow over the step before
	}{
		{"$ORIGIN/deps", 1 << 12},
		{"$ORIGIN/deps", 0}, // again: nothing changes
		{long1, int64(len(long1))},
		{long1, 0},
		{"$ORIGIN/deps", 0}, // shorter: in place
		{long2, int64(len(long2) - len(long1))},
		{long1, 0},
		{long2, 0},
		{"$ORIGIN/deps", 0},
	}
	prev, prevSize := orig, origSize
	var prevBytes []byte
	for i, s := range steps {
		next := filepath.Join(dir, fmt.Sprintf("step%d.so", i))
		if err := PatchRunpath(prev, next, s.runpath); err != nil {
			t.Fatalf("step %d: PatchRunpath(%q): %v", i, s.runpath, err)
		}
		checkPatched(t, orig, next, s.runpath)
		if ok, out, _ := c.dlopen(t, next); !ok {
			t.Errorf("step %d: does not load:\n%s", i, out)
		}
		sz := size(t, next)
		if sz > prevSize+s.grow {
			t.Errorf("step %d (%q): size %d, was %d: grew more than %d", i, s.runpath, sz, prevSize, s.grow)
		}
		b, err := os.ReadFile(next)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && s.runpath == steps[i-1].runpath && !bytes.Equal(b, prevBytes) {
			t.Errorf("step %d: patching again with the same runpath changed the file", i)
		}
		t.Logf("step %d: %d bytes, runpath %.20q", i, sz, s.runpath)
		prev, prevSize, prevBytes = next, sz, b
	}
	if final := size(t, prev); final > origSize+1<<12+int64(len(long2)) {
		t.Errorf("after %d patches the file grew from %d to %d", len(steps), origSize, final)
	}
}

func TestPatchInPlaceDst(t *testing.T) {
	c := compilerAMD64
	c.need(t)
	dir := t.TempDir()
	p := c.mustBuild(t, filepath.Join(dir, "lib.so"), libBSrc, "-shared", "-fPIC")
	if err := os.Chmod(p, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := PatchRunpath(p, p, "$ORIGIN"); err != nil {
		t.Fatal(err)
	}
	in, err := Read(p)
	if err != nil || in.Runpath != "$ORIGIN" {
		t.Fatalf("Read = %+v, %v", in, err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o750 {
		t.Errorf("mode %v, %v; want 0750", st.Mode(), err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestPatchErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, []byte("not an ELF file at all, just some text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(dir, "obj.o")
	if b, err := exec.Command("gcc", "-c", "-x", "c", "-o", obj, "/dev/null").CombinedOutput(); err != nil {
		fixtures.Unavailable(t, "gcc: %v\n%s", err, b)
	}
	tests := []struct {
		name, src, runpath, msg string
	}{
		{"text", text, "/x", "bad magic"},
		{"relocatable", obj, "/x", "no dynamic segment"},
		{"nul", obj, "a\x00b", "NUL"},
		{"missing", filepath.Join(dir, "missing"), "/x", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(dir, tt.name+".out")
			err := PatchRunpath(tt.src, dst, tt.runpath)
			if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), tt.src) {
				t.Errorf("PatchRunpath = %v, want an error naming %s and saying %q", err, tt.src, tt.msg)
			}
			if _, err := os.Stat(dst); err == nil {
				t.Errorf("%s written despite the error", dst)
			}
		})
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func size(t testing.TB, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// hasProg reports whether the file at p has a program header of type typ.
func hasProg(t testing.TB, p string, typ elf.ProgType) bool {
	t.Helper()
	ef, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	for _, q := range ef.Progs {
		if q.Type == typ {
			return true
		}
	}
	return false
}

// TestMain removes the loader programs the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if loaders.dir != "" {
		os.RemoveAll(loaders.dir)
	}
	os.Exit(code)
}

// TestPatchRpathInherited: PatchRpath writes a DT_RPATH (never beside a
// DT_RUNPATH), in place or in a new segment, and the loader searches it
// for what the file's DT_NEEDED libraries need in turn: libMid, a symlink
// beside the copy with no search path of its own, finds libC in deps/
// through the copy's DT_RPATH. The same copy with PatchRunpath does not
// load, which is why self-contained entries use PatchRpath.
func TestPatchRpathInherited(t *testing.T) {
	for _, c := range []compiler{compilerAMD64, compilerARM64} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.need(t)
			dir := t.TempDir()
			host, lib, deps := filepath.Join(dir, "host"), filepath.Join(dir, "lib"), filepath.Join(dir, "deps")
			for _, d := range []string{host, lib, deps} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			c.mustBuild(t, filepath.Join(deps, "libC.so"), "int c(void) { return 1; }", "-shared", "-fPIC", "-Wl,-soname,libC.so")
			c.mustBuild(t, filepath.Join(host, "libMid.so"), "int c(void); int mid(void) { return c(); }",
				"-shared", "-fPIC", "-Wl,-soname,libMid.so", "-L"+deps, "-lC")
			if err := os.Symlink(filepath.Join(host, "libMid.so"), filepath.Join(lib, "libMid.so")); err != nil {
				t.Fatal(err)
			}
			const rpath = "$ORIGIN:$ORIGIN/../deps"
			// A dlopen starts no chain: libD's DT_RPATH finds libMid, but
			// libMid, dlopened, does not find libC through it (so a
			// dlopened library that loads others needs its own copy).
			libD := c.mustBuild(t, filepath.Join(t.TempDir(), "libD.so"),
				"#include <dlfcn.h>\n__attribute__((constructor)) static void init(void) { dlopen(\"libMid.so\", RTLD_NOW); }\n",
				"-shared", "-fPIC", "-ldl")
			dstD := filepath.Join(lib, "libD.so")
			if err := PatchRpath(libD, dstD, rpath); err != nil {
				t.Fatal(err)
			}
			if ok, out, loaded := c.dlopen(t, dstD); !ok || slices.ContainsFunc(loaded, func(l string) bool { return strings.HasSuffix(l, "/libMid.so") }) {
				t.Errorf("libD (DT_RPATH) loaded %v with libMid dlopened %q: a dlopen inherited the chain\n%s", ok, loaded, out)
			}
			for _, tt := range []struct{ name, flags string }{
				{"none", ""},
				{"long-runpath", "-Wl,--enable-new-dtags,-rpath," + longPath},
				{"long-rpath", "-Wl,--disable-new-dtags,-rpath," + longPath},
			} {
				t.Run(tt.name, func(t *testing.T) {
					flags := []string{"-shared", "-fPIC", "-L" + host, "-lMid"}
					if tt.flags != "" {
						flags = append(flags, tt.flags)
					}
					orig := c.mustBuild(t, filepath.Join(t.TempDir(), "libA.so"), "int mid(void); int a(void) { return mid(); }", flags...)
					for _, rp := range []bool{true, false} {
						dst := filepath.Join(lib, "libA-"+tt.name+".so")
						patch := PatchRunpath
						if rp {
							patch = PatchRpath
						}
						if err := patch(orig, dst, rpath); err != nil {
							t.Fatal(err)
						}
						info, err := Read(dst)
						if err != nil {
							t.Fatal(err)
						}
						ok, out, _ := c.dlopen(t, dst)
						if rp {
							if !info.HasRpath || info.Rpath != rpath || info.HasRunpath {
								t.Errorf("PatchRpath: rpath %v %q, runpath %v %q", info.HasRpath, info.Rpath, info.HasRunpath, info.Runpath)
							}
							if !ok {
								t.Errorf("the DT_RPATH copy does not load (libMid should find libC through it):\n%s", out)
							}
						} else if ok {
							t.Errorf("the DT_RUNPATH copy loaded: libMid found libC without a search path of its own:\n%s", out)
						}
					}
				})
			}
		})
	}
}
