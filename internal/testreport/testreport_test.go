package testreport

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

const samplePkg = "github.com/nixglhost/nixglhost/internal/testreport/testdata/sample"

// goTool returns the go command that runs these tests.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		fixtures.Unavailable(t, "no go command: %v", err)
	}
	return p
}

// TestReadRealStream runs the real `go test -json` over testdata's sample
// package (a pass, a failure, a skip, a table with one of each) and its
// broken package (a build failure), and reads the stream.
func TestReadRealStream(t *testing.T) {
	cmd := exec.Command(goTool(t), "test", "-count=1", "-json", "./testdata/sample", "./testdata/broken")
	cmd.Env = append(os.Environ(), "TESTREPORT_SAMPLE=1", "GOFLAGS=")
	stream, err := cmd.Output()
	if _, ok := err.(*exec.ExitError); !ok && err != nil {
		t.Fatalf("go test: %v", err)
	}
	allow := []Entry{{Package: "internal/testreport/testdata/sample", Test: "TestTable/skip*", Reason: "listed", Line: 3}}
	var out strings.Builder
	sum, err := Read(strings.NewReader(string(stream)), &out, Options{Allow: allow, Require: true})
	if err != nil {
		t.Fatal(err)
	}
	broken := "github.com/nixglhost/nixglhost/internal/testreport/testdata/broken [github.com/nixglhost/nixglhost/internal/testreport/testdata/broken.test]"
	want := Summary{
		Passed: 2, Failed: 3, Skipped: 2,
		Failures: []Failure{
			{Kind: FailBuild, Package: broken},
			{Kind: FailTest, Package: samplePkg, Test: "TestFails"},
			{Kind: FailTest, Package: samplePkg, Test: "TestTable/failed"},
			{Kind: FailTest, Package: samplePkg, Test: "TestTable"},
		},
		Skips: []Skip{
			{Package: samplePkg, Test: "TestSkips", Reason: "no widget here: the widget lives elsewhere"},
			{Package: samplePkg, Test: "TestTable/skipped", Reason: "case skipped is not for here", Allowed: &allow[0]},
		},
		Unlisted: []Skip{{Package: samplePkg, Test: "TestSkips", Reason: "no widget here: the widget lives elsewhere"}},
	}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	text := out.String()
	for _, s := range []string{
		"undefined: undefined",                     // the build's error
		"sample_test.go:19: want 1, got 2\n",       // a failure's text, as go test writes it
		"        second line of the failure\n",     // ... all of it
		"--- FAIL: TestTable/failed",               // a failed subtest
		"FAIL\t" + samplePkg,                       // the package's line
		"! " + samplePkg + " TestSkips: no widget", // the unlisted skip, marked
		"  " + samplePkg + " TestTable/skipped: case skipped",
		"\nFAIL: 2 passed, 3 failed, 2 skipped (1 not allowed)\n",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("report lacks %q:\n%s", s, text)
		}
	}
	if strings.Contains(text, "sample_test.go:15: fine") {
		t.Errorf("report holds a passed test's output:\n%s", text)
	}
	if !strings.HasSuffix(text, "(1 not allowed)\n") {
		t.Errorf("report does not end with the counts:\n%s", text)
	}
}

// ev is one synthetic event.
type ev struct {
	action Action
	test   string
	output string
}

// stream writes events of package pkg as go test -json does.
func stream(t *testing.T, pkg string, evs ...ev) string {
	t.Helper()
	var b strings.Builder
	for _, e := range evs {
		line, err := json.Marshal(Event{Action: e.action, Package: pkg, Test: e.test, Output: e.output})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestReadJudgesSkips(t *testing.T) {
	const pkg = "example.com/m/pkg/x"
	skip := func(test, msg string) []ev {
		return []ev{
			{ActionOutput, test, "=== RUN   " + test + "\n"},
			{ActionOutput, test, "    x_test.go:12: " + msg + "\n"},
			{ActionOutput, test, "--- SKIP: " + test + " (0.00s)\n"},
			{ActionSkip, test, ""},
		}
	}
	end := ev{ActionPass, "", ""}
	tests := []struct {
		name    string
		evs     []ev
		allow   []Entry
		require bool
		wantOK  bool
		unlist  []string
	}{
		{"no skips", []ev{{ActionPass, "TestA", ""}, end}, nil, true, true, nil},
		{"a skip, not required", append(skip("TestA", "no widget"), end), nil, false, true, []string{"TestA"}},
		{"a skip, required, unlisted", append(skip("TestA", "no widget"), end), nil, true, false, []string{"TestA"}},
		{"listed by its path in the module", append(skip("TestA", "no widget"), end),
			[]Entry{{Package: "pkg/x", Test: "TestA", Reason: "r"}}, true, true, nil},
		{"listed for another package", append(skip("TestA", "no widget"), end),
			[]Entry{{Package: "pkg/y", Test: "TestA", Reason: "r"}}, true, false, []string{"TestA"}},
		{"a suffix that is not a path element", append(skip("TestA", "no widget"), end),
			[]Entry{{Package: "g/x", Test: "TestA", Reason: "r"}}, true, false, []string{"TestA"}},
		{"a glob over subtests", append(append(skip("TestA/one", "n"), skip("TestA/two", "n")...), end),
			[]Entry{{Package: "pkg/x", Test: "TestA/*", Reason: "r"}}, true, true, nil},
		{"a glob does not cross /", append(skip("TestA/one/deep", "n"), end),
			[]Entry{{Package: "pkg/x", Test: "TestA/*", Reason: "r"}}, true, false, []string{"TestA/one/deep"}},
		{"the parent listed, not the subtest", append(skip("TestA/one", "n"), end),
			[]Entry{{Package: "pkg/x", Test: "TestA", Reason: "r"}}, true, false, []string{"TestA/one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			sum, err := Read(strings.NewReader(stream(t, pkg, tt.evs...)), &out, Options{Allow: tt.allow, Require: tt.require})
			if err != nil {
				t.Fatal(err)
			}
			var unlisted []string
			for _, s := range sum.Unlisted {
				unlisted = append(unlisted, s.Test)
			}
			if diff := cmp.Diff(tt.unlist, unlisted); diff != "" {
				t.Errorf("unlisted (-want +got):\n%s", diff)
			}
			if got := sum.OK(tt.require); got != tt.wantOK {
				t.Errorf("OK = %v, want %v\n%s", got, tt.wantOK, out.String())
			}
			if tt.require && !tt.wantOK && !strings.Contains(out.String(), "not in the allow-list") {
				t.Errorf("the report does not name the unlisted skips:\n%s", out.String())
			}
		})
	}
}

func TestReadFailures(t *testing.T) {
	const pkg = "example.com/m/pkg/x"
	tests := []struct {
		name     string
		in       string
		want     []Failure
		inReport []string
	}{
		{"a test that never ended (a timeout)", stream(t, pkg,
			ev{ActionOutput, "TestSlow", "=== RUN   TestSlow\n"},
			ev{ActionOutput, "TestSlow", "panic: test timed out after 1s\n"},
			ev{ActionOutput, "", "FAIL\t" + pkg + "\t1.0s\n"},
			ev{ActionFail, "", ""}),
			[]Failure{{Kind: FailUnfinished, Package: pkg, Test: "TestSlow"}},
			[]string{"panic: test timed out", "FAIL\t" + pkg, pkg + " TestSlow (did not finish)"}},
		{"the package failed outside its tests", stream(t, pkg,
			ev{ActionPass, "TestA", ""},
			ev{ActionOutput, "", "TestMain: exit 3\n"},
			ev{ActionFail, "", ""}),
			[]Failure{{Kind: FailPackage, Package: pkg}},
			[]string{"TestMain: exit 3", pkg + " (outside any test)"}},
		{"a stream cut off before the package ended", stream(t, pkg,
			ev{ActionOutput, "TestA", "=== RUN   TestA\n"}),
			[]Failure{{Kind: FailUnfinished, Package: pkg, Test: "TestA"}},
			[]string{"=== RUN   TestA", "FAIL: 0 passed, 1 failed"}},
		{"a stream cut off between tests", stream(t, pkg,
			ev{ActionPass, "TestA", ""}),
			[]Failure{{Kind: FailPackage, Package: pkg}},
			[]string{pkg + " (outside any test)"}},
		{"lines that are not events pass through", "go: downloading example.com/m v1\n" + stream(t, pkg,
			ev{ActionPass, "TestA", ""}, ev{ActionOutput, "", "ok  \t" + pkg + "\t0.1s\n"}, ev{ActionPass, "", ""}),
			nil,
			[]string{"go: downloading example.com/m v1\n", "ok  \t" + pkg + "\t0.1s\n", "PASS: 1 passed, 0 failed, 0 skipped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			sum, err := Read(strings.NewReader(tt.in), &out, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, sum.Failures); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			for _, s := range tt.inReport {
				if !strings.Contains(out.String(), s) {
					t.Errorf("report lacks %q:\n%s", s, out.String())
				}
			}
		})
	}
}

func TestParseAllowList(t *testing.T) {
	tests := []struct {
		name, in string
		want     []Entry
		err      string
	}{
		{"entries", "# comment\n\npkg/ldpath.TestA  needs x86-64\ninternal/cli.TestB/sub_*\twhy not\n", []Entry{
			{Package: "pkg/ldpath", Test: "TestA", Reason: "needs x86-64", Line: 3},
			{Package: "internal/cli", Test: "TestB/sub_*", Reason: "why not", Line: 4},
		}, ""},
		{"a dotted package path", "example.com/m/pkg.TestA why\n", []Entry{{Package: "example.com/m/pkg", Test: "TestA", Reason: "why", Line: 1}}, ""},
		{"no reason", "pkg/ldpath.TestA\n", nil, "list:1: pkg/ldpath.TestA has no reason"},
		{"no test", "pkg/ldpath why\n", nil, "list:1: \"pkg/ldpath\" is not <package>.<Test...>"},
		{"a bad pattern", "pkg/x.TestA/[ why\n", nil, "list:1: pattern \"[\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAllowList("list", strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCommittedAllowList: the list make test reads parses, and each entry
// names a test that exists, so a renamed test cannot leave a dead entry.
func TestCommittedAllowList(t *testing.T) {
	p := filepath.Join(fixtures.RepoRoot(), ".ci", "allowed-skips")
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		// The Nix build's source holds only what the Go build reads.
		fixtures.Unavailable(t, "no .ci in this source tree: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := ParseAllowList(p, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		top := strings.Split(e.Test, "/")[0]
		files, _ := filepath.Glob(filepath.Join(fixtures.RepoRoot(), e.Package, "*_test.go"))
		found := false
		for _, file := range files {
			b, err := os.ReadFile(file)
			fixtures.Must(t, err)
			if strings.Contains(string(b), "\nfunc "+top+"(t *testing.T)") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s:%d: no test %s in %s", p, e.Line, top, e.Package)
		}
	}
}
