package ldpath

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"github.com/nixglhost/nixglhost/internal/fixtures"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitLibraryPath(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"/a", []string{"/a"}},
		{"/a:/b;/c", []string{"/a", "/b", "/c"}},
		{":", []string{"", ""}},
		{"/a::/b", []string{"/a", "", "/b"}},
		{"/a:", []string{"/a", ""}},
		{";/a", []string{"", "/a"}},
		{"/with space:/x", []string{"/with space", "/x"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, SplitLibraryPath(tt.in)); diff != "" {
			t.Errorf("SplitLibraryPath(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestDefaultDirs(t *testing.T) {
	tests := []struct {
		name    string
		class   elf.Class
		machine elf.Machine
		want    []string
	}{
		{"x86-64", elf.ELFCLASS64, elf.EM_X86_64, []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}},
		{"aarch64", elf.ELFCLASS64, elf.EM_AARCH64, []string{"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}},
		{"i386", elf.ELFCLASS32, elf.EM_386, []string{"/lib/i386-linux-gnu", "/usr/lib/i386-linux-gnu", "/lib32", "/usr/lib32", "/lib", "/usr/lib"}},
		{"armhf", elf.ELFCLASS32, elf.EM_ARM, []string{"/lib/arm-linux-gnueabihf", "/usr/lib/arm-linux-gnueabihf", "/lib", "/usr/lib"}},
		{"x32", elf.ELFCLASS32, elf.EM_X86_64, []string{"/lib/x86_64-linux-gnux32", "/usr/lib/x86_64-linux-gnux32", "/libx32", "/usr/libx32", "/lib", "/usr/lib"}},
		{"unknown 64", elf.ELFCLASS64, elf.EM_SPARCV9, []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"}},
		{"unknown 32", elf.ELFCLASS32, elf.EM_SPARC, []string{"/lib", "/usr/lib"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, DefaultDirs(tt.class, tt.machine)); diff != "" {
				t.Errorf("DefaultDirs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDedup(t *testing.T) {
	// A merged-/usr host with a cloud-style driver dir (lib -> lib64).
	root := tree(t,
		"lib->usr/lib",
		"lib64->usr/lib64",
		"usr/lib/x86_64-linux-gnu/",
		"usr/lib64/",
		"usr/local/nvidia/lib64/",
		"usr/local/nvidia/lib->lib64",
		"etc/alternatives/nv->/usr/local/nvidia/lib64",
		"file",
		"dangling->/nowhere",
	)
	in := []string{
		"/usr/local/nvidia/lib",
		"/usr/local/nvidia/lib64",
		"/lib/x86_64-linux-gnu",
		"/usr/lib/x86_64-linux-gnu/",
		"/lib64",
		"/usr/lib64",
		"/missing",
		"/file",
		"/dangling",
		"",
		"relative/dir",
		"/etc/alternatives/nv",
		"/lib",
		"/usr/lib",
	}
	kept, dropped := Dedup(root, in)
	wantKept := []string{"/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"}
	if diff := cmp.Diff(wantKept, kept); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	var gotDropped []string
	for _, d := range dropped {
		if d.Reason == "" {
			t.Errorf("%s dropped with no reason", d.Dir)
		}
		gotDropped = append(gotDropped, d.Dir)
	}
	wantDropped := []string{"/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu/", "/usr/lib64", "/missing", "/file", "/dangling", "", "relative/dir", "/etc/alternatives/nv", "/usr/lib"}
	if diff := cmp.Diff(wantDropped, gotDropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s\n%+v", diff, dropped)
	}
	for _, d := range dropped {
		if d.Dir == "/usr/lib64" && !strings.Contains(d.Reason, "/lib64") {
			t.Errorf("reason for /usr/lib64 = %q; want it to name /lib64", d.Reason)
		}
	}
}

// elfHeader returns the first 20 bytes of an ELF header for class and machine.
func elfHeader(class elf.Class, machine elf.Machine) string {
	h := make([]byte, 64)
	copy(h, elf.ELFMAG)
	h[elf.EI_CLASS] = byte(class)
	h[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.LittleEndian.PutUint16(h[16:], uint16(elf.ET_DYN))
	binary.LittleEndian.PutUint16(h[18:], uint16(machine))
	return string(h)
}

func TestSearcherFind(t *testing.T) {
	x64 := elfHeader(elf.ELFCLASS64, elf.EM_X86_64)
	i386 := elfHeader(elf.ELFCLASS32, elf.EM_386)
	root := tree(t,
		"lib->usr/lib",
		"usr/lib/x86_64-linux-gnu/libz.so.1="+x64,
		"usr/lib/x86_64-linux-gnu/libX11.so.6="+x64,
		"usr/lib/x86_64-linux-gnu/libonlydefault.so.1="+x64,
		"usr/lib/x86_64-linux-gnu/libdir.so.1/",
		"usr/lib/i386-linux-gnu/libz.so.1="+i386,
		"usr/local/nvidia/lib64/libcuda.so.1->libcuda.so.535.1",
		"usr/local/nvidia/lib64/libcuda.so.535.1="+x64,
		"wrong/libX11.so.6="+i386,
		"wrong/libz.so.1->/usr/lib/i386-linux-gnu/libz.so.1",
		"first/libz.so.1->/usr/lib/x86_64-linux-gnu/libz.so.1",
		"opt/stale/",
	)
	cache, err := ParseCache(writeCache(cacheLayout{new: true, bo: binary.LittleEndian, endian: 2}, []wEntry{
		{flags: FlagELFLibc6 | FlagX8664Lib64, key: "libcuda.so.1", value: "/usr/local/nvidia/lib64/libcuda.so.1"},
		{flags: FlagELFLibc6 | FlagX8664Lib64, key: "libgone.so.1", value: "/opt/stale/libgone.so.1"},
		{flags: FlagELFLibc6 | FlagX8664Lib64, key: "libonlydefault.so.1", value: "/opt/stale/libonlydefault.so.1"},
		{flags: FlagELFLibc6 | FlagX8664Lib64, key: "libX11.so.6", value: "/usr/lib/x86_64-linux-gnu/libX11.so.6"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := &Searcher{
		Root: root, Class: elf.ELFCLASS64, Machine: elf.EM_X86_64,
		LibraryPath: []string{"", "relative", "/wrong", "/missing", "/first"},
		Cache:       cache,
		Default:     DefaultDirs(elf.ELFCLASS64, elf.EM_X86_64),
		Accept:      MatchELF(elf.ELFCLASS64, elf.EM_X86_64),
	}
	tests := []struct {
		soname, want string
		notFound     bool
	}{
		{soname: "libz.so.1", want: "/first/libz.so.1"},                                    // wrong-class file in /wrong skipped
		{soname: "libX11.so.6", want: "/usr/lib/x86_64-linux-gnu/libX11.so.6"},             // from the cache
		{soname: "libcuda.so.1", want: "/usr/local/nvidia/lib64/libcuda.so.1"},             // cache path, not resolved
		{soname: "libonlydefault.so.1", want: "/lib/x86_64-linux-gnu/libonlydefault.so.1"}, // stale cache entry, default dir
		{soname: "libdir.so.1", notFound: true},                                            // a directory is no library
		{soname: "libgone.so.1", notFound: true},
		{soname: "libnothere.so", notFound: true},
		{soname: "../etc/passwd", notFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.soname, func(t *testing.T) {
			got, err := s.Find(tt.soname)
			if tt.notFound {
				if err == nil {
					t.Fatalf("Find = %q; want an error", got)
				}
				if !strings.Contains(tt.soname, "/") && !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("Find error %v does not wrap fs.ErrNotExist", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Find = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	// Without Accept the first file by name wins, whatever its class.
	s.Accept = nil
	if got, _ := s.Find("libz.so.1"); got != "/wrong/libz.so.1" {
		t.Errorf("without Accept: Find = %q; want /wrong/libz.so.1", got)
	}
	// An i386 searcher takes the plain 32-bit file.
	s32 := &Searcher{Root: root, Class: elf.ELFCLASS32, Machine: elf.EM_386, Default: DefaultDirs(elf.ELFCLASS32, elf.EM_386), Accept: MatchELF(elf.ELFCLASS32, elf.EM_386)}
	if got, err := s32.Find("libz.so.1"); err != nil || got != "/lib/i386-linux-gnu/libz.so.1" {
		t.Errorf("i386 Find = %q, %v", got, err)
	}
}

func TestNewHostSearcher(t *testing.T) {
	x64 := elfHeader(elf.ELFCLASS64, elf.EM_X86_64)
	// No cache: the ld.so.conf directories come before the defaults.
	root := tree(t,
		"etc/ld.so.conf=include /etc/ld.so.conf.d/*.conf\n",
		"etc/ld.so.conf.d/nvidia.conf=/usr/local/nvidia/lib64\n/usr/lib/x86_64-linux-gnu\n",
		"usr/local/nvidia/lib64/libcuda.so.1="+x64,
		"usr/lib/x86_64-linux-gnu/libcuda.so.1="+x64,
		"usr/lib/x86_64-linux-gnu/libz.so.1="+x64,
	)
	s, err := NewHostSearcher(root, elf.ELFCLASS64, elf.EM_X86_64)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cache != nil {
		t.Errorf("Cache = %v; want nil when the file is missing", s.Cache)
	}
	wantDefault := []string{"/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	if diff := cmp.Diff(wantDefault, s.Default); diff != "" {
		t.Errorf("Default (-want +got):\n%s", diff)
	}
	if got, err := s.Find("libcuda.so.1"); err != nil || got != "/usr/local/nvidia/lib64/libcuda.so.1" {
		t.Errorf("Find(libcuda.so.1) = %q, %v", got, err)
	}
	// With a cache, the configuration is not read: the loader does not.
	data := writeCache(cacheLayout{new: true, bo: binary.LittleEndian, endian: 2}, []wEntry{
		{flags: FlagELFLibc6 | FlagX8664Lib64, key: "libz.so.1", value: "/usr/lib/x86_64-linux-gnu/libz.so.1"},
	})
	if err := os.WriteFile(filepath.Join(root, DefaultCache), data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = NewHostSearcher(root, elf.ELFCLASS64, elf.EM_X86_64)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cache == nil || len(s.Cache.Entries) != 1 {
		t.Fatalf("Cache = %+v", s.Cache)
	}
	if diff := cmp.Diff(DefaultDirs(elf.ELFCLASS64, elf.EM_X86_64), s.Default); diff != "" {
		t.Errorf("Default with a cache (-want +got):\n%s", diff)
	}
	if got, err := s.Find("libcuda.so.1"); err != nil || got != "/usr/lib/x86_64-linux-gnu/libcuda.so.1" {
		t.Errorf("Find(libcuda.so.1) with a cache = %q, %v", got, err)
	}
	// A corrupt cache is an error naming the file.
	if err := os.WriteFile(filepath.Join(root, DefaultCache), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHostSearcher(root, elf.ELFCLASS64, elf.EM_X86_64); err == nil || !strings.Contains(err.Error(), "ld.so.cache") {
		t.Errorf("corrupt cache: err = %v", err)
	}
}

func TestMatchELF(t *testing.T) {
	root := tree(t,
		"x64="+elfHeader(elf.ELFCLASS64, elf.EM_X86_64),
		"arm64="+elfHeader(elf.ELFCLASS64, elf.EM_AARCH64),
		"i386="+elfHeader(elf.ELFCLASS32, elf.EM_386),
		"short=\x7fELF",
		"text=#!/bin/sh\n",
	)
	m := MatchELF(elf.ELFCLASS64, elf.EM_X86_64)
	for name, want := range map[string]bool{"x64": true, "arm64": false, "i386": false, "short": false, "text": false, "missing": false} {
		if got := m(filepath.Join(root, name)); got != want {
			t.Errorf("MatchELF(x86-64)(%s) = %v; want %v", name, got, want)
		}
	}
	if !MatchELF(elf.ELFCLASS64, elf.EM_NONE)(filepath.Join(root, "arm64")) {
		t.Error("EM_NONE should take any 64-bit machine")
	}
}

// TestFindMatchesLoader asks the real loader (ld.so --list, what ldd runs)
// where it finds the libraries of a few programs and libraries of this
// machine, and checks that NewHostSearcher("/").Find agrees for each.
func TestFindMatchesLoader(t *testing.T) {
	loader := "/lib64/ld-linux-x86-64.so.2"
	if _, err := os.Stat(loader); err != nil {
		fixtures.Unavailable(t, "no x86-64 glibc loader: %v", err)
	}
	s, err := NewHostSearcher("/", elf.ELFCLASS64, elf.EM_X86_64)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cache == nil {
		fixtures.Unavailable(t, "no /etc/ld.so.cache on this machine")
	}
	candidates := []string{"/bin/sh", "/bin/ls", "/usr/bin/git", "/usr/bin/python3", "/usr/bin/curl",
		"/usr/bin/perl", "/usr/bin/ssh", "/usr/bin/gpg", "/usr/bin/gdb", "/usr/bin/x86_64-linux-gnu-ld"}
	for _, so := range []string{"libstdc++.so.6", "libz.so.1", "libcurl.so.4", "libX11.so.6", "libssl.so.3", "libpython3.11.so.1.0"} {
		if p := s.Cache.Lookup(so, elf.ELFCLASS64, elf.EM_X86_64); len(p) > 0 {
			candidates = append(candidates, p[0])
		}
	}
	re := regexp.MustCompile(`^\s+(\S+) => (\S+) \(0x[0-9a-f]+\)$`)
	checked := map[string]string{}
	var order []string
	for _, c := range candidates {
		if _, err := os.Stat(c); err != nil {
			continue
		}
		cmd := exec.Command(loader, "--list", c)
		cmd.Env = []string{"PATH=/usr/bin:/bin"} // no LD_LIBRARY_PATH, no LD_PRELOAD
		out, err := cmd.Output()
		if err != nil {
			t.Logf("%s --list %s: %v", loader, c, err)
			continue
		}
		for _, l := range strings.Split(string(out), "\n") {
			m := re.FindStringSubmatch(l)
			if m == nil || strings.Contains(m[1], "/") {
				continue
			}
			if prev, ok := checked[m[1]]; ok {
				if prev != m[2] {
					t.Errorf("the loader gave two paths for %s: %s and %s", m[1], prev, m[2])
				}
				continue
			}
			checked[m[1]] = m[2]
			order = append(order, m[1])
		}
	}
	for _, must := range []string{"libc.so.6", "libm.so.6", "libstdc++.so.6"} {
		if _, ok := checked[must]; !ok {
			t.Errorf("no loader answer for %s", must)
		}
	}
	agree := 0
	for _, so := range order {
		got, err := s.Find(so)
		if err != nil || got != checked[so] {
			t.Errorf("Find(%s) = %q, %v; the loader found %s", so, got, err, checked[so])
			continue
		}
		agree++
	}
	t.Logf("%d of %d sonames resolved by the real loader agree with Find: %s", agree, len(order), strings.Join(order, " "))
}

// TestFindLibraryPathMatchesLoader checks LibraryPath and Accept against the
// real loader: a wrong-class libz.so.1 in the first --library-path
// directory is skipped by both, and the copy in the second is taken.
func TestFindLibraryPathMatchesLoader(t *testing.T) {
	loader := "/lib64/ld-linux-x86-64.so.2"
	if _, err := os.Stat(loader); err != nil {
		fixtures.Unavailable(t, "no x86-64 glibc loader: %v", err)
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		fixtures.Unavailable(t, "no gcc to build a 32-bit libz.so.1")
	}
	s, err := NewHostSearcher("/", elf.ELFCLASS64, elf.EM_X86_64)
	if err != nil {
		t.Fatal(err)
	}
	// A library of this machine that needs libz.so.1.
	var user string
	for _, so := range []string{"libcurl.so.4", "libxml2.so.2", "libpng16.so.16", "libssh2.so.1", "libelf.so.1"} {
		for _, p := range s.Cache.Lookup(so, elf.ELFCLASS64, elf.EM_X86_64) {
			if f, err := elf.Open(p); err == nil {
				libs, _ := f.ImportedLibraries()
				f.Close()
				for _, l := range libs {
					if l == "libz.so.1" && user == "" {
						user = p
					}
				}
			}
		}
	}
	if user == "" {
		fixtures.Unavailable(t, "no library here needs libz.so.1")
	}
	tmp := t.TempDir()
	wrong, right := filepath.Join(tmp, "wrong"), filepath.Join(tmp, "right")
	src := filepath.Join(tmp, "z.c")
	fixtures.Must(t, os.MkdirAll(wrong, 0o755))
	fixtures.Must(t, os.WriteFile(src, []byte("int zlibVersion(void) { return 0; }\n"), 0o644))
	if out, err := exec.Command("gcc", "-m32", "-shared", "-nostdlib", "-fPIC", "-Wl,-soname,libz.so.1", "-o", filepath.Join(wrong, "libz.so.1"), src).CombinedOutput(); err != nil {
		fixtures.Unavailable(t, "gcc -m32: %v\n%s", err, out)
	}
	copyFile(t, realLib(t), filepath.Join(right, "libz.so.1"))
	cmd := exec.Command(loader, "--library-path", wrong+":"+right, "--list", user)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --list %s: %v", loader, user, err)
	}
	m := regexp.MustCompile(`(?m)^\s+libz\.so\.1 => (\S+) `).FindSubmatch(out)
	if m == nil {
		t.Fatalf("the loader listed no libz.so.1:\n%s", out)
	}
	s.LibraryPath = []string{wrong, right}
	got, err := s.Find("libz.so.1")
	if err != nil || got != string(m[1]) {
		t.Fatalf("Find(libz.so.1) = %q, %v; the loader took %s", got, err, m[1])
	}
	if got != filepath.Join(right, "libz.so.1") {
		t.Fatalf("both took %s; want the 64-bit copy", got)
	}
}
