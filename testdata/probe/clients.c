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
 * "clients vulkan" only creates a Vulkan instance and lists its devices.
 * "clients egl-render", on EGL's surfaceless platform
 * (EGL_MESA_platform_surfaceless), creates an OpenGL context with no config
 * and no surface, draws the clear colour (0.25, 0.5, 0.75, 1) into a 4x4
 * RGBA8 framebuffer object and reads one pixel back: "egl_init <ok>
 * <major>.<minor>", "gl_renderer <string>", "fbo_status <hex>", "pixel <r>
 * <g> <b> <a>".
 * "clients glx-render", on $DISPLAY, lets libglvnd's libGLX pick the vendor
 * the server names, creates a context on a 4x4 GLX pixmap and prints
 * "glx_vendor <client vendor string>" and "glx_renderer <GL_RENDERER>".
 * Every mode ends with "obj <name>" for every loaded object as the dynamic
 * loader names it (dl_iterate_phdr: the path it opened, links unresolved),
 * then the "map" lines.
 * Built against a Nix-like store, it is a Nix program bringing its own
 * libglvnd and Vulkan loader.
 * Symbols are looked up with dlsym, so no development package is needed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
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

static int obj(struct dl_phdr_info *info, size_t size, void *data) {
	(void)size;
	(void)data;
	if (info->dlpi_name && info->dlpi_name[0])
		printf("obj %s\n", info->dlpi_name);
	return 0;
}

static void maps(void) {
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096], last[4096] = "";
	dl_iterate_phdr(obj, NULL);
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

/* vulkan: create an instance through the Vulkan loader and list the
 * physical devices its drivers give. */
static void vulkan(void) {
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
}

typedef void *(*get_proc)(const char *);
typedef void *(*egl_get_platform_display)(unsigned, void *, const long *);
typedef unsigned (*egl_bind_api)(unsigned);
typedef void *(*egl_create_context)(void *, void *, void *, const int *);
typedef unsigned (*egl_make_current)(void *, void *, void *, void *);
typedef int (*egl_get_error)(void);
typedef const unsigned char *(*gl_get_string)(unsigned);
typedef void (*gl_gen)(int, unsigned *);
typedef void (*gl_bind)(unsigned, unsigned);
typedef void (*gl_storage)(unsigned, unsigned, int, int);
typedef void (*gl_fb_rb)(unsigned, unsigned, unsigned, unsigned);
typedef unsigned (*gl_check)(unsigned);
typedef void (*gl_clear_color)(float, float, float, float);
typedef void (*gl_clear)(unsigned);
typedef void (*gl_read)(int, int, int, int, unsigned, unsigned, void *);
typedef void (*gl_finish)(void);


/* egl_render: llvmpipe (or any EGL driver) draws a clear colour into a
 * framebuffer object on the surfaceless platform, read back. */
static void egl_render(void) {
	void *lib = dlopen("libEGL.so.1", RTLD_NOW);
	if (!lib) {
		printf("egl dlopen-error %s\n", dlerror());
		return;
	}
	get_proc gp = (get_proc)dlsym(lib, "eglGetProcAddress");
	egl_get_platform_display gpd = (egl_get_platform_display)dlsym(lib, "eglGetPlatformDisplay");
	egl_initialize in = (egl_initialize)dlsym(lib, "eglInitialize");
	egl_bind_api bind = (egl_bind_api)dlsym(lib, "eglBindAPI");
	egl_create_context cc = (egl_create_context)dlsym(lib, "eglCreateContext");
	egl_make_current mc = (egl_make_current)dlsym(lib, "eglMakeCurrent");
	egl_get_error ge = (egl_get_error)dlsym(lib, "eglGetError");
	if (!gp || !gpd || !in || !bind || !cc || !mc || !ge) {
		printf("egl missing-symbols\n");
		return;
	}
	void *dpy = gpd(0x31DD /* EGL_PLATFORM_SURFACELESS_MESA */, NULL, NULL);
	int maj = 0, min = 0;
	unsigned ok = dpy ? in(dpy, &maj, &min) : 0;
	printf("egl_init %u %d.%d\n", ok, maj, min);
	if (!ok) {
		printf("egl_error 0x%x\n", ge());
		return;
	}
	bind(0x30A2 /* EGL_OPENGL_API */);
	void *ctx = cc(dpy, NULL /* EGL_NO_CONFIG_KHR */, NULL, (const int[]){0x3038 /* EGL_NONE */});
	if (!ctx || !mc(dpy, NULL, NULL, ctx)) {
		printf("egl_context_error 0x%x\n", ge());
		return;
	}
	gl_get_string gs = (gl_get_string)gp("glGetString");
	gl_gen gen_fb = (gl_gen)gp("glGenFramebuffers");
	gl_bind bind_fb = (gl_bind)gp("glBindFramebuffer");
	gl_gen gen_rb = (gl_gen)gp("glGenRenderbuffers");
	gl_bind bind_rb = (gl_bind)gp("glBindRenderbuffer");
	gl_storage storage = (gl_storage)gp("glRenderbufferStorage");
	gl_fb_rb attach = (gl_fb_rb)gp("glFramebufferRenderbuffer");
	gl_check check = (gl_check)gp("glCheckFramebufferStatus");
	gl_clear_color ccol = (gl_clear_color)gp("glClearColor");
	gl_clear clr = (gl_clear)gp("glClear");
	gl_read rd = (gl_read)gp("glReadPixels");
	gl_finish fin = (gl_finish)gp("glFinish");
	if (!gs || !gen_fb || !bind_fb || !gen_rb || !bind_rb || !storage || !attach || !check || !ccol || !clr || !rd || !fin) {
		printf("gl missing-functions\n");
		return;
	}
	const unsigned char *r = gs(0x1F01 /* GL_RENDERER */);
	printf("gl_renderer %s\n", r ? (const char *)r : "(null)");
	unsigned fb = 0, rb = 0;
	gen_fb(1, &fb);
	bind_fb(0x8D40 /* GL_FRAMEBUFFER */, fb);
	gen_rb(1, &rb);
	bind_rb(0x8D41 /* GL_RENDERBUFFER */, rb);
	storage(0x8D41, 0x8058 /* GL_RGBA8 */, 4, 4);
	attach(0x8D40, 0x8CE0 /* GL_COLOR_ATTACHMENT0 */, 0x8D41, rb);
	printf("fbo_status 0x%x\n", check(0x8D40));
	ccol(0.25f, 0.5f, 0.75f, 1.0f);
	clr(0x4000 /* GL_COLOR_BUFFER_BIT */);
	fin();
	unsigned char px[4] = {0, 0, 0, 0};
	rd(1, 1, 1, 1, 0x1908 /* GL_RGBA */, 0x1401 /* GL_UNSIGNED_BYTE */, px);
	printf("pixel %u %u %u %u\n", px[0], px[1], px[2], px[3]);
}

typedef int (*x_default_screen)(void *);
typedef unsigned long (*x_root_window)(void *, int);
typedef unsigned long (*x_create_pixmap)(void *, unsigned long, unsigned, unsigned, unsigned);
typedef void *(*glx_choose_visual)(void *, int, int *);
typedef void *(*glx_create_context)(void *, void *, void *, int);
typedef unsigned long (*glx_create_pixmap)(void *, void *, unsigned long);
typedef int (*glx_make_current)(void *, unsigned long, void *);

/* glx_render: a GLX context on a pixmap of the vendor the X server names. */
static void glx_render(void) {
	void *x11 = dlopen("libX11.so.6", RTLD_NOW | RTLD_GLOBAL);
	void *lib = dlopen("libGLX.so.0", RTLD_NOW);
	if (!x11 || !lib) {
		printf("glx dlopen-error %s\n", dlerror());
		return;
	}
	x_open_display od = (x_open_display)dlsym(x11, "XOpenDisplay");
	x_default_screen ds = (x_default_screen)dlsym(x11, "XDefaultScreen");
	x_root_window rw = (x_root_window)dlsym(x11, "XRootWindow");
	x_create_pixmap cp = (x_create_pixmap)dlsym(x11, "XCreatePixmap");
	glx_choose_visual cv = (glx_choose_visual)dlsym(lib, "glXChooseVisual");
	glx_create_context cc = (glx_create_context)dlsym(lib, "glXCreateContext");
	glx_create_pixmap gp = (glx_create_pixmap)dlsym(lib, "glXCreateGLXPixmap");
	glx_make_current mc = (glx_make_current)dlsym(lib, "glXMakeCurrent");
	glx_client_string cs = (glx_client_string)dlsym(lib, "glXGetClientString");
	get_proc gpa = (get_proc)dlsym(lib, "glXGetProcAddressARB");
	void *dpy = od ? od(NULL) : NULL;
	if (!dpy || !ds || !rw || !cp || !cv || !cc || !gp || !mc || !cs || !gpa) {
		printf("glx no-display-or-symbols\n");
		return;
	}
	int scr = ds(dpy);
	int attrs[] = {4 /* GLX_RGBA */, 8 /* GLX_RED_SIZE */, 1, 0 /* None */};
	void *vi = cv(dpy, scr, attrs);
	if (!vi) {
		printf("glx no-visual\n");
		return;
	}
	unsigned depth = *(int *)((char *)vi + 20); /* XVisualInfo.depth */
	unsigned long pm = cp(dpy, rw(dpy, scr), 4, 4, depth);
	unsigned long gpm = gp(dpy, vi, pm);
	void *ctx = cc(dpy, vi, NULL, 1);
	printf("glx_vendor %s\n", cs(dpy, 1 /* GLX_VENDOR */));
	if (!ctx || !mc(dpy, gpm, ctx)) {
		printf("glx make-current-failed\n");
		return;
	}
	gl_get_string gs = (gl_get_string)gpa("glGetString");
	const unsigned char *r = gs ? gs(0x1F01) : NULL;
	printf("glx_renderer %s\n", r ? (const char *)r : "(null)");
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
	/* The single-purpose modes. */
	static const struct {
		const char *name;
		void (*run)(void);
	} modes[] = {{"glx", glx}, {"vdpau", vdpau}, {"vulkan", vulkan}, {"egl-render", egl_render}, {"glx-render", glx_render}};
	for (unsigned i = 0; argc > 1 && i < sizeof modes / sizeof modes[0]; i++) {
		if (strcmp(argv[1], modes[i].name) == 0) {
			modes[i].run();
			maps();
			return 0;
		}
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
	vulkan();
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
