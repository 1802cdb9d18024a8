/*
 * Fake libnvidia-ptxjitcompiler.so.<version> (SONAME
 * libnvidia-ptxjitcompiler.so.1), built by internal/fixtures.FakeDriver.
 */
const char nixglhost_fake_version[] = FAKE_VERSION;

int __cuda_CallJitEntryPoint(void) { return 0; }
