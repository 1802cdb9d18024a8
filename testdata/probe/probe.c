/*
 * probe: report what a program sees of the NVIDIA driver, one fact a line.
 *
 * Built by internal/fixtures against a Nix-like glibc store for the
 * end-to-end tests, and by scripts/gpu-check.sh on a real GPU host:
 *     cc -O1 -o probe probe.c -ldl
 *
 * With no argument it dlopens libcuda.so.1 and libnvidia-ml.so.1 by soname,
 * as CUDA programs and nvidia-smi do, and prints (rc is the function's
 * return code; a line is missing when the step was not reached):
 *     cuda_dlopen ok <path> | cuda_dlopen error <dlerror>
 *     sym_missing <symbol>
 *     cuDriverGetVersion <rc> <version>
 *     cuInit <rc>
 *     cuDeviceGetCount <rc> <n>
 *     cuDeviceGet <rc>
 *     device_name <name>
 *     cuCtxCreate <rc>
 *     cuModuleLoadData <rc>
 *     nvml_dlopen ok <path> | nvml_dlopen error <dlerror>
 *     nvmlInit <rc>
 *     nvmlDeviceGetCount <rc> <n>
 * The CUDA calls after cuInit are made only when the previous one returned
 * 0; nvmlDeviceGetCount only when nvmlInit returned 0.
 *
 * With arguments, "probe NAME..." dlopens each NAME (RTLD_NOW|RTLD_GLOBAL)
 * and prints "dlopen <name> ok <path>" or "dlopen <name> error <dlerror>".
 *
 * Both modes end with "map <path>" for each distinct file mapped into the
 * process whose path contains ".so", "ld-linux", "libcuda" or "nvidia"
 * (so every shared object: libc, the loader, the driver, its
 * dependencies; on a GPU host also the /dev/nvidia* device nodes the
 * driver maps), in the order of /proc/self/maps. <path> is the loader's
 * name for the object (dlinfo's l_name; it may hold runs of '/') for the
 * dlopen lines, the kernel's for the map lines. The exit status is 0
 * unless the process crashes; everything goes to stdout, line-buffered.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*fn_void)(void);
typedef int (*fn_uint)(unsigned int);
typedef int (*fn_intp)(int *);
typedef int (*fn_devget)(int *, int);
typedef int (*fn_devname)(char *, int, int);
typedef int (*fn_ctx)(void **, unsigned int, int);
typedef int (*fn_modload)(void **, const void *);
typedef int (*fn_uintp)(unsigned int *);

/* A minimal valid PTX module: one empty kernel. Loading it makes the
 * driver JIT-compile it with libnvidia-ptxjitcompiler (221 when the
 * compiler cannot be loaded). */
static const char ptx[] =
	".version 7.0\n"
	".target sm_50\n"
	".address_size 64\n"
	"\n"
	".visible .entry k()\n"
	"{\n"
	"\tret;\n"
	"}\n";

/* oneline replaces newlines in s (a dlerror message) by spaces. */
static const char *oneline(const char *s)
{
	static char buf[4096];
	size_t i;
	if (s == NULL)
		return "(no message)";
	for (i = 0; s[i] != '\0' && i < sizeof buf - 1; i++)
		buf[i] = (s[i] == '\n' || s[i] == '\r') ? ' ' : s[i];
	buf[i] = '\0';
	return buf;
}

/* loaded_path returns the loader's name for handle h. */
static const char *loaded_path(void *h)
{
	struct link_map *lm = NULL;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL || lm->l_name == NULL)
		return "(unknown)";
	return lm->l_name;
}

/* sym looks up name in h, reporting a missing symbol. */
static void *sym(void *h, const char *name)
{
	void *p = dlsym(h, name);
	if (p == NULL)
		printf("sym_missing %s\n", name);
	return p;
}

static void probe_cuda(void)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL) {
		printf("cuda_dlopen error %s\n", oneline(dlerror()));
		return;
	}
	printf("cuda_dlopen ok %s\n", loaded_path(h));

	fn_intp drvver = (fn_intp)dlsym(h, "cuDriverGetVersion");
	if (drvver != NULL) {
		int v = 0;
		int rc = drvver(&v);
		printf("cuDriverGetVersion %d %d\n", rc, v);
	}

	fn_uint init = (fn_uint)sym(h, "cuInit");
	fn_intp count = (fn_intp)sym(h, "cuDeviceGetCount");
	fn_devget devget = (fn_devget)sym(h, "cuDeviceGet");
	fn_devname devname = (fn_devname)sym(h, "cuDeviceGetName");
	fn_ctx ctx = (fn_ctx)dlsym(h, "cuCtxCreate_v2");
	if (ctx == NULL)
		ctx = (fn_ctx)sym(h, "cuCtxCreate");
	fn_modload modload = (fn_modload)sym(h, "cuModuleLoadData");
	if (init == NULL)
		return;

	int rc = init(0);
	printf("cuInit %d\n", rc);
	if (rc != 0 || count == NULL)
		return;
	int n = 0;
	rc = count(&n);
	printf("cuDeviceGetCount %d %d\n", rc, n);
	if (rc != 0 || n < 1 || devget == NULL)
		return;
	int dev = 0;
	rc = devget(&dev, 0);
	printf("cuDeviceGet %d\n", rc);
	if (rc != 0)
		return;
	if (devname != NULL) {
		char name[256] = {0};
		if (devname(name, sizeof name - 1, dev) == 0)
			printf("device_name %s\n", oneline(name));
	}
	if (ctx == NULL)
		return;
	void *c = NULL;
	rc = ctx(&c, 0, dev);
	printf("cuCtxCreate %d\n", rc);
	if (rc != 0 || modload == NULL)
		return;
	void *mod = NULL;
	rc = modload(&mod, ptx);
	printf("cuModuleLoadData %d\n", rc);
}

static void probe_nvml(void)
{
	void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL) {
		printf("nvml_dlopen error %s\n", oneline(dlerror()));
		return;
	}
	printf("nvml_dlopen ok %s\n", loaded_path(h));
	fn_void init = (fn_void)sym(h, "nvmlInit_v2");
	fn_uintp count = (fn_uintp)sym(h, "nvmlDeviceGetCount_v2");
	if (init == NULL)
		return;
	int rc = init();
	printf("nvmlInit %d\n", rc);
	if (rc != 0 || count == NULL)
		return;
	unsigned int n = 0;
	rc = count(&n);
	printf("nvmlDeviceGetCount %d %u\n", rc, n);
	fn_void shutdown = (fn_void)dlsym(h, "nvmlShutdown");
	if (shutdown != NULL)
		shutdown();
}

static int interesting(const char *path)
{
	return strstr(path, ".so") != NULL || strstr(path, "ld-linux") != NULL ||
	       strstr(path, "libcuda") != NULL || strstr(path, "nvidia") != NULL;
}

/* print_maps prints each distinct interesting path of /proc/self/maps. */
static void print_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (f == NULL) {
		printf("maps_error cannot open /proc/self/maps\n");
		return;
	}
	enum { MAXSEEN = 512 };
	static char *seen[MAXSEEN];
	int nseen = 0;
	char line[8192];
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		char *path = strchr(line, '/'); /* addresses and flags hold no '/' */
		if (path == NULL || !interesting(path))
			continue;
		int dup = 0;
		for (int i = 0; i < nseen; i++)
			if (strcmp(seen[i], path) == 0) {
				dup = 1;
				break;
			}
		if (dup)
			continue;
		if (nseen < MAXSEEN)
			seen[nseen++] = strdup(path);
		printf("map %s\n", path);
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			void *h = dlopen(argv[i], RTLD_NOW | RTLD_GLOBAL);
			if (h == NULL)
				printf("dlopen %s error %s\n", argv[i], oneline(dlerror()));
			else
				printf("dlopen %s ok %s\n", argv[i], loaded_path(h));
		}
	} else {
		probe_cuda();
		probe_nvml();
	}
	print_maps();
	fflush(stdout);
	return 0;
}
