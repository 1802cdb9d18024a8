/*
 * Fake libEGL_nvidia.so.<version> (SONAME libEGL_nvidia.so.0), built by
 * internal/fixtures.FakeDriver.
 */
const char nixglhost_fake_version[] = FAKE_VERSION;

int __egl_Main(void) { return 0; }
