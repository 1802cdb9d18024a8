// Package testreport reads the event stream of `go test -json` and writes
// it for a person: the full output of every failed test, one line per
// package, every skipped test with its reason, and the counts of passed,
// failed and skipped tests at the end.
//
// Under Options.Require (make test sets it from NIXGLHOST_REQUIRE_FIXTURES=1)
// a skip fails the run unless an allow-list entry names the test with the
// reason it is legitimate there. It trusts the stream only as far as its
// JSON: lines that are not events are copied through unchanged. It runs
// nothing and writes no file.
package testreport

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Event is one line of `go test -json` (cmd/test2json's TestEvent, plus the
// build events that carry ImportPath instead of Package).
type Event struct {
	Action     Action
	Package    string
	Test       string
	Output     string
	ImportPath string
	// FailedBuild is set on a package's fail event when its test binary did
	// not build (the build-fail event was counted).
	FailedBuild string
}

// Action is an event's kind, as test2json names it.
type Action string

// The actions the report acts on; others (start, run, pause, cont, bench)
// carry nothing it counts.
const (
	ActionOutput      Action = "output"
	ActionPass        Action = "pass"
	ActionFail        Action = "fail"
	ActionSkip        Action = "skip"
	ActionBuildOutput Action = "build-output"
	ActionBuildFail   Action = "build-fail"
)

// Skip is one skipped test and the message it skipped with.
type Skip struct {
	Package, Test, Reason string
	// Allowed is the allow-list entry that accepts it, or nil.
	Allowed *Entry
}

// FailKind says what failed.
type FailKind int

// The kinds of failure.
const (
	// FailTest is a test that reported failure.
	FailTest FailKind = iota
	// FailUnfinished is a test that started and never ended: the package's
	// binary crashed or timed out while it ran.
	FailUnfinished
	// FailPackage is a package that failed with no failed test (TestMain's
	// exit status, output after the tests, a stream cut off).
	FailPackage
	// FailBuild is a test binary that did not build (or vet).
	FailBuild
)

var failKindText = [...]string{FailTest: "", FailUnfinished: " (did not finish)", FailPackage: " (outside any test)", FailBuild: " (build failed)"}

// Failure is one failed test, package or build.
type Failure struct {
	Kind FailKind
	// Package is the package, or for FailBuild the import path go test
	// names the build by.
	Package string
	Test    string
}

// String names the failure as the report lists it.
func (f Failure) String() string {
	return strings.TrimSpace(f.Package+" "+f.Test) + failKindText[f.Kind]
}

// Summary is what a stream held.
type Summary struct {
	Passed, Failed, Skipped int
	// Failures lists what failed, in the order the stream reported it.
	Failures []Failure
	Skips    []Skip
	// Unlisted are the skips no allow-list entry accepts.
	Unlisted []Skip
}

// OK reports whether the run passed: nothing failed and, when require is
// set, every skip is listed.
func (s Summary) OK(require bool) bool {
	return len(s.Failures) == 0 && (!require || len(s.Unlisted) == 0)
}

// Entry is one line of an allow-list: the tests it accepts and why.
type Entry struct {
	// Package is the package's import path, or its path inside the module
	// (pkg/ldpath).
	Package string
	// Test is a test name as go test prints it; each /-separated element
	// is a path.Match pattern.
	Test string
	// Reason says why the skip is legitimate where the suite is required
	// to be complete.
	Reason string
	// Line is the entry's line number in its file.
	Line int
}

// ParseAllowList reads an allow-list: one entry a line, "<package>.<test>
// <reason>", the reason required; blank lines and lines starting with #
// are ignored. name is used in errors.
func ParseAllowList(name string, r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			id, reason = line[:i], strings.TrimSpace(line[i:])
		}
		dot := strings.LastIndex(strings.SplitN(id, "/Test", 2)[0], ".Test")
		if dot < 0 {
			return nil, fmt.Errorf("%s:%d: %q is not <package>.<Test...>", name, n, id)
		}
		if reason == "" {
			return nil, fmt.Errorf("%s:%d: %s has no reason", name, n, id)
		}
		e := Entry{Package: id[:dot], Test: id[dot+1:], Reason: reason, Line: n}
		for _, el := range strings.Split(e.Test, "/") {
			if _, err := path.Match(el, ""); err != nil {
				return nil, fmt.Errorf("%s:%d: pattern %q: %w", name, n, el, err)
			}
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// matches reports whether e accepts test of package pkg.
func (e *Entry) matches(pkg, test string) bool {
	if pkg != e.Package && !strings.HasSuffix(pkg, "/"+e.Package) {
		return false
	}
	pats, names := strings.Split(e.Test, "/"), strings.Split(test, "/")
	if len(pats) != len(names) {
		return false
	}
	for i := range pats {
		if ok, _ := path.Match(pats[i], names[i]); !ok {
			return false
		}
	}
	return true
}

// Options are a report's settings.
type Options struct {
	// Allow is the allow-list.
	Allow []Entry
	// Require makes a skip no entry accepts fail the run.
	Require bool
	// Verbose writes every test's output, not only failed tests'.
	Verbose bool
}

type testState struct {
	out  []string
	done bool
}

type report struct {
	w    io.Writer
	opts Options
	sum  Summary
	// tests holds each package's tests' output, by package then test.
	tests map[string]map[string]*testState
	order map[string][]string
	pkgs  map[string][]string // package-level output
	build map[string][]string // build output, by import path
}

// Read reads a `go test -json` stream from r to its end, writing the report
// to w as it goes (failures as they come, the skips and counts last), and
// returns the summary. Its error is r's or w's.
func Read(r io.Reader, w io.Writer, opts Options) (Summary, error) {
	rep := &report{w: w, opts: opts, tests: map[string]map[string]*testState{}, order: map[string][]string{}, pkgs: map[string][]string{}, build: map[string][]string{}}
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			rep.line(line)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return rep.sum, fmt.Errorf("reading the test stream: %w", err)
		}
	}
	rep.finish()
	return rep.sum, nil
}

func (r *report) printf(format string, args ...any) { fmt.Fprintf(r.w, format, args...) }

func (r *report) line(line string) {
	var ev Event
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &ev) != nil || ev.Action == "" {
		// Not an event (go test's own messages): as it came.
		r.printf("%s", line)
		if !strings.HasSuffix(line, "\n") {
			r.printf("\n")
		}
		return
	}
	switch {
	case ev.Action == ActionBuildOutput:
		r.build[ev.ImportPath] = append(r.build[ev.ImportPath], ev.Output)
	case ev.Action == ActionBuildFail:
		r.printf("%s", strings.Join(r.build[ev.ImportPath], ""))
		r.sum.Failures = append(r.sum.Failures, Failure{Kind: FailBuild, Package: ev.ImportPath})
		delete(r.build, ev.ImportPath)
	case ev.Test != "":
		r.testEvent(ev)
	default:
		r.packageEvent(ev)
	}
}

func (r *report) state(pkg, test string) *testState {
	m := r.tests[pkg]
	if m == nil {
		m = map[string]*testState{}
		r.tests[pkg] = m
	}
	s := m[test]
	if s == nil {
		s = &testState{}
		m[test] = s
		r.order[pkg] = append(r.order[pkg], test)
	}
	return s
}

func (r *report) testEvent(ev Event) {
	s := r.state(ev.Package, ev.Test)
	switch ev.Action {
	case ActionOutput:
		s.out = append(s.out, ev.Output)
		if r.opts.Verbose {
			r.printf("%s", ev.Output)
		}
	case ActionPass:
		s.done = true
		r.sum.Passed++
	case ActionFail:
		s.done = true
		r.sum.Failed++
		r.sum.Failures = append(r.sum.Failures, Failure{Kind: FailTest, Package: ev.Package, Test: ev.Test})
		if !r.opts.Verbose {
			r.printf("%s", strings.Join(s.out, ""))
		}
	case ActionSkip:
		s.done = true
		r.sum.Skipped++
		sk := Skip{Package: ev.Package, Test: ev.Test, Reason: skipReason(s.out)}
		for i := range r.opts.Allow {
			if r.opts.Allow[i].matches(ev.Package, ev.Test) {
				sk.Allowed = &r.opts.Allow[i]
				break
			}
		}
		r.sum.Skips = append(r.sum.Skips, sk)
		if sk.Allowed == nil {
			r.sum.Unlisted = append(r.sum.Unlisted, sk)
		}
	}
	if s.done {
		s.out = nil
	}
}

func (r *report) packageEvent(ev Event) {
	switch ev.Action {
	case ActionOutput:
		r.pkgs[ev.Package] = append(r.pkgs[ev.Package], ev.Output)
	case ActionPass, ActionSkip, ActionFail:
		out := r.pkgs[ev.Package]
		// Tests that never ended (a timeout's panic, a crash) failed; their
		// output is all there is to read.
		for _, name := range r.order[ev.Package] {
			if s := r.tests[ev.Package][name]; !s.done {
				s.done = true
				r.sum.Failed++
				r.sum.Failures = append(r.sum.Failures, Failure{Kind: FailUnfinished, Package: ev.Package, Test: name})
				if !r.opts.Verbose {
					r.printf("%s", strings.Join(s.out, ""))
				}
			}
		}
		switch {
		case ev.Action == ActionFail:
			if ev.FailedBuild == "" && !r.failedTestIn(ev.Package) {
				r.sum.Failures = append(r.sum.Failures, Failure{Kind: FailPackage, Package: ev.Package})
			}
			r.printf("%s", strings.Join(out, ""))
		case len(out) > 0:
			// The package's own closing line ("ok  \tpkg\t1.2s").
			r.printf("%s", out[len(out)-1])
		}
		delete(r.pkgs, ev.Package)
		delete(r.tests, ev.Package)
		delete(r.order, ev.Package)
	}
}

func (r *report) failedTestIn(pkg string) bool {
	for _, f := range r.sum.Failures {
		if f.Package == pkg && (f.Kind == FailTest || f.Kind == FailUnfinished) {
			return true
		}
	}
	return false
}

// logLine is the start of one t.Log/t.Skip message in a test's output.
var logLine = regexp.MustCompile(`^\s+[^\s:]+\.go:\d+: `)

// skipReason returns the last message a test logged before it skipped:
// t.Skip's own, continuation lines joined.
func skipReason(out []string) string {
	lines := strings.Split(strings.Join(out, ""), "\n")
	start := -1
	for i, l := range lines {
		if logLine.MatchString(l) {
			start = i
		}
	}
	if start < 0 {
		return "(no reason given)"
	}
	var parts []string
	for i, l := range lines[start:] {
		if i > 0 && (strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "=== ")) {
			break
		}
		if i == 0 {
			l = logLine.ReplaceAllString(l, "")
		}
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

func (r *report) finish() {
	// Packages whose stream was cut off before their end.
	var pkgs []string
	for p := range r.pkgs {
		pkgs = append(pkgs, p)
	}
	for p := range r.tests {
		if _, ok := r.pkgs[p]; !ok {
			pkgs = append(pkgs, p)
		}
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		r.packageEvent(Event{Action: ActionFail, Package: p})
	}
	s := &r.sum
	if len(s.Skips) > 0 {
		r.printf("\nskipped (%d):\n", len(s.Skips))
		for _, sk := range s.Skips {
			mark := "  "
			if sk.Allowed == nil && r.opts.Require {
				mark = "! "
			}
			r.printf("%s%s %s: %s\n", mark, sk.Package, sk.Test, sk.Reason)
		}
	}
	if r.opts.Require && len(s.Unlisted) > 0 {
		r.printf("\nNIXGLHOST_REQUIRE_FIXTURES=1: %d skip(s) not in the allow-list (each must be made to run, or listed with its reason):\n", len(s.Unlisted))
		for _, sk := range s.Unlisted {
			r.printf("  %s %s\n", sk.Package, sk.Test)
		}
	}
	if len(s.Failures) > 0 {
		r.printf("\nfailed (%d):\n", len(s.Failures))
		for _, f := range s.Failures {
			r.printf("  %s\n", f)
		}
	}
	verdict := "PASS"
	if !s.OK(r.opts.Require) {
		verdict = "FAIL"
	}
	r.printf("\n%s: %d passed, %d failed, %d skipped (%d not allowed)\n", verdict, s.Passed, s.Failed, s.Skipped, r.notAllowed())
}

func (r *report) notAllowed() int {
	if !r.opts.Require {
		return 0
	}
	return len(r.sum.Unlisted)
}
