package elfscan

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// hostLibs are libraries every test machine has (libc6, libstdc++6; CI's
// Debian installs them with gcc), with symbol versions of both kinds: needs
// from other libraries and definitions of their own.
var hostLibs = []string{
	"/usr/lib/x86_64-linux-gnu/libc.so.6",
	"/usr/lib/x86_64-linux-gnu/libm.so.6",
	"/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
	"/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
	"/usr/bin/ls",
}

// stdImported is debug/elf's answer, the reference for ours.
func stdImported(t *testing.T, p string) []ImportedSymbol {
	t.Helper()
	f, err := elf.Open(p)
	fixtures.Must(t, err)
	defer f.Close()
	syms, err := f.ImportedSymbols()
	if errors.Is(err, elf.ErrNoSymbols) {
		return nil
	}
	fixtures.Must(t, err)
	var out []ImportedSymbol
	for _, s := range syms {
		out = append(out, ImportedSymbol{s.Name, s.Version, s.Library})
	}
	return out
}

// TestReadImportedSymbols: the bounded reader returns what debug/elf's
// ImportedSymbols returns (name, version, library, in order) for the
// committed tiny files, real host libraries and programs, and every ELF
// file of the real NVIDIA driver corpus, whose imports carry GLIBC_ version
// needs the doctor names when the host's glibc is too old.
func TestReadImportedSymbols(t *testing.T) {
	files := append(testdataFiles(t), hostLibs...)
	if !testing.Short() {
		files = append(files, corpusFiles(t, "amd64")...)
	}
	versioned := 0
	for _, p := range files {
		t.Run(corpusName(p), func(t *testing.T) {
			if _, err := os.Stat(p); err != nil {
				fixtures.Unavailable(t, "no %s (package libc6/libstdc++6): %v", p, err)
			}
			want := stdImported(t, p)
			got, err := ReadImportedSymbols(p)
			fixtures.Must(t, err)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ReadImportedSymbols(%s) (-debug/elf +ours):\n%s", p, diff)
			}
			for _, s := range got {
				if s.Library != "" {
					versioned++
					break
				}
			}
		})
	}
	if versioned < 3 {
		t.Errorf("only %d files imported a versioned symbol: the comparison proves little", versioned)
	}
}

// TestReadNotes: a note section is split into its notes as debug/elf's
// section data shows them (the cuda_compat note of a library built as
// NVIDIA's, and the GNU build ID of the host's libc); a missing section is
// no notes; a note that overruns its section or a section over the limit
// is an error naming the file, not a panic or a huge allocation.
func TestReadNotes(t *testing.T) {
	dir := t.TempDir()
	const note = `{"Format": 1, "CUDA Version": "12.4", "Driver": [535], "Device": [1]}`
	fixtures.CompatLib(t, dir, "1.1", note)
	compat := filepath.Join(dir, "libcuda.so.1.1")
	data, err := os.ReadFile(compat)
	fixtures.Must(t, err)
	off := noteOffset(t, compat, ".note.cuda.fwd_compatibility")
	overrun := bytes.Clone(data)
	overrun[off+4] = 0xff // descsz far past the section
	huge := bytes.Clone(data)
	setSectionSize(t, huge, compat, ".note.cuda.fwd_compatibility", maxNotes+4)

	for _, tc := range []struct {
		name    string
		data    []byte
		section string
		want    []Note
		wantErr string
	}{
		{name: "cuda_compat", data: data, section: ".note.cuda.fwd_compatibility",
			want: []Note{{Owner: "NVIDIA Corporation", Type: 1, Desc: []byte(note)}}},
		{name: "build id", data: data, section: ".note.gnu.build-id", want: stdNotes(t, compat, ".note.gnu.build-id")},
		{name: "absent", data: data, section: ".note.nothing"},
		{name: "not a note", data: data, section: ".dynstr"},
		{name: "overrun", data: overrun, section: ".note.cuda.fwd_compatibility", wantErr: "overruns its section"},
		{name: "too large", data: huge, section: ".note.cuda.fwd_compatibility", wantErr: "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "lib.so")
			fixtures.Must(t, os.WriteFile(p, tc.data, 0o644))
			got, err := ReadNotes(p, tc.section)
			if tc.wantErr != "" {
				var fe *FormatError
				if !errors.As(err, &fe) || fe.Path != p || !bytes.Contains([]byte(fe.Msg), []byte(tc.wantErr)) {
					t.Fatalf("ReadNotes = %v, %v; want a FormatError naming %s saying %q", got, err, p, tc.wantErr)
				}
				return
			}
			fixtures.Must(t, err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ReadNotes (-want +got):\n%s", diff)
			}
		})
	}
	if len(stdNotes(t, compat, ".note.gnu.build-id")) == 0 {
		t.Errorf("the compiler wrote no build ID: the build id case proves nothing")
	}
}

// stdNotes parses section name of p through debug/elf's section data.
func stdNotes(t *testing.T, p, name string) []Note {
	t.Helper()
	f, err := elf.Open(p)
	fixtures.Must(t, err)
	defer f.Close()
	s := f.Section(name)
	if s == nil {
		return nil
	}
	b, err := s.Data()
	fixtures.Must(t, err)
	var out []Note
	for len(b) >= 12 {
		namesz, descsz, typ := f.ByteOrder.Uint32(b), f.ByteOrder.Uint32(b[4:]), f.ByteOrder.Uint32(b[8:])
		pn := (namesz + 3) &^ 3
		out = append(out, Note{string(bytes.TrimRight(b[12:12+namesz], "\x00")), typ, b[12+pn : 12+pn+descsz]})
		b = b[12+pn+(descsz+3)&^3:]
	}
	return out
}

// noteOffset returns the file offset of section name of p.
func noteOffset(t *testing.T, p, name string) int {
	t.Helper()
	f, err := elf.Open(p)
	fixtures.Must(t, err)
	defer f.Close()
	s := f.Section(name)
	if s == nil {
		t.Fatalf("%s has no %s", p, name)
	}
	return int(s.Offset)
}

// setSectionSize rewrites, in data (the bytes of the 64-bit little-endian
// file p), the size of section name.
func setSectionSize(t *testing.T, data []byte, p, name string, size uint64) {
	t.Helper()
	f, err := elf.Open(p)
	fixtures.Must(t, err)
	defer f.Close()
	shoff := f.ByteOrder.Uint64(data[40:])
	for i, s := range f.Sections {
		if s.Name == name {
			f.ByteOrder.PutUint64(data[shoff+uint64(i)*64+32:], size)
			return
		}
	}
	t.Fatalf("%s has no %s", p, name)
}

// FuzzReadNotes checks that the note reader never panics and that every
// note it returns is made of the file's own bytes.
func FuzzReadNotes(f *testing.F) {
	for _, b := range addSeeds(f) {
		f.Add(b, ".note.gnu.build-id")
	}
	dir := f.TempDir()
	fixtures.CompatLib(f, dir, "1.1", `{"Format": 1, "CUDA Version": "12.4", "Driver": [535], "Device": [1]}`)
	b, err := os.ReadFile(filepath.Join(dir, "libcuda.so.1.1"))
	fixtures.Must(f, err)
	f.Add(b, ".note.cuda.fwd_compatibility")
	f.Fuzz(func(t *testing.T, data []byte, section string) {
		notes, err := ReadNotesFrom(bytes.NewReader(data), int64(len(data)), "fuzz", section)
		if err != nil {
			return
		}
		for _, n := range notes {
			if !bytes.Contains(data, []byte(n.Owner)) || !bytes.Contains(data, n.Desc) {
				t.Errorf("note %+v is not in the file", n)
			}
		}
	})
}

// FuzzReadImportedSymbols checks that the symbol reader never panics and
// that every name and version it returns is a NUL-terminated string of the
// file.
func FuzzReadImportedSymbols(f *testing.F) {
	for _, b := range addSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		syms, err := ReadImportedSymbolsFrom(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			return
		}
		for _, s := range syms {
			for _, str := range []string{s.Name, s.Version, s.Library} {
				if !bytes.Contains(data, append([]byte(str), 0)) {
					t.Errorf("symbol %+v: %q is not a string of the file", s, str)
				}
			}
		}
	})
}
