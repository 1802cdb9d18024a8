package hostdrivers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// otherUID is a user that is neither root nor the caller.
const otherUID = 64102

// trustTree is a host file's path in a temporary tree: base/a/b/lib.so,
// every directory root's (or the caller's) and 0755, the file 0644.
type trustTree struct {
	base, a, b, file string
}

func newTrustTree(t *testing.T) *trustTree {
	t.Helper()
	base := t.TempDir()
	fixtures.Must(t, os.Chmod(base, 0o755))
	tr := &trustTree{base: base, a: filepath.Join(base, "a")}
	tr.b = filepath.Join(tr.a, "b")
	tr.file = fixtures.Write(t, filepath.Join(tr.b, "lib.so"), "ELF")
	return tr
}

// untrustedPath returns the path an *UntrustedError names, "" for nil,
// and the error's text for any other error.
func untrustedPath(err error) string {
	var ue *UntrustedError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ue):
		return ue.Path
	default:
		return "other error: " + err.Error()
	}
}

// TestCheckTrustedPath: a host file passes only when nobody but root (or
// the caller) can change what opening its path gives: the file, its
// directory (sticky or not), every directory above it from / down (sticky
// ones excepted), and every symbolic link on the way, whose target is
// checked the same way. The error names the path at fault.
func TestCheckTrustedPath(t *testing.T) {
	tests := []struct {
		name string
		// asRoot marks the cases that give files to another user.
		asRoot bool
		// setup changes the tree and returns the path to check and the
		// path the refusal must name ("" when it passes).
		setup func(t *testing.T, tr *trustTree) (check, named string)
	}{
		{"root's file under root's directories", false, func(t *testing.T, tr *trustTree) (string, string) {
			return tr.file, ""
		}},
		{"file writable by others", false, func(t *testing.T, tr *trustTree) (string, string) {
			fixtures.Must(t, os.Chmod(tr.file, 0o666))
			return tr.file, tr.file
		}},
		{"own directory 1777", false, func(t *testing.T, tr *trustTree) (string, string) {
			fixtures.Must(t, os.Chmod(tr.b, 0o777|os.ModeSticky))
			return tr.file, tr.b
		}},
		{"own directory group-writable", false, func(t *testing.T, tr *trustTree) (string, string) {
			fixtures.Must(t, os.Chmod(tr.b, 0o775))
			return tr.file, tr.b
		}},
		{"ancestor 1777 above a 0755 directory", false, func(t *testing.T, tr *trustTree) (string, string) {
			fixtures.Must(t, os.Chmod(tr.a, 0o777|os.ModeSticky))
			return tr.file, ""
		}},
		{"ancestor 0777, not sticky", false, func(t *testing.T, tr *trustTree) (string, string) {
			fixtures.Must(t, os.Chmod(tr.a, 0o777))
			return tr.file, tr.a
		}},
		{"top directory group-writable", false, func(t *testing.T, tr *trustTree) (string, string) {
			fixtures.Must(t, os.Chmod(tr.base, 0o775))
			return tr.file, tr.base
		}},
		{"file of another user", true, func(t *testing.T, tr *trustTree) (string, string) {
			fixtures.Must(t, os.Chown(tr.file, otherUID, otherUID))
			return tr.file, tr.file
		}},
		{"own directory of another user", true, func(t *testing.T, tr *trustTree) (string, string) {
			fixtures.Must(t, os.Chown(tr.b, otherUID, otherUID))
			return tr.file, tr.b
		}},
		{"ancestor of another user", true, func(t *testing.T, tr *trustTree) (string, string) {
			fixtures.Must(t, os.Chown(tr.a, otherUID, otherUID))
			return tr.file, tr.a
		}},
		{"link on the way, of another user", true, func(t *testing.T, tr *trustTree) (string, string) {
			link := filepath.Join(tr.base, "via")
			fixtures.Must(t, os.Symlink("a", link))
			fixtures.Must(t, os.Lchown(link, otherUID, otherUID))
			return filepath.Join(link, "b", "lib.so"), link
		}},
		{"absolute link on the way into another user's directory", true, func(t *testing.T, tr *trustTree) (string, string) {
			theirs := filepath.Join(t.TempDir(), "theirs")
			fixtures.Must(t, os.MkdirAll(filepath.Join(theirs, "b"), 0o755))
			fixtures.Write(t, filepath.Join(theirs, "b", "lib.so"), "ELF")
			fixtures.Must(t, os.Chown(theirs, otherUID, otherUID))
			link := filepath.Join(tr.a, "via")
			fixtures.Must(t, os.Symlink(theirs, link))
			return filepath.Join(link, "b", "lib.so"), theirs
		}},
		{"relative link with .. into a directory others can write", false, func(t *testing.T, tr *trustTree) (string, string) {
			open := filepath.Join(tr.base, "open")
			fixtures.Write(t, filepath.Join(open, "lib.so"), "ELF")
			fixtures.Must(t, os.Chmod(open, 0o757))
			link := filepath.Join(tr.b, "via")
			fixtures.Must(t, os.Symlink("../../open/lib.so", link))
			return link, open
		}},
		{"the file a link to a file in a sticky directory", false, func(t *testing.T, tr *trustTree) (string, string) {
			sticky := filepath.Join(tr.base, "sticky")
			real := fixtures.Write(t, filepath.Join(sticky, "lib.so.1"), "ELF")
			fixtures.Must(t, os.Chmod(sticky, 0o777|os.ModeSticky))
			fixtures.Must(t, os.Symlink(real, filepath.Join(tr.b, "lib.so.1")))
			return filepath.Join(tr.b, "lib.so.1"), sticky
		}},
		{"link through root's links to root's file", false, func(t *testing.T, tr *trustTree) (string, string) {
			fixtures.Must(t, os.Symlink("b", filepath.Join(tr.a, "c")))
			fixtures.Must(t, os.Symlink("lib.so", filepath.Join(tr.b, "lib.so.1")))
			return filepath.Join(tr.a, "c", "lib.so.1"), ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.asRoot && os.Geteuid() != 0 {
				fixtures.Unavailable(t, "giving files to another user needs root")
			}
			tr := newTrustTree(t)
			check, named := tt.setup(t, tr)
			err := CheckTrustedPath(check)
			if diff := cmp.Diff(named, untrustedPath(err)); diff != "" {
				t.Errorf("CheckTrustedPath(%s): %v; path named (-want +got):\n%s", check, err, diff)
			}
			if err != nil && !strings.Contains(err.Error(), named) {
				t.Errorf("the message %q does not name %s", err, named)
			}
		})
	}
}

// TestManifestCheckTrusted: an entry's driver files, dependencies and
// vendor sources are checked again as they are now; a file that is gone
// passes where only root could put it back, and fails where anyone could
// (a sticky directory); the vendor files nixglhost made have no source.
func TestManifestCheckTrusted(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, tr *trustTree, m *Manifest) (named string)
	}{
		{"all root's", func(t *testing.T, tr *trustTree, m *Manifest) string {
			return ""
		}},
		{"driver file's directory now 0777", func(t *testing.T, tr *trustTree, m *Manifest) string {
			fixtures.Must(t, os.Chmod(tr.b, 0o777))
			return tr.b
		}},
		{"dependency's ancestor now 0777", func(t *testing.T, tr *trustTree, m *Manifest) string {
			fixtures.Must(t, os.Chmod(filepath.Join(tr.base, "deps"), 0o777))
			return filepath.Join(tr.base, "deps")
		}},
		{"vendor file's directory now 1777", func(t *testing.T, tr *trustTree, m *Manifest) string {
			d := filepath.Join(tr.base, "share", "icd.d")
			fixtures.Must(t, os.Chmod(d, 0o777|os.ModeSticky))
			return d
		}},
		{"driver file gone from root's directory", func(t *testing.T, tr *trustTree, m *Manifest) string {
			fixtures.Must(t, os.Remove(tr.file))
			return ""
		}},
		{"driver directory gone from a sticky directory", func(t *testing.T, tr *trustTree, m *Manifest) string {
			fixtures.Must(t, os.RemoveAll(tr.b))
			fixtures.Must(t, os.Chmod(tr.a, 0o777|os.ModeSticky))
			return tr.a
		}},
		{"a made vendor file has no source", func(t *testing.T, tr *trustTree, m *Manifest) string {
			m.Data = append(m.Data, DataOut{API: catalog.APIOpenCL, Dest: "etc/OpenCL/vendors/nvidia.icd", Made: "the host has no vendor file for libnvidia-opencl.so.1"})
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTrustTree(t)
			dep := fixtures.Write(t, filepath.Join(tr.base, "deps", "x", "libdep.so.1"), "ELF")
			vendor := fixtures.Write(t, filepath.Join(tr.base, "share", "icd.d", "nvidia_icd.json"), "{}")
			rel := func(p string) string { return strings.TrimPrefix(p, tr.base) }
			m := &Manifest{
				Root:  tr.base,
				Files: []*DriverFile{{Real: rel(tr.file), Base: "lib.so"}},
				Deps:  []*Dep{{Name: "libdep.so.1", Real: rel(dep)}},
				Data:  []DataOut{{API: catalog.APIVulkan, Dest: "share/vulkan/icd.d/nvidia_icd.json", Source: rel(vendor)}},
			}
			named := tt.setup(t, tr, m)
			err := m.CheckTrusted()
			if diff := cmp.Diff(named, untrustedPath(err)); diff != "" {
				t.Errorf("CheckTrusted: %v; path named (-want +got):\n%s", err, diff)
			}
		})
	}
}
