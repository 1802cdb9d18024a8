// Package program resolves the PROGRAM a launch runs, as execvp and the
// kernel would: through PATH, and through "#!" lines (env included) to the
// ELF file that really runs, whose architecture the driver must match and
// whose interpreter says whether it is a Nix program or an FHS one.
package program

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nixglhost/nixglhost/internal/rawfile"
	"github.com/nixglhost/nixglhost/pkg/elfscan"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// Program is PROGRAM resolved: the file to exec and the ELF file whose
// architecture the driver must match (a script's interpreter).
type Program struct {
	// Path is the file to exec.
	Path string
	// ELF is the ELF file that runs: Path, or its "#!" interpreter; ""
	// if none.
	ELF string
	// Ident is the ELF file's class and machine (this machine's when
	// there is no readable ELF file).
	Ident elfscan.Ident
	// Interp is the ELF file's PT_INTERP.
	Interp string
	// FHS is true when that interpreter is not under /nix/store.
	FHS bool
}

// LookPath resolves name as execvp does: a name with a slash is used as it
// is; otherwise the first executable regular file in PATH.
func LookPath(name string, environ []string) (string, error) {
	if strings.Contains(name, "/") {
		fi, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("program %s: %w", name, err)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("program %s: not an executable file", name)
		}
		return name, nil
	}
	pathEnv, _ := hostdrivers.LookupEnv(environ, "PATH")
	if pathEnv == "" {
		pathEnv = "/usr/local/bin:/usr/bin:/bin"
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("program %s: not found in PATH", name)
}

// Find resolves PROGRAM and reads the architecture of the ELF file
// that will run: for a "#!" script, its interpreter (through env, and
// through nested scripts up to four levels).
func Find(name string, environ []string) (*Program, error) {
	p, err := LookPath(name, environ)
	if err != nil {
		return nil, err
	}
	pr := &Program{Path: p}
	file := p
	for depth := 0; ; depth++ {
		info, err := elfscan.Read(file)
		if err == nil {
			pr.ELF = file
			pr.Ident = info.Ident
			pr.Interp = info.Interp
			pr.FHS = info.Interp != "" && !strings.HasPrefix(info.Interp, "/nix/store/")
			return pr, nil
		}
		interp, ok := shebang(file, environ)
		if !ok || depth == 4 {
			// Not ELF and no usable #!: let exec decide; match this
			// machine's architecture. An ELF header too broken to read
			// further still names the file for --doctor to report on.
			if _, err := elfscan.ReadIdent(file); err == nil {
				pr.ELF = file
			}
			pr.Ident = hostdrivers.NativeIdent()
			return pr, nil
		}
		file = interp
	}
}

// shebang returns the interpreter named by a "#!" line, following
// "/usr/bin/env [-S] NAME" through PATH.
func shebang(file string, environ []string) (string, bool) {
	f, err := rawfile.Open(file, 0)
	if err != nil {
		return "", false
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 256).ReadString('\n')
	if err != nil && line == "" {
		return "", false
	}
	rest, ok := strings.CutPrefix(line, "#!")
	if !ok {
		return "", false
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return "", false
	}
	interp := fields[0]
	if filepath.Base(interp) == "env" {
		for _, a := range fields[1:] {
			if strings.HasPrefix(a, "-") || strings.Contains(a, "=") {
				continue
			}
			p, err := LookPath(a, environ)
			if err != nil {
				return "", false
			}
			return p, true
		}
	}
	return interp, true
}

// NixLDPresent reports whether nix-ld serves FHS programs here: NIX_LD is
// set, or NixOS's nix-ld share directory exists under the root.
func NixLDPresent(root string, environ []string) bool {
	if v, _ := hostdrivers.LookupEnv(environ, "NIX_LD"); v != "" {
		return true
	}
	_, err := os.Stat(filepath.Join(root, "run/current-system/sw/share/nix-ld"))
	return !errors.Is(err, os.ErrNotExist) && err == nil
}
