package rawfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		data    []byte
		limit   int64
		wantErr bool
	}{
		{"empty", nil, 10, false},
		{"small", []byte("hello\n"), 10, false},
		{"at the limit", bytes.Repeat([]byte("x"), 10), 10, false},
		{"over the limit", bytes.Repeat([]byte("x"), 11), 10, true},
		{"large", bytes.Repeat([]byte("0123456789"), 100000), 1 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(p, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(p, 0, tt.limit)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), p) {
					t.Fatalf("ReadFile: %v, want an error naming %s", err, p)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.data) {
				t.Fatalf("ReadFile: %d bytes, %v; want %d bytes", len(got), err, len(tt.data))
			}
		})
	}
}

// TestReadAllGrown: a file that grew after its size was taken is read
// whole, within the limit.
func TestReadAllGrown(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := bytes.Repeat([]byte("ab"), 5000)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ReadAll(f, 3, 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll: %d bytes, %v; want %d", len(got), err, len(data))
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	if err := os.Symlink("/etc/hostname", link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(link, unix.O_NOFOLLOW); !errors.Is(err, unix.ELOOP) || !strings.Contains(err.Error(), link) {
		t.Errorf("Open(link, O_NOFOLLOW): %v, want ELOOP naming the path", err)
	}
	if _, err := Open(filepath.Join(dir, "missing"), 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing): %v, want not-exist", err)
	}
}
