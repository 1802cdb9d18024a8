// Command testreport runs `go test -json` (or reads its stream) and writes
// it for a person through package testreport: failed tests' output in full,
// one line per package, each skip with its reason, and the pass, fail and
// skip counts last. make test runs the suite through it.
//
//	testreport [-allow FILE] [-require] [-v] [COMMAND ARG...]
//
// With a command, it runs it (its stderr passes through) and reads its
// stdout; without one it reads stdin. -require (default: on when
// NIXGLHOST_REQUIRE_FIXTURES=1) fails the run on a skip FILE does not
// list. The exit status is 0 only when nothing failed, every skip is
// accepted, and the command exited 0.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/nixglhost/nixglhost/internal/testreport"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("testreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	allow := fs.String("allow", "", "allow-list of skips (`file`)")
	require := fs.Bool("require", os.Getenv("NIXGLHOST_REQUIRE_FIXTURES") == "1", "fail on a skip the allow-list does not name")
	verbose := fs.Bool("v", false, "write every test's output, not only failed tests'")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts := testreport.Options{Require: *require, Verbose: *verbose}
	if *allow != "" {
		f, err := os.Open(*allow)
		if err != nil {
			fmt.Fprintf(stderr, "testreport: %v\n", err)
			return 2
		}
		opts.Allow, err = testreport.ParseAllowList(*allow, f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "testreport: %v\n", err)
			return 2
		}
	}
	in := stdin
	var cmd *exec.Cmd
	if fs.NArg() > 0 {
		cmd = exec.Command(fs.Arg(0), fs.Args()[1:]...)
		cmd.Stderr = stderr
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			fmt.Fprintf(stderr, "testreport: %v\n", err)
			return 2
		}
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(stderr, "testreport: %v\n", err)
			return 2
		}
		in = pipe
	}
	sum, readErr := testreport.Read(in, stdout, opts)
	status := 0
	if readErr != nil {
		fmt.Fprintf(stderr, "testreport: %v\n", readErr)
		status = 1
	}
	if cmd != nil {
		if err := cmd.Wait(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) || len(sum.Failures) == 0 {
				// A failure the stream did not show (a flag go test refused,
				// no packages): say so, or it would read as a pass.
				fmt.Fprintf(stderr, "testreport: %s: %v\n", fs.Arg(0), err)
			}
			status = 1
		}
	}
	if !sum.OK(opts.Require) {
		status = 1
	}
	return status
}
