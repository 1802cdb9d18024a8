package ldpath

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseCache(f *testing.F) {
	subdirs := []string{"x86-64-v2", "x86-64-v3"}
	for _, l := range []cacheLayout{
		{new: true, bo: binary.LittleEndian, endian: 2, subdirs: subdirs, generator: "g"},
		{new: true, bo: binary.BigEndian, endian: 3, subdirs: subdirs},
		{new: true, bo: binary.BigEndian, endian: 0},
		{old: true, bo: binary.LittleEndian},
		{old: true, bo: binary.BigEndian},
		{old: true, new: true, bo: binary.LittleEndian, endian: 2, subdirs: subdirs, generator: "g"},
	} {
		f.Add(writeCache(l, testEntries))
		f.Add(writeCache(l, testEntries[:1]))
	}
	if data, err := os.ReadFile(DefaultCache); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCache(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			if c != nil {
				t.Fatalf("cache %v with error %v", c, err)
			}
			return
		}
		// Entries are bounded by the input: no entry can be smaller than
		// its record in the file.
		if len(c.Entries) > len(data)/oldEntrySize {
			t.Fatalf("%d entries from %d bytes", len(c.Entries), len(data))
		}
		for _, e := range c.Entries {
			e.Matches(elf.ELFCLASS64, elf.EM_X86_64)
			c.Lookup(e.Soname, e.Class, e.Machine)
		}
	})
}

func FuzzParseConf(f *testing.F) {
	f.Add("/usr/local/lib # c\ninclude conf.d/*.conf\n", "/opt/a\ninclude ../ld.so.conf\nhwcap 1 x\n")
	f.Add("include /etc/conf.d/a.conf /etc/conf.d/[ab].conf\n", "/x=libc6\n\n#only\n")
	f.Add("include\t*\n", "include *\n")
	f.Add("/a /b:/c,/d\r\n", "")
	f.Fuzz(func(t *testing.T, top, included string) {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "etc/conf.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc/ld.so.conf"), []byte(top), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc/conf.d/a.conf"), []byte(included), 0o644); err != nil {
			t.Fatal(err)
		}
		dirs, err := ParseConf(root, DefaultConf)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, d := range dirs {
			if !strings.HasPrefix(d, "/") || path.Clean(d) != d {
				t.Fatalf("directory %q is not absolute and clean", d)
			}
			if seen[d] {
				t.Fatalf("directory %q twice in %q", d, dirs)
			}
			seen[d] = true
		}
	})
}

func BenchmarkReadCache(b *testing.B) {
	if _, err := os.Stat(DefaultCache); err != nil {
		b.Skipf("no %s: %v", DefaultCache, err)
	}
	for b.Loop() {
		if _, err := ReadCache("/", DefaultCache); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFind(b *testing.B) {
	s, err := NewHostSearcher("/", elf.ELFCLASS64, elf.EM_X86_64)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Find("libc.so.6"); err != nil {
		b.Skipf("no libc.so.6 here: %v", err)
	}
	for b.Loop() {
		if _, err := s.Find("libc.so.6"); err != nil {
			b.Fatal(err)
		}
	}
}
