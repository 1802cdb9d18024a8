// Command gen writes nixglhost's shell completions and man page, generated
// from the flag table in internal/cli, into one directory:
//
//	nixglhost.bash  bash completion (install as completions/nixglhost)
//	_nixglhost      zsh completion (a directory on $fpath)
//	nixglhost.fish  fish completion
//	nixglhost.1     man page, section 1
//
// Usage: go run ./internal/cli/gen -out DIR [-version VERSION]
//
// It writes only below DIR and the same input gives the same bytes.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nixglhost/nixglhost/internal/cli"
)

func main() { os.Exit(main1(os.Args[1:], os.Stderr)) }

func main1(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write the files into (created if missing)")
	version := fs.String("version", "dev", "version the man page names")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: gen -out DIR [-version VERSION]")
		return 2
	}
	if err := write(*out, *version); err != nil {
		fmt.Fprintf(stderr, "gen: %v\n", err)
		return 1
	}
	return 0
}

// write generates every file into dir.
func write(dir, version string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := []struct {
		name string
		gen  func(io.Writer) error
	}{
		{"nixglhost.bash", func(w io.Writer) error { return cli.WriteBash(w, cli.Flags) }},
		{"_nixglhost", func(w io.Writer) error { return cli.WriteZsh(w, cli.Flags) }},
		{"nixglhost.fish", func(w io.Writer) error { return cli.WriteFish(w, cli.Flags) }},
		{"nixglhost.1", func(w io.Writer) error { return cli.WriteMan(w, cli.Flags, version) }},
	}
	for _, f := range files {
		var b bytes.Buffer
		if err := f.gen(&b); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
