package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMesaWrapperDiskUse backs README's wrapper-or-system-mode table: a
// wrapper entry of this machine's Mesa holds symlinks, shims and the
// copies of Mesa's DRI loaders only: at most a tenth of the bytes it
// exposes (see DESIGN.md, "Mesa"). It logs the bytes, README's "0.86 MB
// copied of the 257 MB exposed" for Debian 12's Mesa 22.3.6.
func TestMesaWrapperDiskUse(t *testing.T) {
	mesaInstalled(t)
	cache := t.TempDir()
	stdout, stderr, code := nixglhost(t, baseEnv(t), "--mesa", "--cache-dir", cache, "-p")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	entry := filepath.Dir(strings.TrimSpace(stdout))
	copied, exposed := entryBytes(t, entry)
	t.Logf("Mesa wrapper entry %s: %d bytes copied of the %d bytes it exposes (%.2f%%)", entry, copied, exposed, 100*float64(copied)/float64(exposed))
	if copied*10 > exposed {
		t.Errorf("the Mesa entry copies %d of the %d bytes it exposes: more than a tenth", copied, exposed)
	}
}
