/*
 * Fake libGLX_nvidia.so.<version> (SONAME libGLX_nvidia.so.0), built by
 * internal/fixtures.FakeDriver. Like the real one it has DT_NEEDED
 * libX11.so.6, libXext.so.6 (generic host libraries) and
 * libnvidia-glcore.so.<version>; it calls none of them. It also names the
 * X libraries the real one dlopens, so a strings scan finds them.
 */
#include <stddef.h>

const char nixglhost_fake_version[] = FAKE_VERSION;
const char *const nixglhost_fake_dlopens[] = {"libxcb-dri3.so.0", "libX11-xcb.so.1", NULL};

int __glx_Main(void) { return 0; }

void *vk_icdGetInstanceProcAddr(void *instance, const char *name)
{
	(void)instance;
	(void)name;
	return NULL;
}
