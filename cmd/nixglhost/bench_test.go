package main

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/internal/program"
)

// BenchmarkHotPrintPath is a hot `nixglhost -d ... -p` without the
// process start: flag parsing, cache root checks, the index, the output.
func BenchmarkHotPrintPath(b *testing.B) { benchHotLaunch(b, "-p") }

// benchHotLaunch runs `nixglhost --cache-dir C -d DIR... tail...` in
// process, once to build the entry, then b.N times hot.
func benchHotLaunch(b *testing.B, tail ...string) {
	dirs := fixtures.CorpusLibDirs(b, "amd64")
	args := []string{"--cache-dir", b.TempDir()}
	for _, d := range dirs {
		args = append(args, "-d", d)
	}
	args = append(args, tail...)
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + b.TempDir()}
	var out strings.Builder
	if code := main1(append([]string{"nixglhost"}, args...), nil, &out, os.Stderr, env); code != 0 || out.Len() == 0 {
		b.Fatalf("exit %d", code)
	}
	b.ReportAllocs()
	for b.Loop() {
		if code := main1(append([]string{"nixglhost"}, args...), nil, io.Discard, io.Discard, env); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}

// BenchmarkFindProgram resolves and reads a program as the launch does.
func BenchmarkFindProgram(b *testing.B) {
	env := []string{"PATH=/usr/bin:/bin"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := program.Find("true", env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotPrintEnv is a hot launch of /bin/true up to the exec: the
// program read, the index, the 32-bit companion's index, the environment
// (printed instead of exec'ed).
func BenchmarkHotPrintEnv(b *testing.B) { benchHotLaunch(b, "--print-env", "--", "/bin/true") }
