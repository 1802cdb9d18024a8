// Package catalog is data: which file names belong to a GPU's userspace
// driver (NVIDIA's, and Mesa's), the API each serves and how it is used,
// the generic host libraries each loads by name, the vendor data files
// (EGL, Vulkan, OpenCL, GBM) and where hosts keep them, and the glibc
// family that never enters a cache entry. It reads and writes nothing;
// pkg/hostdrivers decides with it.
package catalog
