// Package archrun runs a program built for one Linux architecture on this
// machine: natively where the kernel executes that architecture, else under
// qemu-user.
//
// Whether the kernel runs an architecture is a property of the machine, not
// of the toolchain: a Debian amd64 kernel built without IA32 emulation links
// `gcc -m32` programs fine and then refuses to execute them ("exec format
// error"). So For decides by executing a tiny static program for the
// architecture, once per process, and falls back to the emulator only when
// that fails. Tests, scripts/release.sh (through cmd/archrun) and the
// reproducibility check all ask this package, so every machine runs the same
// programs the same way, and a machine that lacks a kernel feature still runs
// the whole suite.
package archrun

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// NoNativeEnv names a variable holding a comma-separated list of GOARCH
// names (or "all") whose native probe is treated as failed, to simulate a
// machine whose kernel cannot run them. Only this test helper reads it; the
// nixglhost binary never imports this package.
const NoNativeEnv = "NIXGLHOST_ARCHRUN_NO_NATIVE"

// Runner says how this machine runs programs for one architecture.
type Runner struct {
	// Arch is the GOARCH name: "amd64", "386", "arm64" or "arm".
	Arch string
	// Native is true when the kernel executes the architecture's programs
	// itself (directly, or through a binfmt_misc handler it already has).
	Native bool
	// Emulator is the qemu-user program's path when !Native.
	Emulator string
	// Sysroot is the prefix given to qemu's -L for dynamically linked
	// programs whose interpreter only exists under it (the cross libc of
	// arm64 and arm); "" when the interpreter path exists as it is. A caller
	// whose program names an existing interpreter clears it, so that qemu
	// does not remap the program's absolute opens into the sysroot.
	Sysroot string
	// NativeErr is why the native probe failed (nil when Native).
	NativeErr error
}

// archInfo holds what this package knows of one architecture.
type archInfo struct {
	qemu    string // qemu-user program
	sysroot string // the cross libc's root on Debian, "" when the host's own
}

var arches = map[string]archInfo{
	"amd64": {qemu: "qemu-x86_64"},
	// libc6-i386 installs /lib/ld-linux.so.2 and /usr/lib32 in the host's
	// root, where qemu-i386 finds them without -L.
	"386":   {qemu: "qemu-i386"},
	"arm64": {qemu: "qemu-aarch64", sysroot: "/usr/aarch64-linux-gnu"},
	"arm":   {qemu: "qemu-arm", sysroot: "/usr/arm-linux-gnueabihf"},
}

// Arches returns the architectures For knows, sorted.
func Arches() []string {
	var out []string
	for a := range arches {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// ErrNoEmulator is wrapped by For's error when the kernel cannot run the
// architecture and its qemu-user program is not installed.
var ErrNoEmulator = errors.New("no qemu-user emulator")

var (
	mu    sync.Mutex
	cache = map[string]Runner{}
)

// For returns how to run arch's programs here. The native probe runs once
// per process and architecture. The error names the missing emulator (and
// wraps ErrNoEmulator) when the kernel cannot run arch and qemu-user is not
// installed; a kernel that cannot run arch is not an error by itself.
func For(arch string) (Runner, error) {
	info, ok := arches[arch]
	if !ok {
		return Runner{}, fmt.Errorf("archrun: unknown architecture %q (want one of %s)", arch, strings.Join(Arches(), ", "))
	}
	mu.Lock()
	defer mu.Unlock()
	if r, ok := cache[arch]; ok {
		return r, nil
	}
	r := Runner{Arch: arch}
	r.NativeErr = probeNative(arch)
	if r.NativeErr == nil {
		r.Native = true
		cache[arch] = r
		return r, nil
	}
	qemu, err := exec.LookPath(info.qemu)
	if err != nil {
		return Runner{}, fmt.Errorf("archrun: this kernel cannot run %s programs (%v) and %s is not installed (Debian package qemu-user): %w", arch, r.NativeErr, info.qemu, ErrNoEmulator)
	}
	r.Emulator = qemu
	if info.sysroot != "" {
		if _, err := os.Stat(info.sysroot); err == nil {
			r.Sysroot = info.sysroot
		}
	}
	cache[arch] = r
	return r, nil
}

// Describe says in words how r runs programs, for logs and notes.
func (r Runner) Describe() string {
	if r.Native {
		return r.Arch + ": native"
	}
	s := r.Arch + ": " + r.Emulator
	if r.Sysroot != "" {
		s += " -L " + r.Sysroot
	}
	return s + " (native: " + r.NativeErr.Error() + ")"
}

// Command returns a command that runs prog with args on r's architecture.
// As with exec.Cmd, a nil env inherits this process's environment; any
// other env is the program's exact environment. Under qemu the variables
// are passed with -E, so that none of them (LD_LIBRARY_PATH above all)
// reaches qemu itself, and qemu's own environment is empty; qemu splits an
// -E value at commas, so such a value is an error.
func (r Runner) Command(prog string, env []string, args ...string) (*exec.Cmd, error) {
	if r.Native {
		cmd := exec.Command(prog, args...)
		if env != nil {
			cmd.Env = append([]string{}, env...)
		}
		return cmd, nil
	}
	if r.Emulator == "" {
		return nil, fmt.Errorf("archrun: no way to run %s programs (a zero Runner; use For)", r.Arch)
	}
	var qargs []string
	if r.Sysroot != "" {
		qargs = append(qargs, "-L", r.Sysroot)
	}
	for _, kv := range env {
		if strings.Contains(kv, ",") {
			return nil, fmt.Errorf("archrun: %s splits -E values at commas; cannot pass %q to %s", filepath.Base(r.Emulator), kv, prog)
		}
		qargs = append(qargs, "-E", kv)
	}
	qargs = append(qargs, prog)
	qargs = append(qargs, args...)
	cmd := exec.Command(r.Emulator, qargs...)
	if env != nil {
		cmd.Env = []string{}
	}
	return cmd, nil
}

// probeExit is the status the probe programs exit with: a value no loader
// error or shell gives, so a probe that "ran" something else is caught.
const probeExit = 42

// probeNative executes a tiny static program for arch and reports why it
// did not exit with probeExit (nil when it did).
func probeNative(arch string) error {
	if list := os.Getenv(NoNativeEnv); list != "" {
		for _, a := range strings.Split(list, ",") {
			if a == arch || a == "all" {
				return fmt.Errorf("native execution disabled by %s=%s", NoNativeEnv, list)
			}
		}
	}
	dir, err := os.MkdirTemp("", "archrun-probe")
	if err != nil {
		return fmt.Errorf("archrun: creating probe directory: %w", err)
	}
	defer os.RemoveAll(dir)
	prog := filepath.Join(dir, "probe-"+arch)
	if err := os.WriteFile(prog, TinyProgram(arch, probeExit), 0o755); err != nil {
		return fmt.Errorf("archrun: writing %s: %w", prog, err)
	}
	err = exec.Command(prog).Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return fmt.Errorf("probe %s exited 0, want %d", prog, probeExit)
	case errors.As(err, &ee) && ee.ExitCode() == probeExit:
		return nil
	default:
		return fmt.Errorf("executing a static %s program: %w", arch, err)
	}
}
