package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSuggest: a mistyped flag gets the nearest flags, GNU-spelled,
// nearest first; a name near nothing gets none.
func TestSuggest(t *testing.T) {
	tests := []struct {
		name string
		want []string
	}{
		{"docter", []string{"--doctor"}},
		{"Doctor", []string{"--doctor"}},
		{"dcotor", []string{"--doctor"}},
		{"verbos", []string{"--verbose"}},
		{"print", []string{"--print-env", "--prime"}},
		{"prmie", []string{"--prime"}},
		{"cache", []string{"--cache-dir", "--cache-list", "--cache-gc"}},
		{"cache-gcc", []string{"--cache-gc"}},
		{"link-run-opengl-drivers", []string{"--link-run-opengl-driver"}},
		{"hook-feature", []string{"--hook-features"}},
		{"D", []string{"-d"}},
		{"x", nil},
		{"frobnicate", nil},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, Suggest(Flags, tt.name)); d != "" {
				t.Errorf("Suggest(%q) (-want +got):\n%s", tt.name, d)
			}
		})
	}
}

// TestCheck: Check accepts what the flag package parses and words its
// refusals for a person, spelling flags GNU style.
func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"flags and a program", []string{"-d", "/x", "--driver-root=/r", "-doctor", "prog", "--docter"}, ""},
		{"after --", []string{"--", "--docter"}, ""},
		{"boolean with a value", []string{"--mesa=false", "prog"}, ""},
		{"argument that looks like a flag", []string{"--cache-dir", "--doctor"}, ""},
		{"one dash, mistyped", []string{"-docter"}, "unknown flag --docter; did you mean --doctor?"},
		{"two dashes, mistyped", []string{"-p", "--prmie"}, "unknown flag --prmie; did you mean --prime?"},
		{"short flags together", []string{"-vp"}, "unknown flag --vp; give short flags one by one: -v -p"},
		{"nothing near", []string{"--frobnicate"}, "unknown flag --frobnicate (nixglhost --help lists the flags)"},
		{"unknown letter", []string{"-x"}, "unknown flag -x (nixglhost --help lists the flags)"},
		{"missing argument", []string{"-v", "--run-dir"}, "--run-dir needs an argument: --run-dir DIR"},
		{"missing argument of -d", []string{"-d"}, "-d needs an argument: -d DIR"},
		{"boolean with an argument", []string{"--doctor=yes"}, `--doctor takes no argument (got "yes")`},
		{"three dashes", []string{"---doctor"}, "---doctor: not a flag (flags are -x or --name)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if err := Check(Flags, tt.args); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Check(%q) = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}
