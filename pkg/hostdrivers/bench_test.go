package hostdrivers

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// benchOptions returns options for -d on the real 535 corpus.
func benchOptions(b *testing.B) *Options {
	b.Helper()
	return &Options{Dirs: fixtures.CorpusLibDirs(b, "amd64")}
}

// benchHot measures Prepare once the entry for o exists.
func benchHot(b *testing.B, o *Options) {
	cache := b.TempDir()
	if _, err := Prepare(o, cache); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := Prepare(o, cache)
		if err != nil || !p.Hot {
			b.Fatalf("not hot: %v", err)
		}
	}
}

// BenchmarkPrepareHot is a hot launch's library work with -d: the index's
// watches checked, the entry found.
func BenchmarkPrepareHot(b *testing.B) { benchHot(b, benchOptions(b)) }

// BenchmarkPrepareHotDiscovery is the same with full discovery on a
// Debian root.
func BenchmarkPrepareHotDiscovery(b *testing.B) {
	benchHot(b, &Options{Root: fixtures.DebianRoot(b, "amd64")})
}

// BenchmarkDiscovery is the directory discovery of a cold launch.
func BenchmarkDiscovery(b *testing.B) {
	o := &Options{Root: fixtures.DebianRoot(b, "amd64")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sourcesOf(o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScan lists and resolves the corpus directories.
func BenchmarkScan(b *testing.B) {
	o := benchOptions(b)
	src, err := sourcesOf(o)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if c, _ := scan("/", src, nil); len(c) == 0 {
			b.Fatal("nothing found")
		}
	}
}

// BenchmarkColdBuild builds a whole entry each time (scan, ELF reads,
// closure, patched copies, vendor files, manifest, rename).
func BenchmarkColdBuild(b *testing.B) {
	o := benchOptions(b)
	b.ReportAllocs()
	var written int64
	for b.Loop() {
		cache := b.TempDir()
		p, err := Prepare(o, cache)
		if err != nil || p.Hot {
			b.Fatalf("not built: %v", err)
		}
		b.StopTimer()
		written = dirBytes(b, p.Dir)
		fixtures.Must(b, os.RemoveAll(cache))
		b.StartTimer()
	}
	b.ReportMetric(float64(written), "bytes-written/op")
}

func dirBytes(b *testing.B, dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
