package elfscan

import (
	"bytes"
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
