/* backends.c: load the VDPAU driver through libvdpau and the GBM backend
 * through libgbm, as a program does, then print every mapped file whose
 * name holds "vdpau_", "_gbm" or "allocator" ("map PATH"; the maps name
 * the file, links resolved, and NVIDIA's GBM backend is a link to
 * libnvidia-allocator). The loaders are opened by the paths given
 * (argv[1]: libvdpau.so.1, argv[2]: libgbm.so.1), so the program needs
 * neither at link time nor their headers. Without a GPU or an X display
 * the driver's own set-up fails: what is checked is which file each
 * loader opened. Set VDPAU_DRIVER (libvdpau then asks no X server for the
 * name) and GBM_BACKEND (libgbm then loads that backend whatever the
 * device). A crash inside a driver (NVIDIA's GBM backend on /dev/null)
 * still prints the maps, and exits 3. */
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void print_maps(void) {
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096], last[4096] = "";
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		char *p = strchr(line, '/');
		if (!p || (!strstr(p, "vdpau_") && !strstr(p, "_gbm") && !strstr(p, "allocator")))
			continue;
		p[strcspn(p, "\n")] = 0;
		if (strcmp(p, last) != 0)
			printf("map %s\n", p);
		snprintf(last, sizeof last, "%s", p);
	}
	fclose(f);
	fflush(stdout);
}

static void on_crash(int sig) {
	(void)sig;
	print_maps();
	_exit(3);
}

typedef int (*vdp_create_t)(void *dpy, int screen, uint32_t *dev, void **gpa);
typedef void *(*gbm_create_t)(int fd);

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: backends LIBVDPAU LIBGBM\n");
		return 2;
	}
	signal(SIGSEGV, on_crash);
	signal(SIGBUS, on_crash);
	void *v = dlopen(argv[1], RTLD_NOW);
	if (!v)
		printf("error %s\n", dlerror());
	vdp_create_t create = v ? (vdp_create_t)dlsym(v, "vdp_device_create_x11") : 0;
	if (create) {
		uint32_t dev = 0;
		void *gpa = 0;
		printf("vdpau %d\n", create(0, 0, &dev, &gpa));
	}
	void *g = dlopen(argv[2], RTLD_NOW);
	if (!g)
		printf("error %s\n", dlerror());
	gbm_create_t gcreate = g ? (gbm_create_t)dlsym(g, "gbm_create_device") : 0;
	if (gcreate) {
		int fd = open("/dev/null", O_RDWR);
		printf("gbm %s\n", gcreate(fd) ? "device" : "none");
	}
	print_maps();
	return 0;
}
