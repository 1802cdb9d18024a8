package elfscan

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testdataFiles returns the committed tiny ELF files.
func testdataFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.so")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.so: %v", err)
	}
	return files
}

// withoutSections returns a copy of the ELF file data with no section
// header table, as sstrip leaves files: the patcher must then work from the
// program headers alone.
func withoutSections(t testing.TB, data []byte) []byte {
	t.Helper()
	b := bytes.Clone(data)
	switch elf.Class(b[elf.EI_CLASS]) {
	case elf.ELFCLASS64:
		clear(b[40:48]) // e_shoff
		clear(b[60:64]) // e_shnum, e_shstrndx
	default:
		clear(b[32:36])
		clear(b[48:52])
	}
	return b
}

func TestPatchTestdata(t *testing.T) {
	runpaths := []string{"/a", "$ORIGIN", "$ORIGIN/../deps", longPath}
	for _, src := range testdataFiles(t) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, variant := range []string{"sections", "nosections"} {
			if variant == "nosections" {
				data = withoutSections(t, data)
			}
			for _, rp := range runpaths {
				name := filepath.Base(src) + "/" + variant + "/" + strings.ReplaceAll(rp[:min(len(rp), 14)], "/", "_")
				t.Run(name, func(t *testing.T) {
					dir := t.TempDir()
					orig := filepath.Join(dir, "orig.so")
					if err := os.WriteFile(orig, data, 0o755); err != nil {
						t.Fatal(err)
					}
					patched := filepath.Join(dir, "patched.so")
					if err := PatchRunpath(orig, patched, rp); err != nil {
						t.Fatalf("PatchRunpath: %v", err)
					}
					if variant == "sections" {
						checkPatched(t, orig, patched, rp)
					} else {
						want, _ := Read(orig)
						got, err := Read(patched)
						if err != nil {
							t.Fatal(err)
						}
						want.Runpath, want.HasRunpath, want.Rpath, want.HasRpath = rp, true, "", false
						if diff := cmp.Diff(want, got); diff != "" {
							t.Errorf("Info (-want +got):\n%s", diff)
						}
						if r, _ := readelfPaths(t, patched); len(r) != 1 || r[0] != rp {
							t.Errorf("readelf -d: RUNPATH %q, want %q", r, rp)
						}
					}
					// Load it, natively or under qemu-user.
					var c compiler
					switch {
					case strings.HasPrefix(filepath.Base(src), "amd64"):
						c = compilerAMD64
					case strings.HasPrefix(filepath.Base(src), "arm64"):
						c = compilerARM64
					case strings.HasPrefix(filepath.Base(src), "386"):
						c = compiler386
					default:
						return
					}
					c.need(t)
					if ok, out, _ := c.dlopen(t, patched); !ok {
						t.Errorf("patched file does not load:\n%s", out)
					}
				})
			}
		}
	}
}
