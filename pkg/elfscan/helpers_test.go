package elfscan

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nixglhost/nixglhost/internal/archrun"
	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// compiler is a C compiler for one target, and how to run its programs.
type compiler struct {
	name    string   // the GOARCH name: "amd64", "arm64", "386"
	cc      []string // the compiler command and its target flags
	machine elf.Machine
	class   elf.Class
}

// command returns a command running prog with args on c's target, with the
// variables env added to this process's environment (natively) or given
// with qemu's -E (emulated: qemu's own environment stays this process's,
// so that env, LD_LIBRARY_PATH above all, reaches only the program). How to
// run the target comes from package archrun: natively where this kernel
// runs it, else under qemu-user. c.need must have passed.
func (c compiler) command(t testing.TB, prog string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	r := c.runner(t)
	if r.Native {
		cmd := exec.Command(prog, args...)
		cmd.Env = append(os.Environ(), env...)
		return cmd
	}
	cmd, err := r.Command(prog, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = nil // qemu keeps this process's environment; env went by -E
	return cmd
}

// runner returns how this machine runs c's programs, failing t (or
// skipping it, outside CI) when it cannot.
func (c compiler) runner(t testing.TB) archrun.Runner {
	t.Helper()
	return fixtures.Runner(t, c.name)
}

var (
	compilerAMD64 = compiler{name: "amd64", cc: []string{"gcc"}, machine: elf.EM_X86_64, class: elf.ELFCLASS64}
	compilerARM64 = compiler{name: "arm64", cc: []string{"aarch64-linux-gnu-gcc"},
		machine: elf.EM_AARCH64, class: elf.ELFCLASS64}
	compiler386 = compiler{name: "386", cc: []string{"gcc", "-m32"}, machine: elf.EM_386, class: elf.ELFCLASS32}
)

// need skips t unless c can build and run programs here (fails it where
// NIXGLHOST_REQUIRE_FIXTURES=1, as in CI, which installs them all:
// libc6-dev-i386 and lib32gcc-12-dev for 386, gcc-aarch64-linux-gnu and
// qemu-user for arm64). A kernel that cannot execute the target is no
// reason to skip: its programs then run under qemu-user.
func (c compiler) need(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(c.cc[0]); err != nil {
		fixtures.Unavailable(t, "no %s compiler: %v", c.name, err)
	}
	r := c.runner(t)
	t.Logf("%s programs run here as %s", c.name, r.Describe())
	if r.Sysroot != "" {
		if _, err := os.Stat(r.Sysroot); err != nil {
			fixtures.Unavailable(t, "no %s libc: %v", c.name, err)
		}
	}
	probe := filepath.Join(t.TempDir(), "probe")
	if out, err := c.build(probe, "int main(void){return 0;}"); err != nil {
		fixtures.Unavailable(t, "%s compiler cannot link a program here (packages libc6-dev-i386 and lib32gcc-12-dev for 386; gcc-multilib would remove the arm64 cross compiler): %v\n%s", c.name, err, out)
	}
}

// build compiles src (C) into out with extra flags.
func (c compiler) build(out, src string, flags ...string) ([]byte, error) {
	dir := filepath.Dir(out)
	cfile := filepath.Join(dir, filepath.Base(out)+".c")
	if err := os.WriteFile(cfile, []byte(src), 0o644); err != nil {
		return nil, err
	}
	args := append(append([]string{}, c.cc[1:]...), "-o", out, cfile)
	args = append(args, flags...)
	return exec.Command(c.cc[0], args...).CombinedOutput()
}

// mustBuild is build that fails t on error.
func (c compiler) mustBuild(t testing.TB, out, src string, flags ...string) string {
	t.Helper()
	if b, err := c.build(out, src, flags...); err != nil {
		t.Fatalf("%s build of %s: %v\n%s", c.name, out, err, b)
	}
	return out
}

// isELF reports whether path is a regular file starting with the ELF magic.
func isELF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return false
	}
	return bytes.Equal(b[:], []byte(elf.ELFMAG))
}

// corpusFiles returns the regular ELF files under the NVIDIA corpus for
// arch, current and old drivers, sorted.
func corpusFiles(t testing.TB, arch string) []string {
	t.Helper()
	var files []string
	for _, root := range []string{fixtures.NvidiaRoot(t, arch), fixtures.NvidiaOld(t, arch)} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && isELF(p) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatalf("no ELF files in the %s corpus", arch)
	}
	return files
}

// corpusName shortens a corpus path for a subtest name.
func corpusName(p string) string {
	i := strings.Index(p, "/nvidia/")
	if i < 0 {
		return filepath.Base(p)
	}
	return p[i+len("/nvidia/"):]
}
