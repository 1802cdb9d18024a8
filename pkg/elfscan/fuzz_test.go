package elfscan

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func addSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, p := range testdataFiles(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b, withoutSections(f, b))
	}
	return seeds
}

// FuzzRead checks that the reader never panics and that Ident and Info
// agree.
func FuzzRead(f *testing.F) {
	for _, b := range addSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id, idErr := ReadIdentFrom(bytes.NewReader(data))
		in, err := ReadFrom(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err == nil && (idErr != nil || id != in.Ident) {
			t.Errorf("ReadIdentFrom = %+v, %v; ReadFrom gave %+v", id, idErr, in.Ident)
		}
	})
}

// FuzzPatch checks that the patcher either fails cleanly or writes a file
// that parses again, carries the runpath and keeps everything else.
func FuzzPatch(f *testing.F) {
	for _, b := range addSeeds(f) {
		f.Add(b, "$ORIGIN/../deps")
		f.Add(b, "/a")
	}
	f.Fuzz(func(t *testing.T, data []byte, runpath string) {
		dir := t.TempDir()
		src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		err := PatchRunpath(src, dst, runpath)
		if after, _ := os.ReadFile(src); !bytes.Equal(after, data) {
			t.Fatalf("PatchRunpath wrote its source")
		}
		if err != nil {
			if _, statErr := os.Stat(dst); statErr == nil {
				t.Errorf("PatchRunpath failed (%v) but wrote %s", err, dst)
			}
			return
		}
		got, err := Read(dst)
		if err != nil {
			t.Fatalf("patched file does not parse: %v", err)
		}
		if !got.HasRunpath || got.Runpath != runpath || got.HasRpath {
			t.Fatalf("patched runpath %q (has %v, rpath %v), want %q", got.Runpath, got.HasRunpath, got.HasRpath, runpath)
		}
		if want, err := Read(src); err == nil {
			want.Runpath, want.HasRunpath, want.Rpath, want.HasRpath = runpath, true, "", false
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("patched Info (-want +got):\n%s", diff)
			}
		}
	})
}
