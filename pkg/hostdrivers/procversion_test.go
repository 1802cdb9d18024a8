package hostdrivers

import (
	"regexp"
	"testing"
)

// procVersionOracle is the regular expression ParseProcVersion replaced,
// kept here as its oracle.
var procVersionOracle = regexp.MustCompile(`Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)\s`)

func oracle(text string) string {
	if m := procVersionOracle.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	return ""
}

var procVersionCases = []struct{ text, want string }{
	{"NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.261.03  Release Build  (dvs-builder@U16)\n", "535.261.03"},
	{"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build\n", "580.159.04"},
	{"NVRM version: NVIDIA UNIX Kernel Module for aarch64  540.4.0  Release Build\n", "540.4.0"},
	{"NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.256 Release\n", "470.256"},
	{"Kernel Module 535.261.x \n", ""},
	{"Kernel Module  535.261.03", ""}, // no blank after the version
	{"Kernel Module\t525.147.05\n", "525.147.05"},
	{"Kernel Module for  x86_64 Kernel Module 1.2 ", "1.2"},
	{"no module here", ""},
	{"", ""},
}

func TestParseProcVersion(t *testing.T) {
	for _, tc := range procVersionCases {
		if got := ParseProcVersion(tc.text); got != tc.want {
			t.Errorf("ParseProcVersion(%q) = %q, want %q", tc.text, got, tc.want)
		}
		if got := oracle(tc.text); got != tc.want {
			t.Errorf("the oracle disagrees with the table on %q: %q", tc.text, got)
		}
	}
}

// FuzzParseProcVersion: the hand-written parser of an untrusted file agrees
// with the regular expression it replaced, and never panics.
func FuzzParseProcVersion(f *testing.F) {
	for _, tc := range procVersionCases {
		f.Add(tc.text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if got, want := ParseProcVersion(text), oracle(text); got != want {
			t.Errorf("ParseProcVersion(%q) = %q, the regexp says %q", text, got, want)
		}
	})
}
