package ldpath

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree builds a fake root under a new temporary directory. Each spec is
// "path" (a directory when it ends in '/', else an empty file),
// "path=contents" (a file), or "path->target" (a symbolic link).
func tree(t testing.TB, specs ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, s := range specs {
		mk(t, root, s)
	}
	return root
}

func mk(t testing.TB, root, spec string) {
	t.Helper()
	if name, target, ok := strings.Cut(spec, "->"); ok {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return
	}
	if strings.HasSuffix(spec, "/") {
		if err := os.MkdirAll(filepath.Join(root, spec), 0o755); err != nil {
			t.Fatal(err)
		}
		return
	}
	name, contents, _ := strings.Cut(spec, "=")
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(contents), 0o644); err != nil {
		t.Fatal(err)
	}
}
