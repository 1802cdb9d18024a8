/*
 * Fake libnvidia-allocator.so.<version> (SONAME libnvidia-allocator.so.1),
 * built by internal/fixtures.FakeDriver. Like the real one it dlopens
 * libdrm.so.2 by name (only when nixglhost_fake_open_drm is called), so
 * the name is in its strings.
 */
#include <dlfcn.h>
#include <stddef.h>

const char nixglhost_fake_version[] = FAKE_VERSION;

/* nixglhost_fake_open_drm returns 0 when libdrm.so.2 could be loaded. */
int nixglhost_fake_open_drm(void)
{
	return dlopen("libdrm.so.2", RTLD_NOW | RTLD_LOCAL) != NULL ? 0 : 1;
}
