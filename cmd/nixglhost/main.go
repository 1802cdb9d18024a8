// Command nixglhost runs a Nix-built program with the host's GPU driver.
//
// It scans the host's driver directories, builds (or reuses) a private cache
// entry laid out like NixOS's /run/opengl-driver that exposes only the driver,
// and execs the program with that entry appended to its library path. See
// README.md and DESIGN.md for the interface.
//
// The runtime's cgroup CPU-limit probing reads /proc/self/mountinfo a few
// bytes at a time (some 180 system calls) before main runs; nixglhost needs
// no CPU limit, as it execs the program within milliseconds, so it is off.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"os"
	"runtime/debug"
)

// version and commit are stamped at build time with -ldflags -X.
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	// A launch lives for a few milliseconds and allocates little: no
	// garbage collection, unless a cold build over a huge driver comes
	// near the memory limit.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(64 << 20)
	os.Exit(main1(os.Args, os.Stdin, os.Stdout, os.Stderr, os.Environ()))
}
