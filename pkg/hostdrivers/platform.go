package hostdrivers

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
)

// VDPAU's one directory for two classes (see docs/DESIGN.md, "32-bit
// programs"). libvdpau dlopens VDPAU_DRIVER_PATH/libvdpau_<driver>.so.1,
// a path with a slash, in which glibc expands the dynamic string tokens:
// $PLATFORM is the loading process's platform name, which differs between
// the classes of one x86 machine. $LIB does not: Nix's glibc expands it
// to "lib" for both. So the 32-bit companion entry holds, beside its
// lib/vdpau, one lib/vdpau-<platform> link per name $PLATFORM may take:
// a 32-bit name leads to its own lib/vdpau, a 64-bit one to the 64-bit
// entry's (Options.VDPAUPeer), and VDPAU_DRIVER_PATH names
// lib/vdpau-$PLATFORM of the companion.
const (
	// vdpauPlatformDir is the prefix of those links in lib/.
	vdpauPlatformDir = "vdpau-"
	// VDPAUPlatformToken is the token glibc expands to the platform.
	VDPAUPlatformToken = "$PLATFORM"
)

// platforms64 and platforms32 are the values glibc gives $PLATFORM in an
// x86-64 and in an i386 process: the kernel's AT_PLATFORM ("x86_64";
// "i686" for a 32-bit process, also under qemu-i386), which x86 glibc
// replaces with "haswell" or "xeon_phi" on some Intel CPUs (64-bit) and
// with "i686" or "i586" by the CPU's features (32-bit).
var (
	platforms64 = []string{"haswell", "x86_64", "xeon_phi"}
	platforms32 = []string{"i386", "i486", "i586", "i686"}
)

// vdpauPlatformLinks returns the lib/vdpau-<platform> links, name to
// target, of an entry for target t whose lib/ holds exposed: none unless
// t is i386 and the entry has a VDPAU driver; then the 32-bit names lead
// to "vdpau" beside them and, when peer (the 64-bit entry's lib/vdpau) is
// set, the 64-bit names to peer. Each link sits beside lib/vdpau, so a
// backend loaded through one finds lib/ at $ORIGIN/.. (the kernel
// resolves ".." after the link).
func vdpauPlatformLinks(t elfscan.Ident, exposed map[string]bool, peer string) [][2]string {
	if t.Machine != elf.EM_386 || !hasVDPAUBackend(exposed) {
		return nil
	}
	var out [][2]string
	for _, p := range platforms32 {
		out = append(out, [2]string{vdpauPlatformDir + p, "vdpau"})
	}
	if peer != "" {
		for _, p := range platforms64 {
			out = append(out, [2]string{vdpauPlatformDir + p, peer})
		}
	}
	return out
}

// hasVDPAUBackend reports whether an entry whose lib/ holds exposed gets
// lib/vdpau.
func hasVDPAUBackend(exposed map[string]bool) bool {
	for _, b := range backendsOf(exposed) {
		if b.sub == "vdpau" {
			return true
		}
	}
	return false
}

// makeVDPAUPlatformLinks makes the links of vdpauPlatformLinks in lib.
func makeVDPAUPlatformLinks(lib string, links [][2]string) error {
	for _, l := range links {
		if err := os.Symlink(l[1], filepath.Join(lib, l[0])); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cache entry %s: %w", filepath.Dir(lib), err)
		}
	}
	return nil
}

// VDPAUPeer returns the VDPAUPeer of the companion options o32 (from
// CompanionOptions) beside the program's entry at mainEntry: its
// lib/vdpau when it has one and the companion is a wrapper's, else "". A
// self-contained companion gets none: nothing sets VDPAU_DRIVER_PATH for
// it (nixpkgs' 32-bit libvdpau looks in /run/opengl-driver-32), and a
// link out of it would be a path its mounts do not carry. PrepareCompanion
// sets it; a report of the companion's entry takes it from here too.
func VDPAUPeer(o32 *Options, mainEntry string) string {
	if o32.SelfContained {
		return ""
	}
	d := filepath.Join(mainEntry, "lib", "vdpau")
	var st unix.Stat_t
	if unix.Stat(d, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return ""
	}
	return d
}

// VDPAUDriverPath returns the VDPAU_DRIVER_PATH for a launch whose entry
// is dir and whose 32-bit companion entry is companion ("" for none):
// companion/lib/vdpau-$PLATFORM when the companion has those links, else
// dir/lib/vdpau when it exists, else "".
func VDPAUDriverPath(dir, companion string) string {
	if companion != "" {
		if fi, err := os.Stat(filepath.Join(companion, "lib", vdpauPlatformDir+platforms32[len(platforms32)-1])); err == nil && fi.IsDir() {
			return filepath.Join(companion, "lib", vdpauPlatformDir+VDPAUPlatformToken)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "lib", "vdpau")); err == nil && fi.IsDir() {
		return filepath.Join(dir, "lib", "vdpau")
	}
	return ""
}
