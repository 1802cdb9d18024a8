// Package sample is the suite testreport's tests run for a real
// `go test -json` stream: one test of each outcome. Wildcards (./...) skip
// testdata, so make test never runs it.
package sample

import (
	"os"
	"testing"
)

// active is false unless testreport's test runs this package: the failures
// below are meant only for it.
var active = os.Getenv("TESTREPORT_SAMPLE") == "1"

func TestPasses(t *testing.T) { t.Log("fine") }

func TestFails(t *testing.T) {
	if active {
		t.Errorf("want 1, got 2\nsecond line of the failure")
	}
}

func TestSkips(t *testing.T) {
	t.Log("before the skip")
	if active {
		t.Skip("no widget here:\nthe widget lives elsewhere")
	}
}

func TestTable(t *testing.T) {
	for _, name := range []string{"ok", "skipped", "failed"} {
		t.Run(name, func(t *testing.T) {
			switch {
			case !active:
			case name == "skipped":
				t.Skipf("case %s is not for here", name)
			case name == "failed":
				t.Fatal("case failed")
			}
		})
	}
}
