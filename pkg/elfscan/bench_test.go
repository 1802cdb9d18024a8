package elfscan

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchFiles returns the corpus files the benchmarks use: libcuda and
// libnvidia-glcore of the current amd64 driver.
func benchFiles(b *testing.B) []string {
	b.Helper()
	var out []string
	for _, p := range corpusFiles(b, "amd64") {
		base := filepath.Base(p)
		if strings.Contains(p, "/root/") && (strings.HasPrefix(base, "libcuda.so.5") || strings.HasPrefix(base, "libnvidia-glcore.so.5")) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		b.Skip("no libcuda or libnvidia-glcore in the corpus")
	}
	return out
}

// BenchmarkRead reads the Info of large real drivers.
func BenchmarkRead(b *testing.B) {
	for _, p := range benchFiles(b) {
		b.Run(filepath.Base(p), func(b *testing.B) {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			cr := &countingReader{f: f}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ReadFrom(cr, st.Size(), p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cr.bytes)/float64(b.N), "B-read/op")
			b.ReportMetric(float64(st.Size()), "file-B")
		})
	}
}

// BenchmarkPatch patches large real drivers; BenchmarkCopy is the baseline,
// a plain copy of the same files.
func BenchmarkPatch(b *testing.B) {
	for _, p := range benchFiles(b) {
		b.Run(filepath.Base(p), func(b *testing.B) {
			dst := filepath.Join(b.TempDir(), "out.so")
			written := plannedBytes(b, p, "$ORIGIN/../deps")
			b.ReportAllocs()
			for b.Loop() {
				if err := PatchRunpath(p, dst, "$ORIGIN/../deps"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(written), "B-written/op")
			b.ReportMetric(float64(size(b, p)), "file-B")
		})
	}
}

// plannedBytes returns the bytes PatchRunpath writes other than the bulk
// copy: new bytes and copied ranges.
func plannedBytes(b *testing.B, p, runpath string) int64 {
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	ef, err := open(f, st.Size(), p)
	if err != nil {
		b.Fatal(err)
	}
	pl, err := ef.planRunpath(runpath)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, w := range pl.writes {
		n += int64(len(w.data))
	}
	for _, c := range pl.copies {
		n += c.n
	}
	return n
}

// BenchmarkCopy copies the same files into a new file each time: "kernel"
// with io.Copy between *os.File (copy_file_range), as PatchRunpath's bulk
// copy does, "user" through a user-space buffer.
func BenchmarkCopy(b *testing.B) {
	for _, p := range benchFiles(b) {
		for _, mode := range []string{"kernel", "user"} {
			b.Run(mode+"/"+filepath.Base(p), func(b *testing.B) { benchCopy(b, p, mode) })
		}
	}
}

// onlyReader hides everything but Read, so io.Copy uses a buffer.
type onlyReader struct{ io.Reader }

func benchCopy(b *testing.B, p, mode string) {
	dst := filepath.Join(b.TempDir(), "out.so")
	b.ReportAllocs()
	for b.Loop() {
		in, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(dst)
		if err != nil {
			b.Fatal(err)
		}
		var r io.Reader = in
		var w io.Writer = out
		if mode == "user" {
			r, w = onlyReader{in}, struct{ io.Writer }{out}
		}
		if _, err := io.Copy(w, r); err != nil {
			b.Fatal(err)
		}
		in.Close()
		out.Close()
	}
}
