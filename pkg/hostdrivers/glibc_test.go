package hostdrivers

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

const (
	v535 = "535.261.03"
	v550 = "550.54.14"
)

// TestLaunchWarnings checks the launch path's cheap findings against a
// manifest: one line per blocking finding, none for a clean one.
func TestLaunchWarnings(t *testing.T) {
	store, _ := fixtures.OldStore(t)
	interp := filepath.Join(store, "ld-linux-x86-64.so.2")
	needs := []GlibcNeed{{"libcuda.so." + v535, "GLIBC_2.34"}, {"libnvidia-ml.so." + v535, "GLIBC_2.7"}, {"libX11.so.6", "GLIBC_2.33"}}
	tests := []struct {
		name    string
		m       *Manifest
		interp  string
		environ []string
		want    []string
	}{
		{"nil manifest", nil, interp, nil, nil},
		{"clean", &Manifest{DriverVersion: v535, ModuleVersion: v535}, interp, nil, nil},
		{"old entry without glibc needs", &Manifest{DriverVersion: v535}, interp, nil, nil},
		{"mismatch", &Manifest{DriverVersion: v535, ModuleVersion: v550}, "", nil, []string{
			"kernel module " + v550 + " is loaded but the userspace driver is " + v535 + ": expect \"Driver/library version mismatch\" (run nixglhost --doctor)"}},
		{"glibc", &Manifest{DriverVersion: v535, GlibcNeeds: needs}, interp, nil, []string{
			"libcuda.so." + v535 + " needs GLIBC_2.34 but the program's glibc is 2.17 (and 1 more files): expect \"version `GLIBC_2.34' not found\" (run nixglhost --doctor)"}},
		{"preload", &Manifest{}, "", []string{"LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libc.so.6 /usr/lib/libfoo.so"}, []string{
			"LD_PRELOAD names /usr/lib/x86_64-linux-gnu/libc.so.6, a glibc library: the program may load the host's glibc and fail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := LaunchWarnings(tt.m, tt.interp, tt.environ)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("LaunchWarnings (-want +got):\n%s", diff)
			}
		})
	}
}
