package elfscan

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// callSrc dlopens argv[1], calls the function argv[2] found through the
// handle, and prints its result and the objects then loaded.
const callSrc = `
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
	(void)argc;
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) { printf("FAIL %s\n", dlerror()); return 1; }
	int (*f)(void) = (int (*)(void))dlsym(h, argv[2]);
	if (!f) { printf("NOSYM %s\n", dlerror()); return 1; }
	printf("CALL %d\n", f());
	dl_iterate_phdr(show, 0);
	return 0;
}
`

// TestWriteShim: a plug-in on the host (libPlug) loads libC and libMid,
// which the loader finds only in deps/; libMid's own DT_RUNPATH (like
// Debian's libLLVM's) names no directory that holds what it loads (libZ,
// in deps/ too). A shim in lib/ whose DT_NEEDED names the plug-in and
// libZ, with DT_RPATH $ORIGIN/../deps, is dlopened by path: libC is found
// through the shim's DT_RPATH (the chain runs through the plug-in, which
// has no search path), and so is libMid, libZ is already loaded when libMid asks for it,
// and dlsym on the shim's handle finds the plug-in's function. Without
// libZ in its DT_NEEDED the shim does not load (libMid's DT_RUNPATH stops
// the chain), which is why the planner lists such names. The shim reads
// back with its own identity, needed names and DT_RPATH.
func TestWriteShim(t *testing.T) {
	for _, c := range []compiler{compilerAMD64, compilerARM64, compiler386} {
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
			c.mustBuild(t, filepath.Join(deps, "libC.so"), "int c(void) { return 40; }", "-shared", "-fPIC", "-Wl,-soname,libC.so")
			c.mustBuild(t, filepath.Join(deps, "libZ.so"), "int z(void) { return 2; }", "-shared", "-fPIC", "-Wl,-soname,libZ.so")
			c.mustBuild(t, filepath.Join(deps, "libMid.so"), "int z(void); int mid(void) { return z() + 1; }",
				"-shared", "-fPIC", "-Wl,-soname,libMid.so", "-L"+deps, "-lZ", "-Wl,--enable-new-dtags,-rpath,/nonexistent")
			plug := c.mustBuild(t, filepath.Join(host, "libPlug.so"), "int c(void); int mid(void); int plug(void) { return c() + mid(); }",
				"-shared", "-fPIC", "-Wl,-soname,libPlug.so", "-L"+deps, "-lC", "-lMid")
			prog := c.mustBuild(t, filepath.Join(dir, "call"), callSrc, "-ldl")

			for _, tc := range []struct {
				name   string
				needed []string
				ok     bool
			}{
				{"origin", []string{"$ORIGIN/../host/libPlug.so", "libZ.so"}, true},
				{"absolute", []string{plug, "libZ.so"}, true},
				{"no preload", []string{plug}, false},
			} {
				shim := filepath.Join(lib, "plug-"+strings.ReplaceAll(tc.name, " ", "-")+".so")
				if err := WriteShim(plug, shim, tc.needed, "$ORIGIN/../deps"); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				info, err := Read(shim)
				if err != nil {
					t.Fatalf("%s: reading the shim: %v", tc.name, err)
				}
				orig, err := Read(plug)
				if err != nil {
					t.Fatal(err)
				}
				got := []any{info.Ident, info.Needed, info.Rpath, info.HasRpath, info.HasRunpath, info.Soname}
				want := []any{orig.Ident, tc.needed, "$ORIGIN/../deps", true, false, ""}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("%s: the shim reads back (-want +got):\n%s", tc.name, d)
				}
				out, err := c.command(t, prog, nil, shim, "plug").CombinedOutput()
				called := strings.Contains(string(out), "CALL 43\n")
				if called != tc.ok || (err == nil) != tc.ok {
					t.Errorf("%s: loading the shim: %v, called %v, want %v\n%s", tc.name, err, called, tc.ok, out)
				}
				if tc.ok && !slices.ContainsFunc(strings.Split(string(out), "\n"), func(l string) bool {
					return strings.HasPrefix(l, "LOADED ") && strings.HasSuffix(l, "/deps/libC.so")
				}) {
					t.Errorf("%s: libC was not loaded from deps/:\n%s", tc.name, out)
				}
			}
		})
	}
}

// TestShimBytesRefuses: no shim for what is not ELF, for MIPS (whose
// loader wants entries of its own), without a library or with a name
// holding a NUL.
func TestShimBytesRefuses(t *testing.T) {
	amd64, err := os.ReadFile("testdata/amd64-runpath.so")
	if err != nil {
		t.Fatal(err)
	}
	mips := bytes.Clone(amd64[:64])
	mips[18], mips[19] = byte(8), 0 // EM_MIPS, little-endian
	for _, tc := range []struct {
		name   string
		hdr    []byte
		needed []string
		rpath  string
	}{
		{"not ELF", []byte(strings.Repeat("x", 64)), []string{"a"}, ""},
		{"MIPS", mips, []string{"a"}, ""},
		{"no library", amd64, nil, ""},
		{"empty name", amd64, []string{""}, ""},
		{"NUL in a name", amd64, []string{"a\x00b"}, ""},
		{"NUL in the path", amd64, []string{"a"}, "x\x00"},
		{"unknown class", append([]byte("\x7fELF\x07"), amd64[5:64]...), []string{"a"}, ""},
	} {
		if _, err := shimBytes(tc.hdr, tc.needed, tc.rpath); err == nil {
			t.Errorf("%s: a shim was made", tc.name)
		}
	}
}
