package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMesaWrapperDiskUse backs README's wrapper-or-system-mode table: a
// wrapper entry of this machine's Mesa holds mostly copies (its drivers
// and their dependencies, patched to find deps/), not links to the host.
// It logs the bytes copied, README's "213 MB" for Debian 12's Mesa 22.3.6.
func TestMesaWrapperDiskUse(t *testing.T) {
	mesaInstalled(t)
	cache := t.TempDir()
	stdout, stderr, code := nixglhost(t, baseEnv(t), "--mesa", "--cache-dir", cache, "-p")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	entry := filepath.Dir(strings.TrimSpace(stdout))
	var copied, linked int64
	err := filepath.WalkDir(entry, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			copied += fi.Size()
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if !filepath.IsAbs(target) {
				return nil // a name inside the entry
			}
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			linked += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Mesa wrapper entry %s: %d bytes copied, %d bytes linked from the host", entry, copied, linked)
	if copied <= linked {
		t.Errorf("the Mesa entry copies %d bytes and links %d: README says it is mostly copies", copied, linked)
	}
}
