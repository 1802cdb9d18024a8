/*
 * Fake libnvidia-ml.so.<version> (SONAME libnvidia-ml.so.1), built by
 * internal/fixtures.FakeDriver. nvmlInit_v2 returns 9
 * (NVML_ERROR_DRIVER_NOT_LOADED) as the real library does without a GPU;
 * the rest return 1 (NVML_ERROR_UNINITIALIZED).
 */
#include <stddef.h>

const char nixglhost_fake_version[] = FAKE_VERSION;

int nvmlInit_v2(void) { return 9; }

int nvmlInit(void) { return 9; }

int nvmlDeviceGetCount_v2(unsigned int *n)
{
	if (n != NULL)
		*n = 0;
	return 1;
}

int nvmlShutdown(void) { return 1; }
