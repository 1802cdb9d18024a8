// Package drv reads Nix derivations: the .drv files in the Nix store, in
// the ATerm text Nix writes them in,
//
//	Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[("name","value"),...])
//
// (and DrvWithVersion("version",...), the form with a version tag that
// newer Nix writes for experimental derivation kinds), with structured
// attributes read from the `__json` environment entry.
//
// It trusts nothing in the file: every string and list is bounds-checked as
// it is read, nesting is limited, and any deviation from the grammar is a
// *FormatError giving the byte offset. It never evaluates, builds or writes
// anything, and it needs no Nix installation.
package drv

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxSize is the largest .drv file Read accepts. Nixpkgs' biggest
// derivations are a few megabytes.
const MaxSize = 64 << 20

// maxDepth bounds term nesting; a derivation nests four deep.
const maxDepth = 32

// Derivation is a parsed .drv file.
type Derivation struct {
	// Version is DrvWithVersion's version tag, or "" for Derive.
	Version string
	// Outputs are the outputs, in file order (Nix sorts them by name).
	Outputs []Output
	// InputDrvs are the derivations whose outputs this one uses.
	InputDrvs []InputDrv
	// InputSrcs are the store paths of plain sources.
	InputSrcs []string
	// System is the platform, e.g. "x86_64-linux".
	System string
	// Builder is the program Nix runs.
	Builder string
	// Args are the builder's arguments.
	Args []string
	// Env is the builder's environment, in file order (sorted by name).
	Env []EnvVar
}

// Output is one output of a derivation.
type Output struct {
	Name, Path, HashAlgo, Hash string
}

// InputDrv is an input derivation and the outputs of it that are used.
type InputDrv struct {
	Path    string
	Outputs []string
}

// EnvVar is one environment entry.
type EnvVar struct {
	Name, Value string
}

// FormatError says where and why a .drv is not well formed.
type FormatError struct {
	// Off is the byte offset of the problem.
	Off int
	// Msg says what was expected.
	Msg string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("malformed derivation at byte %d: %s", e.Off, e.Msg)
}

// ReadFile reads and parses the .drv file at path.
func ReadFile(path string) (*Derivation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("derivation %s: %w", path, err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("derivation %s: larger than %d bytes", path, MaxSize)
	}
	d, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("derivation %s: %w", path, err)
	}
	return d, nil
}

// Getenv returns the value of the environment entry name and whether it
// exists.
func (d *Derivation) Getenv(name string) (string, bool) {
	for _, e := range d.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// StructuredAttrs reports whether the derivation uses structured attributes
// (its attributes are in the `__json` environment entry).
func (d *Derivation) StructuredAttrs() bool {
	_, ok := d.Getenv("__json")
	return ok
}

// RequiredSystemFeatures returns the features the derivation requires of
// the machine that builds it, in its own order: from the `__json` object's
// "requiredSystemFeatures" list with structured attributes, else from the
// whitespace-separated environment entry of that name. A `__json` that is
// not a JSON object, or whose entry is not a list of strings, is an error.
func (d *Derivation) RequiredSystemFeatures() ([]string, error) {
	if js, ok := d.Getenv("__json"); ok {
		var attrs map[string]json.RawMessage
		if err := json.Unmarshal([]byte(js), &attrs); err != nil {
			return nil, fmt.Errorf("structured attributes (__json): %w", err)
		}
		raw, ok := attrs["requiredSystemFeatures"]
		if !ok {
			return nil, nil
		}
		var fs []string
		if err := json.Unmarshal(raw, &fs); err != nil {
			return nil, fmt.Errorf("structured attributes (__json): requiredSystemFeatures is not a list of strings: %w", err)
		}
		return fs, nil
	}
	v, _ := d.Getenv("requiredSystemFeatures")
	// Nix splits on its own whitespace set: space, tab, newline, CR.
	return strings.FieldsFunc(v, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}), nil
}

// Parse parses the text of a .drv file.
func Parse(b []byte) (*Derivation, error) {
	p := &parser{b: b}
	t, err := p.term(0)
	if err != nil {
		return nil, err
	}
	for p.off < len(b) && isSpace(b[p.off]) {
		p.off++
	}
	if p.off != len(b) {
		return nil, p.errorf("trailing data after the derivation")
	}
	return fromTerm(t)
}

// A term is a string, a list [..], a tuple (..) or a constructor
// application Name(..).
type term struct {
	off   int
	kind  byte // '"', '[', '(' or 'c' (constructor)
	str   string
	name  string // constructor name
	items []*term
}

type parser struct {
	b   []byte
	off int
}

func (p *parser) errorf(format string, args ...any) error {
	return &FormatError{Off: p.off, Msg: fmt.Sprintf(format, args...)}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isIdent(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}

// term reads one term. Nix writes no whitespace between tokens, and
// none is accepted.
func (p *parser) term(depth int) (*term, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested deeper than %d", maxDepth)
	}
	if p.off >= len(p.b) {
		return nil, p.errorf("unexpected end of file")
	}
	start := p.off
	switch c := p.b[p.off]; {
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return &term{off: start, kind: '"', str: s}, nil
	case c == '[':
		items, err := p.seq(depth, '[', ']')
		if err != nil {
			return nil, err
		}
		return &term{off: start, kind: '[', items: items}, nil
	case c == '(':
		items, err := p.seq(depth, '(', ')')
		if err != nil {
			return nil, err
		}
		return &term{off: start, kind: '(', items: items}, nil
	case isIdent(c):
		for p.off < len(p.b) && isIdent(p.b[p.off]) {
			p.off++
		}
		name := string(p.b[start:p.off])
		if p.off >= len(p.b) || p.b[p.off] != '(' {
			return nil, p.errorf("expected '(' after %s", name)
		}
		items, err := p.seq(depth, '(', ')')
		if err != nil {
			return nil, err
		}
		return &term{off: start, kind: 'c', name: name, items: items}, nil
	default:
		return nil, p.errorf("unexpected %q", c)
	}
}

// seq reads open, terms separated by commas, and close.
func (p *parser) seq(depth int, open, close byte) ([]*term, error) {
	p.off++ // open
	var items []*term
	if p.off < len(p.b) && p.b[p.off] == close {
		p.off++
		return items, nil
	}
	for {
		t, err := p.term(depth + 1)
		if err != nil {
			return nil, err
		}
		items = append(items, t)
		if p.off >= len(p.b) {
			return nil, p.errorf("unexpected end of file, expected ',' or %q", close)
		}
		switch p.b[p.off] {
		case ',':
			p.off++
		case close:
			p.off++
			return items, nil
		default:
			return nil, p.errorf("expected ',' or %q, found %q", close, p.b[p.off])
		}
	}
}

// string reads a quoted string. As in Nix's reader, a backslash makes the
// next byte literal, except that \n, \r and \t are control characters.
func (p *parser) string() (string, error) {
	start := p.off
	p.off++ // opening quote
	var sb strings.Builder
	for {
		if p.off >= len(p.b) {
			return "", &FormatError{Off: start, Msg: "unterminated string"}
		}
		c := p.b[p.off]
		switch c {
		case '"':
			p.off++
			return sb.String(), nil
		case '\\':
			p.off++
			if p.off >= len(p.b) {
				return "", &FormatError{Off: start, Msg: "unterminated string"}
			}
			switch e := p.b[p.off]; e {
			case 'n':
				sb.WriteByte('\n')
			case 'r':
				sb.WriteByte('\r')
			case 't':
				sb.WriteByte('\t')
			default:
				sb.WriteByte(e)
			}
		default:
			sb.WriteByte(c)
		}
		p.off++
	}
}

// fromTerm interprets the parsed term as a derivation.
//
// It is long because it is a parser of the derivation term with one case per
// constructor.
func fromTerm(t *term) (*Derivation, error) {
	if t.kind != 'c' {
		return nil, &FormatError{Off: t.off, Msg: "expected Derive(...) or DrvWithVersion(...)"}
	}
	d := &Derivation{}
	args := t.items
	switch t.name {
	case "Derive":
		if len(args) != 7 {
			return nil, &FormatError{Off: t.off, Msg: fmt.Sprintf("Derive has %d fields, want 7", len(args))}
		}
	case "DrvWithVersion":
		if len(args) != 8 {
			return nil, &FormatError{Off: t.off, Msg: fmt.Sprintf("DrvWithVersion has %d fields, want 8", len(args))}
		}
		v, err := str(args[0])
		if err != nil {
			return nil, err
		}
		d.Version = v
		args = args[1:]
	default:
		return nil, &FormatError{Off: t.off, Msg: fmt.Sprintf("unknown derivation constructor %q", t.name)}
	}
	if err := listErr(args[0], func(o *term) error {
		f, err := strs(o, '(', 4, "output")
		if err != nil {
			return err
		}
		d.Outputs = append(d.Outputs, Output{Name: f[0], Path: f[1], HashAlgo: f[2], Hash: f[3]})
		return nil
	}); err != nil {
		return nil, err
	}
	if err := listErr(args[1], func(in *term) error {
		if in.kind != '(' || len(in.items) != 2 {
			return &FormatError{Off: in.off, Msg: "expected an input derivation (\"path\",[outputs])"}
		}
		path, err := str(in.items[0])
		if err != nil {
			return err
		}
		// Derive: ["out",...]; DrvWithVersion may give (["out",...],[dynamic outputs]).
		o := in.items[1]
		if o.kind == '(' && len(o.items) > 0 {
			o = o.items[0]
		}
		outs, err := strs(o, '[', -1, "list of output names")
		if err != nil {
			return err
		}
		d.InputDrvs = append(d.InputDrvs, InputDrv{Path: path, Outputs: outs})
		return nil
	}); err != nil {
		return nil, err
	}
	var err error
	if d.InputSrcs, err = strs(args[2], '[', -1, "list of input sources"); err != nil {
		return nil, err
	}
	if d.System, err = str(args[3]); err != nil {
		return nil, err
	}
	if d.Builder, err = str(args[4]); err != nil {
		return nil, err
	}
	if d.Args, err = strs(args[5], '[', -1, "list of builder arguments"); err != nil {
		return nil, err
	}
	if err := listErr(args[6], func(e *term) error {
		f, err := strs(e, '(', 2, "environment entry")
		if err != nil {
			return err
		}
		d.Env = append(d.Env, EnvVar{Name: f[0], Value: f[1]})
		return nil
	}); err != nil {
		return nil, err
	}
	return d, nil
}

// listErr calls f on each item of the list t and returns the first error.
func listErr(t *term, f func(*term) error) error {
	if t.kind != '[' {
		return &FormatError{Off: t.off, Msg: "expected a list"}
	}
	for _, it := range t.items {
		if err := f(it); err != nil {
			return err
		}
	}
	return nil
}

func str(t *term) (string, error) {
	if t.kind != '"' {
		return "", &FormatError{Off: t.off, Msg: "expected a string"}
	}
	return t.str, nil
}

// strs returns the strings of the list or tuple t (kind), which must hold n
// of them (any number when n < 0).
func strs(t *term, kind byte, n int, what string) ([]string, error) {
	if t.kind != kind || n >= 0 && len(t.items) != n {
		return nil, &FormatError{Off: t.off, Msg: "expected " + what}
	}
	out := make([]string, 0, len(t.items))
	for _, it := range t.items {
		s, err := str(it)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
