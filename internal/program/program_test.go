package program

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nixglhost/nixglhost/internal/fixtures"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	sh, err := filepath.EvalSymlinks("/bin/sh")
	fixtures.Must(t, err)
	script := filepath.Join(dir, "script")
	fixtures.Must(t, os.WriteFile(script, []byte("#!/usr/bin/env -S sh -e\necho hi\n"), 0o755))
	nested := filepath.Join(dir, "nested")
	fixtures.Must(t, os.WriteFile(nested, []byte("#!"+script+"\n"), 0o755))
	text := filepath.Join(dir, "text")
	fixtures.Must(t, os.WriteFile(text, []byte("echo no interpreter\n"), 0o755))
	plain := filepath.Join(dir, "plain")
	fixtures.Must(t, os.WriteFile(plain, nil, 0o644))
	env := []string{"PATH=/usr/bin:/bin"}
	tests := []struct {
		name, arg string
		wantELF   string // "" for none; "sh" for the resolved shell
		wantErr   bool
	}{
		{"ELF by PATH", "sh", "sh", false},
		{"env script", script, "sh", false},
		{"script running a script", nested, "sh", false},
		{"no #!", text, "", false},
		{"not executable", plain, "", true},
		{"not found", "no-such-program-here", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Find(tt.arg, env)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Find(%s) = %+v, %v", tt.arg, p, err)
			}
			if err != nil {
				return
			}
			got := p.ELF
			if r, err := filepath.EvalSymlinks(got); err == nil && r == sh {
				got = "sh"
			}
			if got != tt.wantELF {
				t.Errorf("ELF = %q, want %q", p.ELF, tt.wantELF)
			}
			if tt.wantELF == "" && p.Ident != hostdrivers.NativeIdent() {
				t.Errorf("Ident = %+v without an ELF file, want this machine's", p.Ident)
			}
			if tt.wantELF == "sh" && (p.Interp == "" || !p.FHS) {
				t.Errorf("the host's sh: Interp %q FHS %v, want an FHS interpreter", p.Interp, p.FHS)
			}
		})
	}
}

func TestNixLDPresent(t *testing.T) {
	root := t.TempDir()
	if NixLDPresent(root, nil) {
		t.Error("nix-ld present in an empty root")
	}
	if !NixLDPresent(root, []string{"NIX_LD=/x"}) {
		t.Error("NIX_LD set, nix-ld not present")
	}
	fixtures.Must(t, os.MkdirAll(filepath.Join(root, "run/current-system/sw/share/nix-ld"), 0o755))
	if !NixLDPresent(root, nil) {
		t.Error("NixOS's nix-ld directory, nix-ld not present")
	}
}
