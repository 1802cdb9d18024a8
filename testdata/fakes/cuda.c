/*
 * Fake libcuda.so.<version> (SONAME libcuda.so.1), built by
 * internal/fixtures.FakeDriver. Like the real driver, cuInit dlopens the
 * PTX JIT compiler by soname only; it returns 221
 * (CUDA_ERROR_JIT_COMPILER_NOT_FOUND) when that fails, else 100
 * (CUDA_ERROR_NO_DEVICE), as the real driver does on a machine without a
 * GPU. Everything after cuInit fails with 3 (CUDA_ERROR_NOT_INITIALIZED).
 */
#include <dlfcn.h>
#include <stddef.h>

const char nixglhost_fake_version[] = FAKE_VERSION;

int cuDriverGetVersion(int *v)
{
	if (v == NULL)
		return 1;
	*v = FAKE_CUDA_VERSION;
	return 0;
}

int cuInit(unsigned int flags)
{
	(void)flags;
	if (dlopen("libnvidia-ptxjitcompiler.so.1", RTLD_NOW | RTLD_LOCAL) == NULL)
		return 221;
	return 100;
}

int cuDeviceGetCount(int *n)
{
	if (n != NULL)
		*n = 0;
	return 3;
}

int cuDeviceGet(int *dev, int ordinal)
{
	(void)dev;
	(void)ordinal;
	return 3;
}

int cuDeviceGetName(char *name, int len, int dev)
{
	(void)name;
	(void)len;
	(void)dev;
	return 3;
}

int cuCtxCreate_v2(void **ctx, unsigned int flags, int dev)
{
	(void)ctx;
	(void)flags;
	(void)dev;
	return 3;
}

int cuModuleLoadData(void **mod, const void *image)
{
	(void)mod;
	(void)image;
	return 3;
}
