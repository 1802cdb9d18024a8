package hostdrivers

import (
	"debug/elf"
	"reflect"
	"testing"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
)

// TestInputsKeyed: every Options field is an input of Resolve that names
// the hot path's index, or is listed here as not one. A field added to
// Options without being keyed (as TrustedFilesOnly once was) fails here:
// two launches differing only in it would share an index, and the second
// would take the first one's entry.
func TestInputsKeyed(t *testing.T) {
	notInputs := map[string]string{
		"Logger":    "where debug records go",
		"BuildHook": "a test's crash-injection hook",
	}
	base := inputsName(&Options{})
	typ := reflect.TypeOf(Options{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		t.Run(f.Name, func(t *testing.T) {
			if why, ok := notInputs[f.Name]; ok {
				t.Logf("not an input: %s", why)
				return
			}
			var o Options
			v := reflect.ValueOf(&o).Elem().Field(i)
			switch v.Interface().(type) {
			case string:
				v.SetString("/x")
			case []string:
				v.Set(reflect.ValueOf([]string{"/x"}))
			case bool:
				v.SetBool(true)
			case elfscan.Ident:
				v.Set(reflect.ValueOf(elfscan.Ident{Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Machine: elf.EM_386}))
			default:
				t.Fatalf("Options.%s (%s): teach this test a non-zero value, and key the field in inputs()", f.Name, f.Type)
			}
			if inputsName(&o) == base {
				t.Errorf("Options.%s does not change the index name: key it in inputs() (or list it here as not an input, with why)", f.Name)
			}
		})
	}
}

// TestInputsCanonical: spellings of one input name one index.
func TestInputsCanonical(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b Options
	}{
		{"root", Options{}, Options{Root: "/"}},
		{"target", Options{}, Options{Target: NativeIdent()}},
	} {
		if inputsName(&tc.a) != inputsName(&tc.b) {
			t.Errorf("%s: %+v and %+v name two indexes", tc.name, tc.a, tc.b)
		}
	}
}
