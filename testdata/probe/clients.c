/*
 * clients: drive the real dispatch libraries and loaders a program brings
 * (libglvnd's libEGL, the Vulkan loader, ocl-icd) far enough that they load
 * their vendor drivers, then report which driver files got mapped.
 *
 *     cc -o clients clients.c -ldl
 *
 * Prints "egl <status>", "vulkan <rc> <count>", "opencl <rc> <count>" and
 * then "map <path>" for every mapped file whose path contains "nvidia".
 * Symbols are looked up with dlsym, so no development package is needed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef const char *(*egl_query_string)(void *, int);
typedef void *(*egl_get_display)(void *);
typedef unsigned (*egl_initialize)(void *, int *, int *);
typedef void *(*vk_get_proc)(void *, const char *);
typedef int (*vk_enum_ext)(const char *, unsigned *, void *);
typedef int (*cl_get_platforms)(unsigned, void *, unsigned *);

#define EGL_EXTENSIONS 0x3055

static void maps(void) {
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096], last[4096] = "";
	if (!f) return;
	while (fgets(line, sizeof line, f)) {
		char *p = strchr(line, '/');
		if (!p || !strstr(p, "nvidia")) continue;
		p[strcspn(p, "\n")] = 0;
		if (strcmp(p, last) == 0) continue;
		strcpy(last, p);
		printf("map %s\n", p);
	}
	fclose(f);
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	void *egl = dlopen("libEGL.so.1", RTLD_NOW);
	if (!egl) {
		printf("egl dlopen-error %s\n", dlerror());
	} else {
		egl_query_string qs = (egl_query_string)dlsym(egl, "eglQueryString");
		egl_get_display gd = (egl_get_display)dlsym(egl, "eglGetDisplay");
		egl_initialize in = (egl_initialize)dlsym(egl, "eglInitialize");
		const char *ext = qs ? qs(NULL, EGL_EXTENSIONS) : NULL;
		void *d = gd ? gd(NULL) : NULL;
		int maj = 0, min = 0;
		unsigned ok = (d && in) ? in(d, &maj, &min) : 0;
		printf("egl %s %s\n", ext ? "client-extensions" : "no-extensions", ok ? "initialized" : "not-initialized");
	}
	void *vk = dlopen("libvulkan.so.1", RTLD_NOW);
	if (!vk) {
		printf("vulkan dlopen-error %s\n", dlerror());
	} else {
		vk_get_proc gp = (vk_get_proc)dlsym(vk, "vkGetInstanceProcAddr");
		vk_enum_ext ee = gp ? (vk_enum_ext)gp(NULL, "vkEnumerateInstanceExtensionProperties") : NULL;
		unsigned n = 0;
		int rc = ee ? ee(NULL, &n, NULL) : -1;
		printf("vulkan %d %u\n", rc, n);
	}
	void *cl = dlopen("libOpenCL.so.1", RTLD_NOW);
	if (!cl) {
		printf("opencl dlopen-error %s\n", dlerror());
	} else {
		cl_get_platforms gp = (cl_get_platforms)dlsym(cl, "clGetPlatformIDs");
		unsigned n = 0;
		int rc = gp ? gp(0, NULL, &n) : -1;
		printf("opencl %d %u\n", rc, n);
	}
	maps();
	return 0;
}
