package drv

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// parsedFeatures is the reference: Parse, then RequiredSystemFeatures.
func parsedFeatures(b []byte) ([]string, error) {
	d, err := Parse(b)
	if err != nil {
		return nil, err
	}
	return d.RequiredSystemFeatures()
}

// TestFeaturesAgreesWithParse: on every fixture, well formed or not, the
// streaming reader gives what the full parser gives.
func TestFeaturesAgreesWithParse(t *testing.T) {
	files := append(drvFiles(t, testdata), drvFiles(t, filepath.Join(testdata, "malformed"))...)
	for _, p := range files {
		t.Run(filepath.Base(p), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			want, werr := parsedFeatures(b)
			got, gerr := Features(bytes.NewReader(b))
			if werr == nil {
				if gerr != nil {
					t.Fatalf("Features: %v; Parse accepted it", gerr)
				}
				if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("features (-Parse +Features):\n%s", d)
				}
			}
			if strings.Contains(p, "malformed") && gerr == nil && werr != nil {
				t.Logf("Features accepts what Parse refuses (%v): the hook reads only the environment", werr)
			}
		})
	}
}

// hostileDrv is a well-formed derivation whose builder arguments are n
// empty strings: the shape that took the tree parser 33 s and 628 MB at
// 16 MiB.
func hostileDrv(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`Derive([("out","/nix/store/x-out","","")],[],[],"x86_64-linux","/bin/sh",[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`""`)
	}
	b.WriteString(`],[("requiredSystemFeatures","cuda kvm")])`)
	return b.Bytes()
}

// TestFeaturesBoundedMemory: 16 MiB of empty strings are read with a few
// kilobytes of allocation, and the features after them are found.
func TestFeaturesBoundedMemory(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hostile.drv")
	if err := os.WriteFile(p, hostileDrv(16<<20/3), 0o644); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fs, err := ReadFeatures(p)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"cuda", "kvm"}, fs); d != "" {
		t.Errorf("features (-want +got):\n%s", d)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("ReadFeatures allocated %d bytes for a 16 MiB file, want under 1 MiB", alloc)
	}
}

// TestFeaturesTooLarge: a file past MaxSize is refused by its size, naming
// it, before a byte is parsed.
func TestFeaturesTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge.drv")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := ReadFeatures(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("ReadFeatures(%d bytes) = %v, want an error naming %s", MaxSize+1, err, p)
	}
	// Streamed, the limit holds too.
	if _, err := Features(bytes.NewReader(append([]byte(`Derive([],[],[],"","",[],[("a","`), bytes.Repeat([]byte{'x'}, MaxSize)...))); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Features past MaxSize = %v, want a size error", err)
	}
}

func FuzzFeatures(f *testing.F) {
	addDrvSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := Features(bytes.NewReader(data))
		want, werr := parsedFeatures(data)
		if werr != nil {
			return
		}
		if gerr != nil {
			t.Fatalf("Features: %v; Parse and RequiredSystemFeatures accepted it", gerr)
		}
		if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("features (-Parse +Features):\n%s", d)
		}
	})
}
