package hostdrivers

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestVDPAUPlatformLinks: only a 32-bit x86 entry with a VDPAU driver
// gets lib/vdpau-<platform> links; the 64-bit platforms lead to the peer
// only when there is one.
func TestVDPAUPlatformLinks(t *testing.T) {
	i386, _ := Companion(NativeIdent())
	withVDPAU := map[string]bool{"libvdpau_nvidia.so.1": true, "libcuda.so.1": true}
	self := [][2]string{{"vdpau-i386", "vdpau"}, {"vdpau-i486", "vdpau"}, {"vdpau-i586", "vdpau"}, {"vdpau-i686", "vdpau"}}
	peer := "/c/main/lib/vdpau"
	tests := []struct {
		name    string
		exposed map[string]bool
		x86     bool
		peer    string
		want    [][2]string
	}{
		{name: "64-bit entry", exposed: withVDPAU, x86: true, peer: peer},
		{name: "32-bit, no VDPAU driver", exposed: map[string]bool{"libcuda.so.1": true}, peer: peer},
		{name: "32-bit, no peer", exposed: withVDPAU, want: self},
		{name: "32-bit with the 64-bit peer", exposed: withVDPAU, peer: peer,
			want: append(append([][2]string{}, self...), [2]string{"vdpau-haswell", peer}, [2]string{"vdpau-x86_64", peer}, [2]string{"vdpau-xeon_phi", peer})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := i386
			if tt.x86 {
				target = NativeIdent()
			}
			if diff := cmp.Diff(tt.want, vdpauPlatformLinks(target, tt.exposed, tt.peer)); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVDPAUDriverPath: the companion's lib/vdpau-$PLATFORM where it has
// the links, else the entry's lib/vdpau, else nothing.
func TestVDPAUDriverPath(t *testing.T) {
	main, comp, bare := t.TempDir(), t.TempDir(), t.TempDir()
	fixtures.Must(t, os.MkdirAll(filepath.Join(main, "lib", "vdpau"), 0o755))
	fixtures.Must(t, os.MkdirAll(filepath.Join(comp, "lib", "vdpau"), 0o755))
	fixtures.Must(t, os.MkdirAll(filepath.Join(bare, "lib"), 0o755))
	fixtures.Must(t, makeVDPAUPlatformLinks(filepath.Join(comp, "lib"), [][2]string{{"vdpau-i686", "vdpau"}}))
	tests := []struct{ name, dir, companion, want string }{
		{"no companion", main, "", filepath.Join(main, "lib", "vdpau")},
		{"companion with the links", main, comp, filepath.Join(comp, "lib", "vdpau-$PLATFORM")},
		{"companion without them", main, bare, filepath.Join(main, "lib", "vdpau")},
		{"no VDPAU driver", bare, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VDPAUDriverPath(tt.dir, tt.companion); got != tt.want {
				t.Errorf("VDPAUDriverPath = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestVDPAUPeer: a wrapper's companion points at the program's entry's
// lib/vdpau when it has one; a self-contained companion never points out
// of itself (its mounts would not carry the link's target).
func TestVDPAUPeer(t *testing.T) {
	main, bare := t.TempDir(), t.TempDir()
	fixtures.Must(t, os.MkdirAll(filepath.Join(main, "lib", "vdpau"), 0o755))
	tests := []struct {
		name  string
		o     Options
		entry string
		want  string
	}{
		{"wrapper", Options{}, main, filepath.Join(main, "lib", "vdpau")},
		{"wrapper, no VDPAU driver", Options{}, bare, ""},
		{"self-contained", Options{SelfContained: true}, main, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VDPAUPeer(&tt.o, tt.entry); got != tt.want {
				t.Errorf("VDPAUPeer = %q, want %q", got, tt.want)
			}
		})
	}
}
