package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestBinaryPackages lists the packages linked into nixglhost and checks
// them against what a launch may carry: no test helpers (internal/fixtures,
// internal/archrun, testing), no network, TLS, templates or user database,
// no crypto or regexp (the fingerprints are FNV-128a, the one parsed text a
// hand-written parser: both packages' initialisers ran at every launch),
// and no module outside this one but golang.org/x/sys, demangle (the
// doctor's) and CDI's specs-go (the types of --cdi-spec; its parser and
// injection, with their YAML and fsnotify, are the tests' only). A package that sneaks in here costs every launch its
// initialisers and pages.
func TestBinaryPackages(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		fixtures.Unavailable(t, "no go command: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/nixglhost/nixglhost/cmd/nixglhost").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	pkgs := strings.Fields(string(out))
	forbidden := []string{"testing", "net", "net/http", "crypto/tls", "crypto/x509", "os/user", "plugin",
		"text/template", "html/template", "github.com/nixglhost/nixglhost/internal/fixtures",
		"github.com/nixglhost/nixglhost/internal/archrun"}
	modules := []string{"github.com/nixglhost/nixglhost/", "golang.org/x/sys/", "github.com/ianlancetaylor/demangle",
		"tags.cncf.io/container-device-interface/specs-go"}
	for _, p := range pkgs {
		if slices.Contains(forbidden, p) || p == "regexp" || p == "crypto" || strings.HasPrefix(p, "crypto/") {
			t.Errorf("nixglhost links %s", p)
		}
		if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") &&
			!slices.ContainsFunc(modules, func(m string) bool { return strings.HasPrefix(p, m) }) {
			t.Errorf("nixglhost links %s, from a module outside the allowed ones", p)
		}
	}
	if !slices.Contains(pkgs, "github.com/nixglhost/nixglhost/pkg/hostdrivers") {
		t.Fatalf("go list -deps gave no hostdrivers: %q", pkgs)
	}
}
