// Command archrun runs a program built for another Linux architecture the
// way the test suite does (package archrun): natively where this kernel
// runs it, else under qemu-user. scripts/release.sh uses it to run each
// release binary's --version.
//
//	archrun ARCH PROG [ARG...]   run PROG (this process's environment)
//	archrun -describe ARCH...    print how each ARCH runs here
//
// Under qemu the program gets GODEBUG=asyncpreemptoff=1 (the programs it
// runs are Go's): qemu-user 7.2, Debian 12's, delivers the Go runtime's
// preemption signal badly to 386 programs, and a Go 386 binary's --version
// then crashed in 5 of 5 runs ("fatal: morestack on gsignal", "bad g in
// signal handler"); with preemption by signal off it still crashes about 2
// runs in 100 (196 of 200 here), so a run the emulator crashed is tried
// again, up to three times.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/nixglhost/nixglhost/internal/archrun"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) >= 1 && args[0] == "-describe" {
		status := 0
		for _, arch := range args[1:] {
			r, err := archrun.For(arch)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				status = 1
				continue
			}
			fmt.Println(r.Describe())
		}
		return status
	}
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: archrun ARCH PROG [ARG...] | archrun -describe ARCH...")
		return 2
	}
	r, err := archrun.For(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if r.Native {
		cmd, err := r.Command(args[1], nil, args[2:]...)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		return status(args[1], cmd.Run())
	}
	// Under qemu: see the package comment. A try the emulator crashed is
	// run again, its output discarded; the last try's output is the one
	// written.
	var stdout, stderr bytes.Buffer
	var err2 error
	for try := 1; try <= maxTries; try++ {
		cmd, err := r.Command(args[1], nil, args[2:]...)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// qemu passes its own environment to the program.
		cmd.Env = append(os.Environ(), "GODEBUG="+goDebug(os.Getenv("GODEBUG")))
		stdout.Reset()
		stderr.Reset()
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err2 = cmd.Run()
		if !emulatorCrash(err2, stderr.String()) {
			break
		}
		if try < maxTries {
			fmt.Fprintf(os.Stderr, "archrun: %s crashed under %s (try %d of %d), running it again\n", args[1], r.Emulator, try, maxTries)
		}
	}
	os.Stdout.Write(stdout.Bytes())
	os.Stderr.Write(stderr.Bytes())
	return status(args[1], err2)
}

// maxTries bounds the runs of a program the emulator crashes.
const maxTries = 3

// emulatorCrash reports whether a run under qemu ended as qemu-user 7.2
// ends Go's runtime now and then: killed by a signal, or a fatal error of
// the Go runtime itself ("fatal: morestack on gsignal", "bad g in signal
// handler", "fatal error: resetspinning: not a spinning m", SIGSEGV), which
// Go programs never throw on purpose. A program's own failure exits with its
// status and is not retried.
func emulatorCrash(err error, stderr string) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return true
	}
	for _, s := range []string{"fatal error: ", "fatal: morestack on gsignal", "bad g in signal handler", "SIGSEGV: segmentation violation", "qemu: uncaught target signal"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// status turns a run's error into this command's exit status.
func status(prog string, err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "archrun: %s: %v\n", prog, err)
		return 1
	}
}

// goDebug returns the GODEBUG value old with asyncpreemptoff=1 added.
func goDebug(old string) string {
	if old == "" {
		return "asyncpreemptoff=1"
	}
	return old + ",asyncpreemptoff=1"
}
