/*
 * clients: drive the real dispatch libraries and loaders a program brings
 * (libglvnd's libEGL, the Vulkan loader, ocl-icd) far enough that they load
 * their vendor drivers, then report which driver files got mapped.
 *
 *     cc -o clients clients.c -ldl
 *
 * Prints "egl <status>" (and "egl_vendor <name>" once initialized),
 * "vulkan <rc> <extension count>", "vkCreateInstance <rc>",
 * "vkEnumeratePhysicalDevices <rc> <n>" and "vulkan_device <name>" for each,
 * "opencl <rc> <platform count>", then "map <path>" for every mapped file
 * whose path contains "nvidia".
 * "clients glx" instead opens the X display ($DISPLAY) and asks libglvnd's
 * libGLX for the client vendor string ("glx vendor <string>"), which loads
 * the GLX vendor library.
 * "clients vdpau" opens the X display and asks libvdpau for a device
 * (vdp_device_create_x11), which loads the driver libvdpau_$VDPAU_DRIVER.so.1
 * from $VDPAU_DRIVER_PATH ("vdpau <status>": without a GPU the driver
 * refuses, once loaded).
 * Symbols are looked up with dlsym, so no development package is needed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef const char *(*egl_query_string)(void *, int);
typedef void *(*x_open_display)(const char *);
typedef const char *(*glx_client_string)(void *, int);
typedef void *(*egl_get_display)(void *);
typedef unsigned (*egl_initialize)(void *, int *, int *);
typedef void *(*vk_get_proc)(void *, const char *);
typedef int (*vk_enum_ext)(const char *, unsigned *, void *);
typedef int (*cl_get_platforms)(unsigned, void *, unsigned *);
typedef int (*vk_create_instance)(const void *, const void *, void **);
typedef int (*vk_enum_devices)(void *, unsigned *, void **);
typedef void (*vk_device_props)(void *, void *);

/* VkInstanceCreateInfo, declared here so no Vulkan headers are needed. */
struct vk_instance_create_info {
	int sType; /* VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO = 1 */
	const void *pNext;
	unsigned flags;
	const void *pApplicationInfo;
	unsigned enabledLayerCount;
	const char *const *ppEnabledLayerNames;
	unsigned enabledExtensionCount;
	const char *const *ppEnabledExtensionNames;
};

#define GLX_VENDOR 1
#define EGL_EXTENSIONS 0x3055
#define EGL_VENDOR 0x3053

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

/* glx: with an X display, ask libglvnd's libGLX for the client vendor
 * string, which makes it load the vendor library that
 * __GLX_VENDOR_LIBRARY_NAME names. */
static void glx(void) {
	void *x11 = dlopen("libX11.so.6", RTLD_NOW | RTLD_GLOBAL);
	void *glx = dlopen("libGLX.so.0", RTLD_NOW);
	if (!x11 || !glx) {
		printf("glx dlopen-error %s\n", dlerror());
		return;
	}
	x_open_display od = (x_open_display)dlsym(x11, "XOpenDisplay");
	glx_client_string cs = (glx_client_string)dlsym(glx, "glXGetClientString");
	void *dpy = od ? od(NULL) : NULL;
	if (!dpy) {
		printf("glx no-display\n");
		return;
	}
	const char *v = cs ? cs(dpy, GLX_VENDOR) : NULL;
	printf("glx vendor %s\n", v ? v : "(null)");
}

typedef int (*vdp_create_x11)(void *, int, unsigned *, void **);

/* vdpau: ask libvdpau for a device on the X display, which loads the
 * driver VDPAU_DRIVER names from VDPAU_DRIVER_PATH. */
static void vdpau(void) {
	void *x11 = dlopen("libX11.so.6", RTLD_NOW | RTLD_GLOBAL);
	void *v = dlopen("libvdpau.so.1", RTLD_NOW);
	if (!x11 || !v) {
		printf("vdpau dlopen-error %s\n", dlerror());
		return;
	}
	x_open_display od = (x_open_display)dlsym(x11, "XOpenDisplay");
	vdp_create_x11 cr = (vdp_create_x11)dlsym(v, "vdp_device_create_x11");
	void *dpy = od ? od(NULL) : NULL;
	if (!dpy || !cr) {
		printf("vdpau no-display\n");
		return;
	}
	unsigned dev = 0;
	void *gpa = NULL;
	printf("vdpau %d\n", cr(dpy, 0, &dev, &gpa));
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && strcmp(argv[1], "vdpau") == 0) {
		vdpau();
		maps();
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "glx") == 0) {
		glx();
		maps();
		return 0;
	}
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
		if (ok && qs) {
			const char *v = qs(d, EGL_VENDOR);
			printf("egl_vendor %s\n", v ? v : "(null)");
		}
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
		vk_create_instance ci = gp ? (vk_create_instance)gp(NULL, "vkCreateInstance") : NULL;
		struct vk_instance_create_info info = {1, NULL, 0, NULL, 0, NULL, 0, NULL};
		void *inst = NULL;
		int crc = ci ? ci(&info, NULL, &inst) : -1;
		printf("vkCreateInstance %d\n", crc);
		if (crc == 0) {
			vk_enum_devices ed = (vk_enum_devices)gp(inst, "vkEnumeratePhysicalDevices");
			vk_device_props dp = (vk_device_props)gp(inst, "vkGetPhysicalDeviceProperties");
			void *devs[8];
			unsigned nd = 8;
			int erc = ed ? ed(inst, &nd, devs) : -1;
			printf("vkEnumeratePhysicalDevices %d %u\n", erc, erc == 0 || erc == 5 ? nd : 0);
			for (unsigned i = 0; dp && (erc == 0 || erc == 5) && i < nd; i++) {
				/* VkPhysicalDeviceProperties: four uint32, an enum, then
				 * char deviceName[256]. */
				static unsigned char props[1024];
				dp(devs[i], props);
				printf("vulkan_device %s\n", (const char *)props + 20);
			}
		}
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
