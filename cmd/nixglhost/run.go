package main

import (
	"fmt"
	"io"
)

// main1 is the whole command without the process exit, so tests can run it.
func main1(args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	for _, a := range args {
		switch a {
		case "--version":
			fmt.Fprintf(stdout, "nixglhost %s (commit %s)\n", version, commit)
			return 0
		case "-h", "--help":
			fmt.Fprintln(stdout, "usage: nixglhost [-d DIR]... [flags] [--] PROGRAM [ARGS...]")
			return 0
		}
	}
	fmt.Fprintln(stderr, "nixglhost: not implemented yet")
	return 1
}
