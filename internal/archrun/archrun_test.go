package archrun

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireEnv is the variable that turns a missing emulator into a failure
// (as internal/fixtures.RequireEnv; this package cannot import fixtures,
// which imports it).
const requireEnv = "NIXGLHOST_REQUIRE_FIXTURES"

func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("required emulator unavailable ("+requireEnv+"=1): "+format, args...)
	}
	t.Skipf("emulator unavailable: "+format, args...)
}

func TestTinyProgramIsELF(t *testing.T) {
	tests := []struct {
		arch    string
		machine elf.Machine
		class   elf.Class
	}{
		{"amd64", elf.EM_X86_64, elf.ELFCLASS64},
		{"386", elf.EM_386, elf.ELFCLASS32},
		{"arm64", elf.EM_AARCH64, elf.ELFCLASS64},
		{"arm", elf.EM_ARM, elf.ELFCLASS32},
	}
	for _, tt := range tests {
		t.Run(tt.arch, func(t *testing.T) {
			f, err := elf.NewFile(bytes.NewReader(TinyProgram(tt.arch, 7)))
			if err != nil {
				t.Fatalf("debug/elf cannot read the tiny program: %v", err)
			}
			if f.Machine != tt.machine || f.Class != tt.class || f.Type != elf.ET_EXEC {
				t.Errorf("machine %v class %v type %v, want %v %v ET_EXEC", f.Machine, f.Class, f.Type, tt.machine, tt.class)
			}
			if len(f.Progs) != 1 || f.Progs[0].Type != elf.PT_LOAD || f.Progs[0].Off != 0 {
				t.Fatalf("program headers = %+v, want one PT_LOAD at offset 0", f.Progs)
			}
			p := f.Progs[0]
			if f.Entry < p.Vaddr || f.Entry >= p.Vaddr+p.Filesz {
				t.Errorf("entry %#x outside the segment [%#x, %#x)", f.Entry, p.Vaddr, p.Vaddr+p.Filesz)
			}
		})
	}
	if TinyProgram("mips", 0) != nil {
		t.Error("TinyProgram(mips) is not nil")
	}
}

// TestEveryArchRunsHere runs each architecture's tiny program the way For
// says, and again under its emulator, expecting the exit status it was
// built with. It fails under NIXGLHOST_REQUIRE_FIXTURES=1 when an emulator
// is missing, whatever the kernel runs.
func TestEveryArchRunsHere(t *testing.T) {
	for _, arch := range Arches() {
		t.Run(arch, func(t *testing.T) {
			prog := filepath.Join(t.TempDir(), "tiny")
			if err := os.WriteFile(prog, TinyProgram(arch, 13), 0o755); err != nil {
				t.Fatal(err)
			}
			r, err := For(arch)
			if errors.Is(err, ErrNoEmulator) {
				unavailable(t, "%v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Log(r.Describe())
			checkExit(t, r, prog, 13)

			if r.Native {
				emu := Runner{Arch: arch, Emulator: arches[arch].qemu}
				if _, err := exec.LookPath(emu.Emulator); err != nil {
					unavailable(t, "%s: %v", emu.Emulator, err)
				}
				checkExit(t, emu, prog, 13)
			}
		})
	}
}

func checkExit(t *testing.T, r Runner, prog string, want int) {
	t.Helper()
	cmd, err := r.Command(prog, []string{})
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != want {
		t.Errorf("%s (%s): %v, want exit status %d", prog, r.Describe(), err, want)
	}
}

// TestNoNative: the variable that simulates a kernel without an
// architecture makes For choose the emulator.
func TestNoNative(t *testing.T) {
	if err := probeNative("amd64"); err != nil {
		t.Fatalf("this amd64 machine does not run a static amd64 program: %v", err)
	}
	t.Setenv(NoNativeEnv, "386,amd64")
	err := probeNative("amd64")
	if err == nil || !strings.Contains(err.Error(), NoNativeEnv) {
		t.Errorf("probeNative(amd64) with %s set = %v, want an error naming it", NoNativeEnv, err)
	}
}

func TestCommand(t *testing.T) {
	emu := Runner{Arch: "arm64", Emulator: "/usr/bin/qemu-aarch64", Sysroot: "/sys/root"}
	cmd, err := emu.Command("/p", []string{"A=1", "LD_LIBRARY_PATH=/x"}, "arg")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/usr/bin/qemu-aarch64", "-L", "/sys/root", "-E", "A=1", "-E", "LD_LIBRARY_PATH=/x", "/p", "arg"}
	if strings.Join(cmd.Args, " ") != strings.Join(want, " ") || cmd.Env == nil || len(cmd.Env) != 0 {
		t.Errorf("Command = %q env %q, want %q and an empty environment", cmd.Args, cmd.Env, want)
	}
	if _, err := emu.Command("/p", []string{"A=1,2"}); err == nil || !strings.Contains(err.Error(), "A=1,2") {
		t.Errorf("a comma in an -E value: err = %v, want one naming it", err)
	}
	cmd, err = emu.Command("/p", nil)
	if err != nil || cmd.Env != nil {
		t.Errorf("nil env: cmd.Env = %q, %v; want it inherited (nil)", cmd.Env, err)
	}
	if _, err := (Runner{Arch: "arm"}).Command("/p", nil); err == nil {
		t.Error("a zero Runner made a command")
	}
	if _, err := For("mips"); err == nil || !strings.Contains(err.Error(), "mips") {
		t.Errorf("For(mips) = %v, want an error naming it", err)
	}
}
