package elfscan

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestReplaceRodataString: a search path list compiled into a library is
// rewritten in place, whole strings only, and the library still loads and
// sees the new value.
func TestReplaceRodataString(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		fixtures.Unavailable(t, "no gcc: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "s.c")
	os.WriteFile(src, []byte(`
const char *path(void) { return "/usr/lib/x86_64-linux-gnu/dri:\\$${ORIGIN}/dri:/usr/lib/dri"; }
const char *other(void) { return "/usr/lib/x86_64-linux-gnu/dril"; }
const char *inside(void) { return "x/usr/lib/x86_64-linux-gnu/dri"; }
`), 0o644)
	lib := filepath.Join(dir, "libs.so")
	if out, err := exec.Command("gcc", "-shared", "-fPIC", "-O1", "-o", lib, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	before, _ := os.ReadFile(lib)
	n, err := ReplaceRodataString(lib, "/usr/lib/x86_64-linux-gnu/dri", "$ORIGIN")
	if err != nil || n != 1 {
		t.Fatalf("ReplaceRodataString = %d, %v; want 1 string replaced", n, err)
	}
	after, _ := os.ReadFile(lib)
	if len(after) != len(before) {
		t.Errorf("size %d -> %d", len(before), len(after))
	}
	s := string(after)
	if strings.Contains(s, "/usr/lib/x86_64-linux-gnu/dri:") || !strings.Contains(s, "$ORIGIN\x00\x00") {
		t.Errorf("the path list was not replaced")
	}
	if !strings.Contains(s, "/usr/lib/x86_64-linux-gnu/dril") || !strings.Contains(s, "x/usr/lib/x86_64-linux-gnu/dri") {
		t.Errorf("a string that only contains the prefix was changed")
	}
	if _, err := ReplaceRodataString(lib, "/nothing", "x"); err != nil {
		t.Errorf("no match: %v", err)
	}
	if n, _ := ReplaceRodataString(lib, "x/usr", "a string longer than the one it would replace, by far"); n != 0 {
		t.Errorf("a longer replacement was written")
	}
	if _, err := ReplaceRodataString(src, "/usr", "x"); err == nil {
		t.Errorf("a C source taken for ELF")
	}
}

// TestReplaceRodataTailMerged: a linker that keeps "drv/dri" only as the
// tail of "/opt/drv/dri" makes the two strings share bytes; rewriting the
// longer one would empty the shorter one. Such a match is refused with a
// *TailMergedError and the file is left as it was, whether the code names
// the tail (x86-64's RIP-relative lea, i386's GOT-relative one) or a table
// of pointers does (a relocation's addend). Where the linker kept the two
// strings apart (arm64's aligned strings) the rewrite goes on, and the
// shorter string is untouched.
func TestReplaceRodataTailMerged(t *testing.T) {
	const (
		long  = "/opt/drv/dri"
		short = "drv/dri"
	)
	for _, c := range []compiler{compilerAMD64, compiler386, compilerARM64} {
		for _, src := range []struct{ name, code string }{
			{"code", `const char *a(void) { return "/opt/drv/dri"; } const char *b(void) { return "drv/dri"; }`},
			{"table", `const char *const tbl[] = {"/opt/drv/dri", "drv/dri"}; const char *const *t(void) { return tbl; }`},
		} {
			t.Run(c.name+"/"+src.name, func(t *testing.T) {
				if _, err := exec.LookPath(c.cc[0]); err != nil {
					fixtures.Unavailable(t, "no %s compiler: %v", c.name, err)
				}
				lib := c.mustBuild(t, filepath.Join(t.TempDir(), "libm.so"), src.code, "-O1", "-shared", "-fPIC")
				before, err := os.ReadFile(lib)
				fixtures.Must(t, err)
				merged := !bytes.Contains(before, []byte("\x00"+short+"\x00"))
				n, err := ReplaceRodataString(lib, long, "$ORIGIN")
				after, rerr := os.ReadFile(lib)
				fixtures.Must(t, rerr)
				var tm *TailMergedError
				switch {
				case merged:
					if !errors.As(err, &tm) || n != 0 || !strings.Contains(err.Error(), lib) {
						t.Errorf("tail-merged %q: ReplaceRodataString = %d, %v; want a *TailMergedError naming the file", short, n, err)
					}
					if !bytes.Equal(before, after) {
						t.Errorf("the file was written although the rewrite was refused")
					}
				default:
					if err != nil || n != 1 {
						t.Errorf("separate strings: ReplaceRodataString = %d, %v; want 1", n, err)
					}
					if !bytes.Contains(after, []byte("\x00"+short+"\x00")) {
						t.Errorf("the separate %q was changed", short)
					}
				}
				t.Logf("%s: tail-merged %v", c.name, merged)
			})
		}
	}
}

// sliceWriter writes into a byte slice, never past its end.
type sliceWriter []byte

func (w sliceWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(w)) {
		return 0, io.ErrShortWrite
	}
	return copy(w[off:], p), nil
}

// FuzzReplaceRodataString: any bytes taken for an ELF file give an error or
// a rewrite inside the file, never a panic or a write past its end.
func FuzzReplaceRodataString(f *testing.F) {
	for _, p := range []string{"testdata/amd64-runpath.so", "testdata/386-none.so", "testdata/arm64-none.so"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w := make(sliceWriter, len(b))
		copy(w, b)
		if _, err := replaceRodata(bytes.NewReader(b), int64(len(b)), w, "/usr", "$ORIGIN"); err == io.ErrShortWrite {
			t.Errorf("a write past the end of the file")
		}
	})
}
