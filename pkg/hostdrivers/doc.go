// Package hostdrivers finds the host's GPU driver and prepares it for a Nix
// program: with the catalogue of driver files (package catalog), discovery
// of the directories that hold them, selection of one consistent driver version,
// the closure of generic host libraries the driver needs, a content-keyed cache
// entry laid out like NixOS's /run/opengl-driver, and the environment that
// points a program at it.
//
// It reads the host tree and never writes to it; all writes go to the cache
// directory, built in a temporary directory and renamed into place. It never
// puts a member of the glibc family into a cache entry.
package hostdrivers
