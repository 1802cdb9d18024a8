/*
 * A stand-in shared library with no behaviour, built by internal/fixtures
 * under whatever SONAME it needs: link-time stubs for libraries a fake is
 * linked against (libX11.so.6 for arm64, where this machine has none), and
 * Jetson's tegra libraries (libnvrm_gpu.so, libnvos.so...), which no
 * package ships.
 */
const char nixglhost_fake_soname[] = FAKE_SONAME;

int nixglhost_fake_stub(void) { return 0; }
