package drv

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testdata = "../../testdata/drv"

// drvFiles returns the .drv files directly under dir.
func drvFiles(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.drv"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .drv fixtures in %s: %v", dir, err)
	}
	return files
}

func TestRequiredSystemFeatures(t *testing.T) {
	for _, tc := range []struct {
		name       string
		want       []string
		structured bool
	}{
		{name: "plain-cuda", want: []string{"cuda"}},
		{name: "several", want: []string{"big-parallel", "kvm", "nvidia-gpu", "opengl"}},
		{name: "other-features", want: []string{"kvm", "big-parallel"}},
		{name: "no-features", want: []string{}},
		{name: "structured-cuda", want: []string{"cuda"}, structured: true},
		{name: "structured-none", want: []string{}, structured: true},
		{name: "multi-output", want: []string{"opengl"}},
		{name: "with-inputs", want: []string{"kvm", "cuda"}},
		{name: "with-version", want: []string{"cuda"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ReadFile(filepath.Join(testdata, tc.name+".drv"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.RequiredSystemFeatures()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("features (-want +got):\n%s", diff)
			}
			if d.StructuredAttrs() != tc.structured {
				t.Errorf("StructuredAttrs() = %v, want %v", d.StructuredAttrs(), tc.structured)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	d, err := ReadFile(filepath.Join(testdata, "with-inputs.drv"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Derivation{
		Outputs: []Output{{Name: "out", Path: "/nix/store/7fxa5sbsmlj8mnawa3hcyn3n1j1jgq7v-with-inputs"}},
		InputDrvs: []InputDrv{
			{Path: "/nix/store/1vqzm7hy21nsfxyqh48c5zaifpkyclid-plain-cuda.drv", Outputs: []string{"out"}},
			{Path: "/nix/store/adw8nj7dqfixwy8wv9ii6vv44f4wsvdx-multi-output.drv", Outputs: []string{"dev"}},
		},
		InputSrcs: []string{"/nix/store/1017cjpgpdg6f0vvqhcby1c8v2jyn7i8-src.txt"},
		System:    "x86_64-linux",
		Builder:   "/bin/sh",
		Args:      []string{"-c", "cat /nix/store/1017cjpgpdg6f0vvqhcby1c8v2jyn7i8-src.txt /nix/store/sqjjgxlh47hhlvsincg0l5iq60pi7zjj-plain-cuda /nix/store/180rbq1y7ayvccz4k7smz4lpx9m3315f-multi-output-dev > $out"},
		Env: []EnvVar{
			{"builder", "/bin/sh"},
			{"name", "with-inputs"},
			{"out", "/nix/store/7fxa5sbsmlj8mnawa3hcyn3n1j1jgq7v-with-inputs"},
			{"requiredSystemFeatures", "kvm cuda"},
			{"system", "x86_64-linux"},
		},
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEscapes(t *testing.T) {
	d, err := ReadFile(filepath.Join(testdata, "no-features.drv"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := d.Getenv("weird")
	want := "quote \" backslash \\ newline \n tab \t cr \r done"
	if got != want {
		t.Errorf("weird = %q, want %q", got, want)
	}
	// Nix's reader takes any other escaped byte literally.
	d, err = Parse([]byte(`Derive([],[],[],"\s\y\s","b",[],[])`))
	if err != nil || d.System != "sys" {
		t.Errorf("unknown escapes: %+v, %v", d, err)
	}
	d, err = ReadFile(filepath.Join(testdata, "structured-cuda.drv"))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := d.Getenv("__json")
	if !strings.Contains(js, `"nested":{"a":[1,2,"x\"y"]}`) {
		t.Errorf("__json = %s", js)
	}
}

// TestFormatRoundTrip: every file Nix wrote prints back byte for byte.
func TestFormatRoundTrip(t *testing.T) {
	for _, f := range drvFiles(t, testdata) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(f) == "with-version.drv" {
				return // its input derivation's dynamic-output shape is not kept
			}
			if got := d.Format(); !bytes.Equal(got, b) {
				t.Errorf("Format() =\n%s\nwant\n%s", got, b)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		// off is the FormatError's offset, or -1 for a structured
		// attributes error (the file parses; the features do not).
		off int
		msg string
	}{
		{"empty", 0, "unexpected end of file"},
		{"truncated", 147, "unterminated string"},
		{"unterminated-string", 101, "unterminated string"},
		{"too-few-fields", 0, "Derive has 6 fields, want 7"},
		{"trailing-data", 80, "trailing data after the derivation"},
		{"env-pair", 45, "expected environment entry"},
		{"json-file", 0, "unexpected '{'"},
		{"json-invalid", -1, "structured attributes (__json): invalid character"},
		{"json-features-string", -1, "requiredSystemFeatures is not a list of strings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(testdata, "malformed", tc.name+".drv")
			d, err := ReadFile(path)
			if tc.off >= 0 {
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("ReadFile = %+v, %v; want a FormatError", d, err)
				}
				if fe.Off != tc.off || !strings.Contains(fe.Msg, tc.msg) {
					t.Errorf("error at %d %q, want at %d %q", fe.Off, fe.Msg, tc.off, tc.msg)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.RequiredSystemFeatures(); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("RequiredSystemFeatures error %v, want %q", err, tc.msg)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	deep := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	_, err := Parse([]byte(`Derive(` + deep + `)`))
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(fe.Msg, "nested deeper") {
		t.Errorf("deep nesting: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.drv")
	if err := os.WriteFile(big, make([]byte, MaxSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.drv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

// addDrvSeeds adds every .drv fixture, well formed or not, to f's corpus.
func addDrvSeeds(f *testing.F) {
	for _, dir := range []string{testdata, filepath.Join(testdata, "malformed")} {
		for _, p := range drvFiles(f, dir) {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// FuzzParse checks that the parser never panics, and that what it accepts
// prints back to text that parses to the same derivation.
func FuzzParse(f *testing.F) {
	addDrvSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Off < 0 || fe.Off > len(data) {
				t.Fatalf("error %v is not a FormatError within the input", err)
			}
			return
		}
		d.RequiredSystemFeatures()
		d2, err := Parse(d.Format())
		if err != nil {
			t.Fatalf("Format output does not parse: %v\n%s", err, d.Format())
		}
		if d.Version == "" {
			if diff := cmp.Diff(d, d2); diff != "" {
				t.Errorf("round trip (-first +second):\n%s", diff)
			}
		}
	})
}
