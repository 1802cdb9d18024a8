package hostdrivers

import (
	"testing"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/google/go-cmp/cmp"
)

func TestIndexRoundTrip(t *testing.T) {
	idx := &index{
		Key:    "0123456789abcdef0123456789abcdef",
		Module: "535.261.03",
		Summary: &Manifest{Format: FormatVersion, Key: "0123456789abcdef0123456789abcdef", DriverVersion: "535.261.03",
			ModuleVersion: "535.261.03", Root: "/", Class: "ELFCLASS64", Machine: "EM_X86_64", Reason: "the only version found",
			APIs: []catalog.API{catalog.APICUDA, catalog.APIGLX}, Data: []DataOut{{API: catalog.APIEGL, Dest: "share/glvnd/egl_vendor.d/10_nvidia.json"}},
			GlibcNeeds: []GlibcNeed{{File: "libGLX_nvidia.so.0", Version: "GLIBC_2.4"}}},
		Watches: []watch{
			{Path: "/usr/lib/x86_64-linux-gnu", ID: FileID{Dev: 2049, Ino: 12, Size: 4096, MtimeNs: 1700000000000000000}},
			{Path: "/run/opengl-driver/lib", Absent: true},
			{Path: "/dir with spaces/libcuda.so.1", ID: FileID{Dev: 1, Ino: 2, Size: 3, MtimeNs: -4}},
			{Path: "/usr/local/nvidia/lib", ID: FileID{Dev: 5, Ino: 6, Size: 5, MtimeNs: 7}, NoFollow: true},
			{Path: "/run/opengl-driver/lib", Absent: true, NoFollow: true},
		},
	}
	b, ok := idx.encode()
	if !ok {
		t.Fatal("encode refused a valid index")
	}
	got := parseIndex(b)
	if diff := cmp.Diff(idx, got, cmp.AllowUnexported(index{}, watch{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	idx.Watches = append(idx.Watches, watch{Path: "/bad\nname"})
	if _, ok := idx.encode(); ok {
		t.Error("a path with a newline was encoded")
	}
	for _, bad := range []string{"", "nixglhost-index 0\n", "nixglhost-index 1\nkey x\nmodule \nsummary {}\n", "garbage\n\n\n\n"} {
		if parseIndex([]byte(bad)) != nil {
			t.Errorf("parseIndex(%q) accepted it", bad)
		}
	}
}

func FuzzParseIndex(f *testing.F) {
	f.Add([]byte("nixglhost-index 1\nkey 0123456789abcdef0123456789abcdef\nmodule \nroot /\nclass ELFCLASS64\nmachine EM_X86_64\ndriver 535.1.2\nreason r\napi cuda\ndata egl share/x.json\nglibc GLIBC_2.4 libx.so\nw 1 2 3 4 /a b\na /x\nl 1 2 3 4 /l\nn /m\n"))
	f.Add([]byte("nixglhost-index 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx := parseIndex(b)
		if idx == nil {
			return
		}
		// What parses encodes, and encodes to something that parses the same.
		out, ok := idx.encode()
		if !ok {
			return
		}
		again := parseIndex(out)
		if again == nil || again.Key != idx.Key || len(again.Watches) != len(idx.Watches) {
			t.Fatalf("re-encoded index does not parse the same:\n%q\n%q", b, out)
		}
	})
}
