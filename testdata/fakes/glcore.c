/*
 * Fake libnvidia-glcore.so.<version> (SONAME the same versioned name, as
 * the real one), built by internal/fixtures.FakeDriver.
 */
const char nixglhost_fake_version[] = FAKE_VERSION;

int nixglhost_fake_glcore(void) { return 0; }
