package drv

import (
	"bufio"
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

// writeJSONDrv writes a derivation whose __json value is the JSON text
// that body writes (in the .drv's quoting, streamed: the test holds none of
// it), followed by a plain requiredSystemFeatures entry that structured
// attributes make Nix ignore.
func writeJSONDrv(t testing.TB, path string, body func(w *bufio.Writer)) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString(`Derive([("out","/nix/store/x-out","","")],[],[],"x86_64-linux","/bin/sh",[],[("__json","`)
	body(w)
	w.WriteString(`"),("requiredSystemFeatures","ignored")])`)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// repeat writes s n times, a few KiB at a time.
func repeat(w *bufio.Writer, s string, n int) {
	k := max(1, 4096/len(s))
	chunk := strings.Repeat(s, k)
	for ; n >= k; n -= k {
		w.WriteString(chunk)
	}
	w.WriteString(strings.Repeat(s, n))
}

// big is the bulk of each largeJSON value.
const big = 60 << 20

// largeJSON are __json values of tens of MiB of different shapes, each
// with the features somewhere.
var largeJSON = []struct {
	name string
	body func(w *bufio.Writer)
	want []string
}{
	{
		name: "one long string before the features",
		body: func(w *bufio.Writer) {
			w.WriteString(`{\"blob\":\"`)
			repeat(w, "x", big)
			w.WriteString(`\",\"requiredSystemFeatures\":[\"cuda\",\"kvm\"]}`)
		},
		want: []string{"cuda", "kvm"},
	},
	{
		name: "escapes in a long string",
		body: func(w *bufio.Writer) {
			w.WriteString(`{\"requiredSystemFeatures\":[\"rocm\"],\"blob\":\"`)
			repeat(w, `\\n\\\"\\u00e9`, big/16)
			w.WriteString(`\"}`)
		},
		want: []string{"rocm"},
	},
	{
		name: "a long array of numbers and objects",
		body: func(w *bufio.Writer) {
			w.WriteString(`{\"a\":[0`)
			repeat(w, `,-1.5e3,{\"k\":[true,null]}`, big/27)
			w.WriteString(`],\"requiredSystemFeatures\":[\"opengl\"]}`)
		},
		want: []string{"opengl"},
	},
	{
		name: "many members",
		body: func(w *bufio.Writer) {
			w.WriteString(`{\"requiredSystemFeatures\":[\"kvm\"]`)
			repeat(w, `,\"member\":\"value\"`, big/24)
			w.WriteString(`}`)
		},
		want: []string{"kvm"},
	},
	{
		name: "one long key",
		body: func(w *bufio.Writer) {
			w.WriteString(`{\"`)
			repeat(w, "k", big)
			w.WriteString(`\":1,\"requiredSystemFeatures\":[\"cuda\"]}`)
		},
		want: []string{"cuda"},
	},
}

// TestFeaturesLargeJSON: a __json value of tens of MiB (any user can make
// Nix call the hook with one) is read streaming: the features come out
// right wherever they are, and the reader allocates under 1 MiB (its
// 64 KiB read buffer) for a 60 MiB value, whatever shape the bulk has.
// Reading the value whole took 548 MiB.
func TestFeaturesLargeJSON(t *testing.T) {
	for _, tc := range largeJSON {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "big.drv")
			size := writeJSONDrv(t, p, tc.body)
			if size < 50<<20 || size > MaxSize {
				t.Fatalf("fixture is %d bytes, want tens of MiB under MaxSize", size)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			fs, err := ReadFeatures(p)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, fs); d != "" {
				t.Errorf("features (-want +got):\n%s", d)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("ReadFeatures: %d MiB file, %d KiB allocated", size>>20, alloc>>10)
			if alloc > 1<<20 {
				t.Errorf("ReadFeatures allocated %d KiB for a %d MiB file, want under 1 MiB", alloc>>10, size>>20)
			}
		})
	}
}

// BenchmarkReadFeaturesLargeJSON reads each largeJSON derivation.
func BenchmarkReadFeaturesLargeJSON(b *testing.B) {
	for _, tc := range largeJSON {
		b.Run(tc.name, func(b *testing.B) {
			p := filepath.Join(b.TempDir(), "big.drv")
			b.SetBytes(writeJSONDrv(b, p, tc.body))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ReadFeatures(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// jsonDrv returns a derivation whose environment is env, in .drv text.
func jsonDrv(env ...EnvVar) []byte {
	d := &Derivation{Outputs: []Output{{Name: "out", Path: "/nix/store/x-out"}}, System: "x86_64-linux", Builder: "/bin/sh", Env: env}
	return d.Format()
}

// TestFeaturesJSONAgreesWithParse: on the corners of JSON, the streaming
// reader accepts what encoding/json accepts and gives the same features;
// what it refuses is a "structured attributes (__json)" error.
func TestFeaturesJSONAgreesWithParse(t *testing.T) {
	deep := func(n int) string {
		return `{"requiredSystemFeatures":["cuda"],"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`
	}
	for _, tc := range []struct {
		name string
		env  []EnvVar
		// ok: encoding/json accepts it (the test checks that it does).
		ok bool
	}{
		{name: "null", env: []EnvVar{{"__json", "null"}}, ok: true},
		{name: "empty object", env: []EnvVar{{"__json", " {} "}}, ok: true},
		{name: "escaped name", env: []EnvVar{{"__json", `{"\u0072equiredSystemFeatures":["cuda"]}`}}, ok: true},
		{name: "escaped slash in a name", env: []EnvVar{{"__json", `{"required\/SystemFeatures":["kvm"],"requiredSystemFeatures":["cuda"]}`}}, ok: true},
		{name: "non-ASCII escape in a name", env: []EnvVar{{"__json", `{"requiredSystemFeature\u00e9":["kvm"]}`}}, ok: true},
		{name: "longer name", env: []EnvVar{{"__json", `{"requiredSystemFeaturesX":["kvm"]}`}}, ok: true},
		{name: "last duplicate wins", env: []EnvVar{{"__json", `{"requiredSystemFeatures":["kvm"],"requiredSystemFeatures":["cuda","rocm"]}`}}, ok: true},
		{name: "bad duplicate then good", env: []EnvVar{{"__json", `{"requiredSystemFeatures":7,"requiredSystemFeatures":["cuda"]}`}}, ok: true},
		{name: "good duplicate then bad", env: []EnvVar{{"__json", `{"requiredSystemFeatures":["cuda"],"requiredSystemFeatures":7}`}}},
		{name: "features null", env: []EnvVar{{"__json", `{"requiredSystemFeatures":null}`}}, ok: true},
		{name: "features with spaces and escapes", env: []EnvVar{{"__json", "{ \"requiredSystemFeatures\" :\t[ \"cu\\u0064a\" , \"a\\\"b\" ]\n}"}}, ok: true},
		{name: "features not strings", env: []EnvVar{{"__json", `{"requiredSystemFeatures":["cuda",1]}`}}},
		{name: "numbers", env: []EnvVar{{"__json", `{"a":[0,-0,1.5,-2e10,3E+2,4e-3,0.0e0],"requiredSystemFeatures":["cuda"]}`}}, ok: true},
		{name: "leading zero", env: []EnvVar{{"__json", `{"a":01}`}}},
		{name: "bare minus", env: []EnvVar{{"__json", `{"a":-}`}}},
		{name: "dot without digits", env: []EnvVar{{"__json", `{"a":1.}`}}},
		{name: "exponent without digits", env: []EnvVar{{"__json", `{"a":1e+}`}}},
		{name: "literals", env: []EnvVar{{"__json", `{"a":[true,false,null],"b":{}}`}}, ok: true},
		{name: "bad literal", env: []EnvVar{{"__json", `{"a":tru}`}}},
		{name: "literal run on", env: []EnvVar{{"__json", `{"a":truex}`}}},
		{name: "trailing comma in object", env: []EnvVar{{"__json", `{"a":1,}`}}},
		{name: "trailing comma in array", env: []EnvVar{{"__json", `{"a":[1,]}`}}},
		{name: "mismatched brackets", env: []EnvVar{{"__json", `{"a":[1}}`}}},
		{name: "control character", env: []EnvVar{{"__json", "{\"a\":\"x\ty\"}"}}},
		{name: "bad escape", env: []EnvVar{{"__json", `{"a":"\x"}`}}},
		{name: "bad unicode escape", env: []EnvVar{{"__json", `{"a":"\u12g4"}`}}},
		{name: "invalid UTF-8", env: []EnvVar{{"__json", "{\"a\xff\":\"\xfe\",\"requiredSystemFeatures\":[\"c\xffa\"]}"}}, ok: true},
		{name: "trailing data", env: []EnvVar{{"__json", `{} x`}}},
		{name: "two values", env: []EnvVar{{"__json", `{}{}`}}},
		{name: "not an object", env: []EnvVar{{"__json", `["cuda"]`}}},
		{name: "empty", env: []EnvVar{{"__json", ``}}},
		{name: "unterminated", env: []EnvVar{{"__json", `{"requiredSystemFeatures":["cuda"]`}}},
		{name: "nested 10000 deep", env: []EnvVar{{"__json", deep(10000)}}, ok: true},
		{name: "nested 10001 deep", env: []EnvVar{{"__json", deep(10001)}}},
		{name: "first __json counts", env: []EnvVar{{"__json", `{"requiredSystemFeatures":["cuda"]}`}, {"__json", `{"requiredSystemFeatures":["kvm"]}`}}, ok: true},
		{name: "bad second __json is not read", env: []EnvVar{{"__json", `{}`}, {"__json", `{`}}, ok: true},
		{name: "first plain entry counts", env: []EnvVar{{"requiredSystemFeatures", "cuda"}, {"requiredSystemFeatures", "kvm"}}, ok: true},
		{name: "__json over the plain entry", env: []EnvVar{{"requiredSystemFeatures", "kvm"}, {"__json", `{"requiredSystemFeatures":["cuda"]}`}}, ok: true},
		{name: "features over 1 MiB", env: []EnvVar{{"__json", `{"requiredSystemFeatures":["` + strings.Repeat("x", 1<<20) + `"]}`}}, ok: true},
		{name: "long duplicate then short", env: []EnvVar{{"__json", `{"requiredSystemFeatures":["` + strings.Repeat("x", 1<<20) + `"],"requiredSystemFeatures":["cuda"]}`}}, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := jsonDrv(tc.env...)
			want, werr := parsedFeatures(b)
			if (werr == nil) != tc.ok {
				t.Fatalf("encoding/json: %v, want ok=%v", werr, tc.ok)
			}
			got, gerr := Features(bytes.NewReader(b))
			t.Logf("Features: %.200q, %v", got, gerr)
			switch {
			case werr != nil && gerr == nil:
				t.Errorf("Features = %q; encoding/json refuses it: %v", got, werr)
			case werr != nil && !strings.Contains(gerr.Error(), "structured attributes (__json)"):
				t.Errorf("Features error %q does not say structured attributes (__json)", gerr)
			case werr == nil && strings.Contains(tc.name, "over 1 MiB"):
				if gerr == nil || !strings.Contains(gerr.Error(), "longer than") {
					t.Errorf("Features = %.200q, %v; want a length error", got, gerr)
				}
			case werr == nil && gerr != nil:
				t.Errorf("Features: %v; encoding/json accepts it", gerr)
			case werr == nil:
				if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("features (-Parse +Features):\n%s", d)
				}
			}
		})
	}
}

// FuzzFeaturesJSON feeds arbitrary text as the __json value (where
// FuzzFeatures would have to find the .drv grammar first): the streaming
// reader and encoding/json agree on what they accept and what it gives.
func FuzzFeaturesJSON(f *testing.F) {
	for _, s := range []string{
		`{"requiredSystemFeatures":["cuda"]}`,
		`null`,
		`{"a":[1,-2.5e3,{"b":null}],"requiredSystemFeatures":["kvm","c\u0075da"]}`,
		`{"\u0072equiredSystemFeatures":["x"],"requiredSystemFeatures":7}`,
		`{"a":"\"\\\/\b\f\n\r\t"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, js string) {
		b := jsonDrv(EnvVar{"__json", js})
		want, werr := parsedFeatures(b)
		got, gerr := Features(bytes.NewReader(b))
		if werr != nil {
			if gerr == nil {
				t.Fatalf("Features = %q; encoding/json refuses %q: %v", got, js, werr)
			}
			return
		}
		if gerr != nil {
			t.Fatalf("Features: %v; encoding/json accepts %q", gerr, js)
		}
		if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("features of %q (-Parse +Features):\n%s", js, d)
		}
	})
}
