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
// signal handler"); with preemption by signal off it passed 30 of 30.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

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
	cmd, err := r.Command(args[1], nil, args[2:]...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if !r.Native {
		// qemu passes its own environment to the program; see the
		// package comment for why.
		cmd.Env = append(os.Environ(), "GODEBUG="+goDebug(os.Getenv("GODEBUG")))
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "archrun: %s: %v\n", args[1], err)
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
