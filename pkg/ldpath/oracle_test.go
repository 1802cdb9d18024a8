package ldpath

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// needLdconfigRoot returns the real ldconfig, or skips: the oracle tests
// need glibc's ldconfig, an x86-64 Linux host, and root (ldconfig -r
// chroots into the fake tree).
func needLdconfigRoot(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		// Not a missing fixture: listed in .ci/allowed-skips, which make
		// test reads.
		t.Skip("oracle tests expect an x86-64 glibc host")
	}
	p, err := exec.LookPath("ldconfig")
	if err != nil {
		for _, c := range []string{"/usr/sbin/ldconfig", "/sbin/ldconfig"} {
			if _, err := os.Stat(c); err == nil {
				p = c
			}
		}
	}
	if p == "" {
		fixtures.Unavailable(t, "no ldconfig")
	}
	if os.Geteuid() != 0 {
		fixtures.Unavailable(t, "ldconfig -r needs root")
	}
	return p
}

// realLib returns a real x86-64 shared library with a soname: the host's
// libz.so.1, resolved.
func realLib(t testing.TB) string {
	t.Helper()
	for _, c := range []string{"/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib64/libz.so.1", "/lib64/libz.so.1"} {
		if p, err := filepath.EvalSymlinks(c); err == nil {
			return p
		}
	}
	fixtures.Unavailable(t, "no libz.so.1 on this host")
	return ""
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
