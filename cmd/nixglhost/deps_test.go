package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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

// TestOneELFReader: pkg/elfscan, whose every read is bounded and fuzzed, is
// the only ELF reader in nixglhost. A package of the binary may use
// debug/elf's vocabulary (its constants, its integer types such as
// elf.Class and elf.DynTag, and the ELF specification's macros such as
// elf.ST_BIND), never its reader (elf.Open, elf.NewFile, elf.File and the
// rest), which may panic or allocate what a hostile file asks; and no
// standard package that reads ELF (debug/buildinfo, debug/dwarf) may be
// linked. A file that reaches the reader is named with its line.
func TestOneELFReader(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		fixtures.Unavailable(t, "no go command: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f",
		"{{.ImportPath}}\t{{.Standard}}\t{{.Dir}}\t{{join .GoFiles \",\"}}\t{{join .Imports \",\"}}",
		"github.com/nixglhost/nixglhost/cmd/nixglhost").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	goroot, err := exec.Command(goBin, "env", "GOROOT").Output()
	fixtures.Must(t, err)
	vocab := elfVocabulary(t, filepath.Join(strings.TrimSpace(string(goroot)), "src", "debug", "elf"))
	users := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			t.Fatalf("go list line %q", line)
		}
		pkg, std, dir, files, imports := f[0], f[1] == "true", f[2], strings.Split(f[3], ","), strings.Split(f[4], ",")
		if pkg == "debug/elf" || !slices.Contains(imports, "debug/elf") {
			continue
		}
		if std {
			t.Errorf("nixglhost links %s, which reads ELF with debug/elf", pkg)
			continue
		}
		users++
		for _, name := range files {
			for _, use := range elfUses(t, filepath.Join(dir, name)) {
				if !vocab[use.name] {
					t.Errorf("%s: %s reads ELF with debug/elf (elf.%s): read it with pkg/elfscan", use.pos, pkg, use.name)
				}
			}
		}
	}
	if users == 0 {
		t.Fatalf("no package of nixglhost uses debug/elf's vocabulary: the check looked at nothing\n%s", out)
	}
}

// elfVocabulary returns the names of debug/elf (its source in dir) that
// are values rather than a reader: constants, types whose underlying type
// is an integer, and functions named as the ELF specification's macros
// (ST_BIND, R_SYM64: all capitals).
func elfVocabulary(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	fixtures.Must(t, err)
	integer := map[string]bool{"int": true, "int8": true, "int16": true, "int32": true, "int64": true,
		"uint": true, "uint8": true, "byte": true, "uint16": true, "uint32": true, "uint64": true}
	vocab := map[string]bool{}
	for _, p := range files {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
		fixtures.Must(t, err)
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.ValueSpec:
						if d.Tok == token.CONST {
							for _, n := range s.Names {
								vocab[n.Name] = n.IsExported()
							}
						}
					case *ast.TypeSpec:
						if id, ok := s.Type.(*ast.Ident); ok && integer[id.Name] {
							vocab[s.Name.Name] = s.Name.IsExported()
						}
					}
				}
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() && strings.ToUpper(d.Name.Name) == d.Name.Name {
					vocab[d.Name.Name] = true
				}
			}
		}
	}
	for _, want := range []string{"Class", "DynTag", "ELFCLASS64", "DT_NEEDED", "ST_BIND"} {
		if !vocab[want] {
			t.Fatalf("debug/elf's vocabulary, read from %s, lacks %s", dir, want)
		}
	}
	for _, reader := range []string{"Open", "NewFile", "File", "Section", "ImportedSymbol"} {
		if vocab[reader] {
			t.Fatalf("debug/elf's vocabulary holds its reader's %s", reader)
		}
	}
	return vocab
}

// elfUse is one selector elf.NAME in a file, where elf is debug/elf's
// import name there.
type elfUse struct {
	pos  token.Position
	name string
}

// elfUses returns the uses of debug/elf's exported names in the Go file p.
func elfUses(t *testing.T, p string) []elfUse {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
	fixtures.Must(t, err)
	local := ""
	for _, im := range f.Imports {
		if path, _ := strconv.Unquote(im.Path.Value); path == "debug/elf" {
			local = "elf"
			if im.Name != nil {
				local = im.Name.Name
			}
		}
	}
	if local == "" {
		return nil
	}
	if local == "_" || local == "." {
		t.Errorf("%s imports debug/elf as %s", p, local)
		return nil
	}
	var uses []elfUse
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == local {
				uses = append(uses, elfUse{fset.Position(sel.Pos()), sel.Sel.Name})
			}
		}
		return true
	})
	return uses
}
