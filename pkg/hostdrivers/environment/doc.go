// Package environment is the launch's view of a cache entry: the
// variables that point a program at the entry's lib/ and vendor files
// (LD_LIBRARY_PATH or NIX_LD_LIBRARY_PATH, the glvnd, Vulkan, OpenCL, GBM
// and VDPAU variables), each appended to what the user set, never
// replacing it, and their application to an environment. It reads the
// entry's manifest (pkg/hostdrivers) and nothing else.
package environment
