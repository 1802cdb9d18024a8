package elfscan

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// oracleInfo computes Info with debug/elf, which reads whole sections.
func oracleInfo(t testing.TB, path string) *Info {
	t.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatalf("debug/elf: %v", err)
	}
	defer ef.Close()
	in := &Info{Ident: Ident{ef.Class, ef.Data, ef.Machine, ef.Type}}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			in.Interp = string(bytes.TrimRight(b, "\x00"))
		}
	}
	str := func(tag elf.DynTag) []string {
		s, err := ef.DynString(tag)
		if err != nil {
			t.Fatalf("debug/elf DynString(%v): %v", tag, err)
		}
		return s
	}
	in.Needed = str(elf.DT_NEEDED)
	if s := str(elf.DT_SONAME); len(s) > 0 {
		in.Soname = s[len(s)-1]
	}
	if s := str(elf.DT_RUNPATH); len(s) > 0 {
		in.Runpath, in.HasRunpath = s[len(s)-1], true
	}
	if s := str(elf.DT_RPATH); len(s) > 0 {
		in.Rpath, in.HasRpath = s[len(s)-1], true
	}
	needs, err := ef.DynamicVersionNeeds()
	if err != nil && ef.Section(".gnu.version_r") != nil {
		t.Fatalf("debug/elf DynamicVersionNeeds: %v", err)
	}
	for _, n := range needs {
		vn := VersionNeed{File: n.Name}
		for _, d := range n.Needs {
			vn.Versions = append(vn.Versions, d.Dep)
		}
		in.VersionNeeds = append(in.VersionNeeds, vn)
	}
	defs, err := ef.DynamicVersions()
	if err != nil && ef.Section(".gnu.version_d") != nil {
		t.Fatalf("debug/elf DynamicVersions: %v", err)
	}
	for _, d := range defs {
		if d.Flags&elf.VER_FLG_BASE == 0 {
			in.VersionDefs = append(in.VersionDefs, d.Name)
		}
	}
	return in
}

// countingReader counts the bytes read through it.
type countingReader struct {
	f     *os.File
	bytes int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.f.ReadAt(p, off)
	c.bytes += int64(n)
	return n, err
}

// checkRead compares Read with the oracle and checks it read little.
func checkRead(t *testing.T, path string) *Info {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	cr := &countingReader{f: f}
	got, err := ReadFrom(cr, st.Size(), path)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	if diff := cmp.Diff(oracleInfo(t, path), got); diff != "" {
		t.Errorf("%s: Info mismatch (-debug/elf +ours):\n%s", path, diff)
	}
	if st.Size() > 1<<20 && cr.bytes > 256<<10 {
		t.Errorf("%s: read %d of %d bytes", path, cr.bytes, st.Size())
	}
	id, err := ReadIdent(path)
	if err != nil {
		t.Fatalf("ReadIdent: %v", err)
	}
	if id != got.Ident {
		t.Errorf("ReadIdent = %+v, Read gave %+v", id, got.Ident)
	}
	return got
}

func TestReadFixtures(t *testing.T) {
	compilerAMD64.need(t)
	dir := t.TempDir()
	c := compilerAMD64
	lib := `int f(void){return 1;}`
	tests := []struct {
		name  string
		src   string
		flags []string
		want  Info // only the fields compared below
	}{
		{"runpath", lib, []string{"-shared", "-fPIC", "-Wl,-soname,librp.so.1", "-Wl,-rpath,/opt/a:/opt/b", "-Wl,--enable-new-dtags"},
			Info{Soname: "librp.so.1", Runpath: "/opt/a:/opt/b", HasRunpath: true}},
		{"rpath", lib, []string{"-shared", "-fPIC", "-Wl,-rpath,$ORIGIN/x", "-Wl,--disable-new-dtags"},
			Info{Rpath: "$ORIGIN/x", HasRpath: true}},
		{"none", lib, []string{"-shared", "-fPIC"}, Info{}},
		{"pie", "int main(void){return 0;}", []string{"-pie", "-fPIE"}, Info{Interp: "/lib64/ld-linux-x86-64.so.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := c.mustBuild(t, filepath.Join(dir, tt.name), tt.src, tt.flags...)
			got := checkRead(t, p)
			if got.Soname != tt.want.Soname || got.Runpath != tt.want.Runpath || got.HasRunpath != tt.want.HasRunpath ||
				got.Rpath != tt.want.Rpath || got.HasRpath != tt.want.HasRpath || got.Interp != tt.want.Interp {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if len(got.VersionNeeds) == 0 && tt.name == "pie" {
				t.Errorf("no version needs in a program linked with libc")
			}
		})
	}
}

func TestReadSystem(t *testing.T) {
	paths := []string{"/lib/x86_64-linux-gnu/libc.so.6", "/bin/sh", "/usr/aarch64-linux-gnu/lib/libc.so.6"}
	var missing []string
	for _, p := range paths {
		if !isELF(p) {
			missing = append(missing, p)
			continue
		}
		t.Run(filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p), func(t *testing.T) {
			in := checkRead(t, p)
			if strings.HasSuffix(p, "libc.so.6") && len(in.VersionDefs) < 10 {
				t.Errorf("libc defines only %q", in.VersionDefs)
			}
		})
	}
	switch {
	case len(missing) == len(paths):
		fixtures.Unavailable(t, "none of %q is an ELF file here (not a Debian layout): nothing was read", paths)
	case len(missing) > 0:
		t.Logf("not on this machine, not read: %q", missing)
	}
}

func TestReadCorpus(t *testing.T) {
	fixtures.SkipShort(t, "reading every file of the driver corpus")
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			for _, p := range corpusFiles(t, arch) {
				t.Run(corpusName(p), func(t *testing.T) { checkRead(t, p) })
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	valid, err := os.ReadFile("/bin/sh")
	if err != nil {
		fixtures.Unavailable(t, "a real ELF file to cut short: %v", err)
	}
	dir := t.TempDir()
	tests := []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "too short"},
		{"text", []byte("#!/bin/sh\necho hello, this is not an ELF file\n"), "bad magic"},
		{"class", append([]byte("\x7fELF\x07\x01\x01"), make([]byte, 60)...), "unknown ELF class"},
		{"header only", valid[:40], "past the end"},
		{"truncated phdrs", valid[:100], "past the end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(p, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Read(p)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Read = %v, want a *FormatError", err)
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not name %s and say %q", err, p, tt.msg)
			}
		})
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read(missing) = %v, want ErrNotExist", err)
	}
}
