package catalog

import (
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// This file is the driver catalogue: which file names belong to NVIDIA's
// userspace driver, what each is for, and which generic host libraries each
// one loads by name at run time. The list follows NVIDIA's own published
// lists (the container toolkit's per-capability library lists and the
// driver README's "Installed Components" chapter), checked against the real
// Debian driver packages and a real cloud host in catalog_test.go.

// API names a driver capability.
type API string

// The capabilities, in the catalogue's order.
const (
	APICUDA        API = "cuda"         // CUDA driver API, its JIT compilers and debugger
	APINVML        API = "nvml"         // management library (nvidia-smi, btop, DCGM)
	APIGLX         API = "glx"          // OpenGL through GLX (glvnd vendor library)
	APIEGL         API = "egl"          // EGL (glvnd vendor library)
	APIEGLPlatform API = "egl-platform" // EGL external platforms: Wayland, GBM, X11
	APIGLES        API = "gles"         // OpenGL ES vendor libraries
	APIVulkan      API = "vulkan"       // Vulkan extras beyond the ICD (which is libGLX_nvidia)
	APIOpenCL      API = "opencl"       // OpenCL ICD
	APIVideo       API = "video"        // NVENC, NVDEC, VDPAU, optical flow, frame capture
	APIOptiX       API = "optix"        // OptiX, NGX, ray-tracing core
	APIGBM         API = "gbm"          // the GBM backend
	APITegra       API = "tegra"        // Jetson (L4T) platform libraries
	APIWSL         API = "wsl"          // Windows Subsystem for Linux bridge libraries
	APICore        API = "core"         // internals shared by several APIs
	APIDRI         API = "dri"          // Mesa's DRI/Gallium drivers (GL and EGL through libGLX_mesa, libEGL_mesa)
	APIVA          API = "va"           // VA-API video drivers (Mesa's *_drv_video.so)
)

// APIs returns every API in the catalogue's order.
func APIs() []API {
	return []API{
		APICUDA, APINVML, APIGLX, APIEGL, APIEGLPlatform, APIGLES, APIVulkan,
		APIOpenCL, APIVideo, APIOptiX, APIGBM, APITegra, APIWSL, APICore,
		APIDRI, APIVA,
	}
}

// Kind says how a catalogued file is used.
type Kind int

// The kinds of catalogued files.
const (
	// KindDSO is a shared library exposed in the entry's lib/.
	KindDSO Kind = iota
	// KindData is a non-ELF data file that belongs beside the libraries in
	// lib/ (nvoptix.bin).
	KindData
	// KindGBM is the GBM backend, exposed as lib/gbm/<name>.so.
	KindGBM
	// KindVDPAU is a VDPAU driver, exposed in lib/vdpau/ (it is also a
	// DSO that lib/ may hold).
	KindVDPAU
)

// String returns the kind's lower-case name.
func (k Kind) String() string {
	switch k {
	case KindDSO:
		return "dso"
	case KindData:
		return "data"
	case KindGBM:
		return "gbm"
	case KindVDPAU:
		return "vdpau"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Entry describes one family of driver files: the files "libcuda.so",
// "libcuda.so.1" and "libcuda.so.535.261.03" are one family.
type Entry struct {
	// Name is the file's base name without its ".so*" suffix ("libcuda",
	// "libGLX_nvidia", "nvidia-drm_gbm"), or the whole file name for a
	// KindData entry ("nvoptix.bin").
	Name string
	// API is the capability the file serves.
	API API
	// Kind says where the file goes in an entry.
	Kind Kind
	// Dlopens lists, sorted, the sonames of non-driver libraries the file
	// dlopens by name for its main function (libGLX_nvidia's XCB
	// libraries, libnvidia-allocator's libdrm): the host's copies go to
	// deps/, and the file gets a patched copy whose DT_RUNPATH reaches
	// them. It can name dispatch libraries (IsDispatch) that the program
	// brings itself; callers drop those as they drop them from DT_NEEDED.
	Dlopens []string
	// Optional lists, sorted, the other non-driver sonames the file names
	// in its strings: loads for optional features (libcuda's libcrypto for
	// confidential computing, glcore's fontconfig for its on-screen
	// overlay, interop names). They do not make the file a patched copy,
	// so the large libraries stay symlinks to the host; such a feature
	// works when the program itself provides the library. Dlopens and
	// Optional together are exactly the names the tests find in the real
	// 535 and 580 files' strings, less DT_NEEDED, driver and glibc names.
	Optional []string
	// Components are the driver libraries (catalogue names) the file
	// dlopens by their versioned file name (libEGL_nvidia loads
	// libnvidia-eglcore.so.<version>): parts of the same driver, completed
	// from the host's search path like DT_NEEDED ones when -d lacks them.
	Components []string
	// Mesa marks Mesa's files (Intel, AMD, nouveau, software rendering):
	// a launch takes them with --mesa, or when the host has no NVIDIA
	// driver (see docs/DESIGN.md, "Mesa").
	Mesa bool
	// DRILoader marks Mesa's libraries that load DRI drivers from a
	// compiled-in directory (see mesaDRIDir).
	DRILoader bool
	// OwnVersion marks a library versioned on its own (the EGL external
	// platforms: libnvidia-egl-wayland.so.1.1.10): its file name does not
	// carry the driver version.
	OwnVersion bool
	// Doc is a short human description.
	Doc string
}

// catalog is the table, sorted by API (in APIs order), then by Name.
// Dlopens are what the tests found in the real 535 (Debian, amd64 and
// arm64) and 580 (a cloud H200 host) files; entries the tests cannot read
// (older, Jetson and WSL libraries) record none rather than guess.
var nvidiaCatalog = []Entry{
	{Name: "libcuda", API: APICUDA, Optional: []string{"libEGL.so.1", "libGL.so.1", "libcrypto.so.1.1", "libcrypto.so.10", "libcrypto.so.3"}, Doc: "CUDA driver API (libcrypto: 580's confidential-computing path, alongside libnvidia-pkcs11*)"},
	{Name: "libcudadebugger", API: APICUDA, Optional: []string{"libEGL.so.1", "libGL.so.1", "libOpenCL.so.1", "libVulkan_EGL.so.1", "libX11.so.6"}, Doc: "CUDA debugger backend (cuda-gdb); the graphics names are for interop debugging, libVulkan_EGL is no known library"},
	{Name: "libnvidia-fatbinaryloader", API: APICUDA, Doc: "fatbinary loader used by libcuda (drivers up to 440)"},
	{Name: "libnvidia-nvvm", API: APICUDA, Doc: "NVVM compiler (LLVM IR to PTX) for JIT linking"},
	{Name: "libnvidia-nvvm70", API: APICUDA, Doc: "NVVM 7.0 compiler kept for older CUDA toolkits (570+)"},
	{Name: "libnvidia-ptxjitcompiler", API: APICUDA, Doc: "PTX to SASS JIT compiler, dlopened by libcuda by soname"},
	{Name: "libnvidia-tileiras", API: APICUDA, Doc: "JIT compiler for Tile IR (newest drivers)"},
	{Name: "libnvidia-ml", API: APINVML, Doc: "NVIDIA Management Library (NVML)"},
	{Name: "libnvidia-nscq", API: APINVML, Doc: "NVSwitch and GPU topology queries (data-centre systems)"},
	{Name: "libGLX_nvidia", API: APIGLX, Dlopens: []string{"libEGL.so.1", "libX11-xcb.so.1", "libxcb-dri3.so.0", "libxcb-glx.so.0", "libxcb-present.so.0", "libxcb-randr.so.0", "libxcb-sync.so.1", "libxcb-xfixes.so.0", "libxcb.so.1"}, Doc: "OpenGL/GLX vendor library for glvnd; also the Vulkan ICD"},
	{Name: "libEGL_nvidia", API: APIEGL, Components: []string{"libnvidia-eglcore"}, Doc: "EGL vendor library for glvnd"},
	{Name: "libnvidia-egl-gbm", API: APIEGLPlatform, OwnVersion: true, Doc: "EGL external platform for GBM"},
	{Name: "libnvidia-egl-wayland", API: APIEGLPlatform, OwnVersion: true, Doc: "EGL external platform for Wayland (egl-wayland)"},
	{Name: "libnvidia-egl-wayland2", API: APIEGLPlatform, OwnVersion: true, Doc: "EGL external platform for Wayland, second generation (egl-wayland2)"},
	{Name: "libnvidia-egl-xcb", API: APIEGLPlatform, OwnVersion: true, Doc: "EGL external platform for X11 through XCB"},
	{Name: "libnvidia-egl-xlib", API: APIEGLPlatform, OwnVersion: true, Doc: "EGL external platform for X11 through Xlib"},
	{Name: "libGLESv1_CM_nvidia", API: APIGLES, Components: []string{"libnvidia-eglcore"}, Doc: "OpenGL ES 1 vendor library for glvnd"},
	{Name: "libGLESv2_nvidia", API: APIGLES, Components: []string{"libnvidia-eglcore"}, Doc: "OpenGL ES 2/3 vendor library for glvnd"},
	{Name: "libnvidia-cbl", API: APIVulkan, Doc: "VK_NV_ray_tracing support (older drivers)"},
	{Name: "libnvidia-present", API: APIVulkan, Doc: "Vulkan implicit layer VK_LAYER_NV_present (frame pacing, 575+)"},
	{Name: "libnvidia-vksc-core", API: APIVulkan, Doc: "Vulkan SC driver core"},
	{Name: "libnvidia-vulkan-producer", API: APIVulkan, Doc: "Vulkan swapchain producer for Wayland (drivers up to 535)"},
	{Name: "libnvidia-compiler", API: APIOpenCL, Doc: "OpenCL compiler (drivers up to 450)"},
	{Name: "libnvidia-kspirvcompiler", API: APIOpenCL, Doc: "SPIR-V compiler named by libnvidia-opencl"},
	{Name: "libnvidia-opencl", API: APIOpenCL, Components: []string{"libnvidia-nvvm"}, Optional: []string{"libEGL.so.1", "libGL.so.1", "libcrypto.so.1.1", "libcrypto.so.10", "libcrypto.so.3"}, Doc: "OpenCL ICD (listed in nvidia.icd)"},
	{Name: "libnvcuvid", API: APIVideo, Optional: []string{"libEGL.so.1", "libGL.so.1"}, Doc: "NVDEC video decoder (NVCUVID)"},
	{Name: "libnvidia-encode", API: APIVideo, Doc: "NVENC video encoder"},
	{Name: "libnvidia-fbc", API: APIVideo, Dlopens: []string{"libEGL.so.1", "libGLX.so.0", "libX11-xcb.so.1", "libXrandr.so.2", "libdbus-1.so.3", "libdrm.so.2", "libvulkan.so.1", "libxcb-dri3.so.0", "libxcb-glx.so.0", "libxcb-randr.so.0", "libxcb.so.1"}, Doc: "frame buffer capture (NvFBC)"},
	{Name: "libnvidia-ifr", API: APIVideo, Doc: "OpenGL frame capture (NvIFR, drivers up to 470)"},
	{Name: "libnvidia-opticalflow", API: APIVideo, Dlopens: []string{"libvulkan.so.1"}, Doc: "optical flow SDK"},
	{Name: "libvdpau_nvidia", API: APIVideo, Kind: KindVDPAU, Dlopens: []string{"libX11-xcb.so.1", "libdrm.so.2", "libxcb-dri3.so.0", "libxcb-glx.so.0", "libxcb-present.so.0", "libxcb-randr.so.0", "libxcb-sync.so.1", "libxcb.so.1"}, Doc: "VDPAU driver, loaded by libvdpau from its vdpau/ directory"},
	{Name: "libnvidia-ngx", API: APIOptiX, Doc: "NGX (DLSS and other AI features)"},
	{Name: "libnvidia-rtcore", API: APIOptiX, Doc: "ray-tracing core used by OptiX and Vulkan/OpenGL ray tracing"},
	{Name: "libnvoptix", API: APIOptiX, Components: []string{"libnvidia-rtcore"}, Doc: "OptiX ray-tracing engine"},
	{Name: "nvoptix.bin", API: APIOptiX, Kind: KindData, Doc: "OptiX data file read by libnvoptix (beside it, or /usr/share/nvidia)"},
	{Name: "nvidia-drm_gbm", API: APIGBM, Kind: KindGBM, Doc: "GBM backend, a link to libnvidia-allocator (whose Dlopens apply)"},
	{Name: "libnvcucompat", API: APITegra, Doc: "Jetson CUDA compatibility shim"},
	{Name: "libnvdc", API: APITegra, Doc: "Jetson display controller"},
	{Name: "libnvdla_runtime", API: APITegra, Doc: "Jetson deep learning accelerator runtime"},
	{Name: "libnvidia-rmapi-tegra", API: APITegra, Doc: "Jetson resource manager API (OpenRM Jetson releases)"},
	{Name: "libnvimp", API: APITegra, Doc: "Jetson image processing"},
	{Name: "libnvos", API: APITegra, Doc: "Jetson OS abstraction, needed by the CUDA and graphics libraries"},
	{Name: "libnvrm", API: APITegra, Doc: "Jetson resource manager (older L4T)"},
	{Name: "libnvrm_chip", API: APITegra, Doc: "Jetson resource manager: chip identification"},
	{Name: "libnvrm_gpu", API: APITegra, Doc: "Jetson resource manager: GPU (libcuda's gateway to nvgpu)"},
	{Name: "libnvrm_graphics", API: APITegra, Doc: "Jetson resource manager: graphics (older L4T)"},
	{Name: "libnvrm_host1x", API: APITegra, Doc: "Jetson resource manager: host1x"},
	{Name: "libnvrm_mem", API: APITegra, Doc: "Jetson resource manager: memory"},
	{Name: "libnvrm_stream", API: APITegra, Doc: "Jetson resource manager: streams"},
	{Name: "libnvrm_surface", API: APITegra, Doc: "Jetson resource manager: surfaces"},
	{Name: "libnvrm_sync", API: APITegra, Doc: "Jetson resource manager: sync points"},
	{Name: "libnvscibuf", API: APITegra, Doc: "Jetson NvSci buffers"},
	{Name: "libnvscicommon", API: APITegra, Doc: "Jetson NvSci common code"},
	{Name: "libnvsciipc", API: APITegra, Doc: "Jetson NvSci inter-process communication"},
	{Name: "libnvscisync", API: APITegra, Doc: "Jetson NvSci synchronisation"},
	{Name: "libnvsocsys", API: APITegra, Doc: "Jetson SoC system information"},
	{Name: "libnvtegrahv", API: APITegra, Doc: "Jetson hypervisor interface"},
	{Name: "libnvwsi", API: APITegra, Doc: "Jetson window system interface, named by libnvidia-glsi"},
	{Name: "libd3d12", API: APIWSL, Doc: "WSL Direct3D 12 runtime"},
	{Name: "libd3d12core", API: APIWSL, Doc: "WSL Direct3D 12 core"},
	{Name: "libdxcore", API: APIWSL, Doc: "WSL DirectX core: the bridge to the Windows driver"},
	{Name: "libnvdxdlkernels", API: APIWSL, Doc: "WSL DirectML kernels from the Windows driver"},
	{Name: "libnvdxgdmal", API: APIWSL, Doc: "WSL NVIDIA dxg memory allocation library"},
	{Name: "libnvwgf2umx", API: APIWSL, Doc: "WSL NVIDIA Direct3D user-mode driver"},
	{Name: "libnvidia-allocator", API: APICore, Dlopens: []string{"libdrm.so.2"}, Doc: "buffer allocator; also the GBM backend"},
	{Name: "libnvidia-api", API: APICore, Doc: "NVAPI for Wine/Proton (dxvk-nvapi)"},
	{Name: "libnvidia-cfg", API: APICore, Dlopens: []string{"libdrm.so.2"}, Doc: "GPU configuration queries (nvidia-xconfig, nvidia-settings)"},
	{Name: "libnvidia-eglcore", API: APICore, Optional: []string{"libOpenCL.so.1", "libdbus-1.so.3", "libdrm.so.2", "libfontconfig.so.1", "libfreetype.so.6", "libwayland-client.so.0"}, Doc: "EGL and OpenGL ES core"},
	{Name: "libnvidia-glcore", API: APICore, Optional: []string{"libOpenCL.so.1", "libdbus-1.so.3", "libdrm.so.2", "libfontconfig.so.1", "libfreetype.so.6", "libwayland-client.so.0"}, Doc: "OpenGL core (its libKF6KIOCore.so.6 string is an application-profile match, not a load)"},
	{Name: "libnvidia-glsi", API: APICore, Dlopens: []string{"libX11-xcb.so.1", "libX11.so.6", "libXext.so.6", "libdrm.so.2", "libxcb-dri3.so.0", "libxcb-glx.so.0", "libxcb-present.so.0", "libxcb-randr.so.0", "libxcb-sync.so.1", "libxcb-xfixes.so.0", "libxcb.so.1"}, Doc: "OpenGL system interaction (window systems)"},
	{Name: "libnvidia-glvkspirv", API: APICore, Doc: "SPIR-V compiler for OpenGL and Vulkan"},
	{Name: "libnvidia-gpucomp", API: APICore, Doc: "GPU shader compiler shared by GL, Vulkan, CUDA and ray tracing (545+)"},
	{Name: "libnvidia-pkcs11", API: APICore, Doc: "PKCS#11 for confidential computing (OpenSSL 1.1)"},
	{Name: "libnvidia-pkcs11-openssl3", API: APICore, Doc: "PKCS#11 for confidential computing (OpenSSL 3)"},
	{Name: "libnvidia-sandboxutils", API: APICore, Doc: "helpers for sandboxed (Flatpak) driver use (560+)"},
	{Name: "libnvidia-tls", API: APICore, Doc: "thread-local storage for the GL libraries"},
	{Name: "libnvidia-wayland-client", API: APICore, Doc: "the driver's Wayland client code (560+)"},
}

// mesaCatalog is Mesa's part of the catalogue: the glvnd vendor libraries,
// the Vulkan ICDs and implicit layers, the VDPAU drivers. The DRI and VA
// drivers and newer Mesa's libgallium-<version> are matched by their
// names' shape (mesaPattern): their list grows with every GPU Mesa learns.
var mesaCatalog = []Entry{
	{Name: "libEGL_mesa", API: APIEGL, Mesa: true, DRILoader: true, Doc: "Mesa's EGL vendor library for glvnd (50_mesa.json)"},
	{Name: "libGLX_mesa", API: APIGLX, Mesa: true, DRILoader: true, Doc: "Mesa's GLX vendor library for glvnd"},
	{Name: "libVkLayer_MESA_device_select", API: APIVulkan, Mesa: true, Doc: "Mesa's implicit Vulkan layer choosing the default GPU"},
	{Name: "libvdpau_d3d12", API: APIVideo, Kind: KindVDPAU, Mesa: true, Doc: "Mesa's VDPAU driver for WSL's d3d12"},
	{Name: "libvdpau_nouveau", API: APIVideo, Kind: KindVDPAU, Mesa: true, Doc: "Mesa's VDPAU driver for nouveau"},
	{Name: "libvdpau_r600", API: APIVideo, Kind: KindVDPAU, Mesa: true, Doc: "Mesa's VDPAU driver for older AMD GPUs"},
	{Name: "libvdpau_radeonsi", API: APIVideo, Kind: KindVDPAU, Mesa: true, Doc: "Mesa's VDPAU driver for AMD GPUs"},
	{Name: "libvdpau_virtio_gpu", API: APIVideo, Kind: KindVDPAU, Mesa: true, Doc: "Mesa's VDPAU driver for virtio-gpu"},
}

// mesaPattern classifies Mesa's files by the shape of their name: DRI and
// Gallium drivers ("iris_dri.so", "libgallium-24.2.8-1.so"), VA-API drivers
// ("radeonsi_drv_video.so") and Vulkan ICDs ("libvulkan_lvp.so"; the
// loader is libvulkan.so.1, with no underscore).
func mesaPattern(base string) (Entry, bool) {
	stem, _, ok := splitSO(base)
	if !ok {
		return Entry{}, false
	}
	switch {
	case strings.HasSuffix(stem, "_dri") && len(stem) > len("_dri"):
		return Entry{Name: stem, API: APIDRI, Mesa: true, Doc: "Mesa DRI driver, loaded from LIBGL_DRIVERS_PATH"}, true
	case strings.HasPrefix(stem, "libgallium-"):
		return Entry{Name: stem, API: APIDRI, Mesa: true, Doc: "Mesa's Gallium megadriver, which the DRI drivers load"}, true
	case strings.HasSuffix(stem, "_drv_video") && len(stem) > len("_drv_video"):
		return Entry{Name: stem, API: APIVA, Mesa: true, Doc: "Mesa VA-API driver, loaded from LIBVA_DRIVERS_PATH"}, true
	case strings.HasPrefix(stem, "libvulkan_") && len(stem) > len("libvulkan_"):
		return Entry{Name: stem, API: APIVulkan, Mesa: true, Doc: "Mesa Vulkan ICD"}, true
	}
	return Entry{}, false
}

// catalogTable is the whole catalogue (NVIDIA's and Mesa's entries) in
// its order, with an index by Name.
type catalogTable struct {
	entries []Entry
	byName  map[string]int
}

// table builds the catalogue on first use: a hot launch never classifies
// a file, so it does not pay for sorting and indexing it before main.
var table = sync.OnceValue(func() *catalogTable {
	// Mesa's entries join the table in its order: by API, then by Name.
	order := map[API]int{}
	for i, a := range APIs() {
		order[a] = i
	}
	entries := append(append([]Entry(nil), nvidiaCatalog...), mesaCatalog...)
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if order[a.API] != order[b.API] {
			return order[a.API] < order[b.API]
		}
		return a.Name < b.Name
	})
	m := make(map[string]int, len(entries))
	for i, e := range entries {
		m[e.Name] = i
	}
	return &catalogTable{entries, m}
})

// Catalog returns the whole table, sorted by API (in the order of APIs),
// then by Name. The slices are copies the caller may keep.
func Catalog() []Entry {
	catalog := table().entries
	out := make([]Entry, len(catalog))
	for i, e := range catalog {
		e.Dlopens = append([]string(nil), e.Dlopens...)
		e.Optional = append([]string(nil), e.Optional...)
		out[i] = e
	}
	return out
}

// Classify reports the catalogue entry of a file name as found in a driver
// directory (a directory part is ignored). "libcuda.so", "libcuda.so.1",
// "libcuda.so.1.1" (WSL, Jetson) and "libcuda.so.535.261.03" are all
// libcuda; "libnvrm_gpu.so" is Jetson's; "nvoptix.bin" is the OptiX data
// file. A name whose ".so" is followed by anything but numeric components is
// not a driver file, nor is anything the catalogue does not list: the glvnd
// dispatch libraries (libGL, libEGL), the loaders (libvulkan, libOpenCL),
// X server modules (nvidia_drv.so, libglxserver_nvidia) and nvidia-settings'
// GTK libraries are not driver files in this sense.
func Classify(name string) (Entry, bool) {
	base := path.Base(name)
	t := table()
	if i, ok := t.byName[base]; ok && t.entries[i].Kind == KindData {
		return t.entries[i], true
	}
	stem, _, ok := splitSO(base)
	if !ok {
		return Entry{}, false
	}
	i, ok := t.byName[stem]
	if !ok {
		return mesaPattern(base)
	}
	if t.entries[i].Kind == KindData {
		return Entry{}, false
	}
	return t.entries[i], true
}

// splitSO splits a shared-object file name "stem.so[.N...]" into its stem
// and its version ("" for a bare ".so"). ok is false when the name has no
// ".so" or something other than dot-separated numbers follows it.
func splitSO(base string) (stem, version string, ok bool) {
	i := strings.Index(base, ".so")
	for i >= 0 {
		rest := base[i+3:]
		if rest == "" {
			return base[:i], "", i > 0
		}
		if rest[0] == '.' {
			v := rest[1:]
			if !numericDotted(v) {
				return "", "", false
			}
			return base[:i], v, i > 0
		}
		j := strings.Index(rest, ".so")
		if j < 0 {
			break
		}
		i += 3 + j
	}
	return "", "", false
}

// numericDotted reports whether s is one or more dot-separated runs of
// decimal digits.
func numericDotted(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}

// DriverVersion returns the NVIDIA driver version encoded in a versioned
// file name: "libcuda.so.535.261.03" gives "535.261.03",
// "libnvidia-glcore.so.470.256.02" gives "470.256.02". A driver version has
// two or three numeric components and a major of at least three digits (every
// branch since 2008), so soname links ("libcuda.so.1", "libnvidia-nvvm.so.4"),
// WSL's and Jetson's "libcuda.so.1.1", unversioned Jetson files
// ("libnvrm_gpu.so") and the separately versioned EGL external platforms
// ("libnvidia-egl-wayland.so.1.1.10") give "". The name need not be in the
// catalogue (libnvoptix names "libnvidia-rtcore-sdk.so.535.261.03"), except
// that an OwnVersion entry always gives "".
func DriverVersion(name string) string {
	base := path.Base(name)
	_, v, ok := splitSO(base)
	if !ok || v == "" {
		return ""
	}
	if e, ok := Classify(base); ok && e.OwnVersion {
		return ""
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 || len(parts[0]) < 3 || parts[0][0] == '0' {
		return ""
	}
	return v
}

// glibcStems are the library stems of the glibc family ("libc" for
// libc.so.6 and libc-2.31.so). libcrypt is included: on current
// distributions it is libxcrypt, not glibc, but older ones (CentOS 7,
// Ubuntu 18.04) ship glibc's own, no driver file needs it, and a program
// that does brings its own; so it never enters a cache. libnsl covers both
// glibc's libnsl.so.1 and libnsl2's libnsl.so.2 for the same reason.
var glibcStems = map[string]bool{
	"libc": true, "libm": true, "libdl": true, "libpthread": true, "librt": true,
	"libresolv": true, "libutil": true, "libanl": true, "libnsl": true,
	"libBrokenLocale": true, "libmvec": true, "libc_malloc_debug": true,
	"libthread_db": true, "libmemusage": true, "libpcprofile": true,
	"libSegFault": true, "libcrypt": true, "libcidn": true,
	"ld": true, "ld64": true,
}

// IsGlibcFamily reports whether a soname or file name (a directory part is
// ignored) belongs to glibc: the dynamic loader (ld-linux*.so.*, ld64.so.*,
// ld.so.1, ld-2.31.so), libc, libm, libdl, libpthread, librt, libresolv,
// libutil, libanl, libnsl, libBrokenLocale, libmvec, libc_malloc_debug,
// libthread_db, libmemusage, libpcprofile, libSegFault, libcidn, libcrypt,
// and every NSS module (libnss_*), in both the soname form ("libm.so.6")
// and the old file-name form ("libm-2.31.so"). None of these is ever taken
// from the host: a host libc under the program's loader breaks it.
func IsGlibcFamily(name string) bool {
	stem := libStem(path.Base(name))
	if stem == "" {
		return false
	}
	if strings.HasPrefix(stem, "ld-linux") || strings.HasPrefix(stem, "libnss_") {
		return true
	}
	return glibcStems[stem]
}

// libStem returns the part of a library file name before ".so", with a
// "-<version>" suffix (glibc's old libm-2.31.so form) removed; "" when the
// name has no ".so" at a component boundary.
func libStem(base string) string {
	i := strings.Index(base, ".so")
	for i >= 0 && !(i+3 == len(base) || base[i+3] == '.') {
		j := strings.Index(base[i+3:], ".so")
		if j < 0 {
			return ""
		}
		i += 3 + j
	}
	if i <= 0 {
		return ""
	}
	stem := base[:i]
	if k := strings.LastIndexByte(stem, '-'); k > 0 && numericDotted(stem[k+1:]) {
		stem = stem[:k]
	}
	return stem
}

// dispatchStems are the glvnd dispatch libraries and the API loaders.
var dispatchStems = map[string]bool{
	"libGL": true, "libEGL": true, "libGLX": true, "libGLdispatch": true,
	"libOpenGL": true, "libGLESv1_CM": true, "libGLESv2": true,
	"libvulkan": true, "libOpenCL": true,
}

// IsDispatch reports whether a soname or file name is a dispatch library or
// loader that the program brings itself and nixglhost never takes from the
// host: glvnd's libGL, libEGL, libGLX, libGLdispatch, libOpenGL,
// libGLESv1_CM and libGLESv2 (the _nvidia vendor libraries are the driver),
// the Vulkan loader libvulkan and the OpenCL ICD loader libOpenCL. libcuda is
// the driver itself, not a dispatcher. libgbm is not either: it is the
// generic host library the GBM backend and the EGL GBM platform work with,
// so (as DESIGN.md lists it) it may go to deps/ like libdrm or libX11.
func IsDispatch(name string) bool {
	return dispatchStems[libStem(path.Base(name))]
}

// DataFile describes a kind of vendor data file (JSON or ICD) that an entry
// carries.
type DataFile struct {
	// API is the capability the file configures.
	API API
	// Dirs are the directories (inside the driver root) where hosts keep the
	// file, in the order the consuming loader searches them: the
	// administrator's /etc before the packages' /usr/share.
	Dirs []string
	// Patterns are path.Match globs on the file's base name.
	Patterns []string
	// Dest is the entry directory the file goes to.
	Dest string
}

// Matches reports whether base (a file's base name) matches one of the
// patterns.
func (d DataFile) Matches(base string) bool {
	for _, p := range d.Patterns {
		if ok, _ := path.Match(p, base); ok {
			return true
		}
	}
	return false
}

// dataFiles is the vendor data table, in API order.
var dataFiles = []DataFile{
	{API: APIEGL, Dirs: []string{"/etc/glvnd/egl_vendor.d", "/usr/local/share/glvnd/egl_vendor.d", "/usr/share/glvnd/egl_vendor.d"}, Patterns: []string{"*nvidia*.json", "*mesa*.json"}, Dest: "share/glvnd/egl_vendor.d"},
	{API: APIEGLPlatform, Dirs: []string{"/etc/egl/egl_external_platform.d", "/usr/local/share/egl/egl_external_platform.d", "/usr/share/egl/egl_external_platform.d"}, Patterns: []string{"*nvidia*.json"}, Dest: "share/egl/egl_external_platform.d"},
	{API: APIVulkan, Dirs: []string{"/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d", "/usr/share/vulkan/icd.d"}, Patterns: []string{"nvidia_icd.json", "nvidia_icd.*.json", "nvidia.json", "*_icd.*.json"}, Dest: "share/vulkan/icd.d"},
	{API: APIVulkan, Dirs: []string{"/etc/vulkan/implicit_layer.d", "/usr/local/share/vulkan/implicit_layer.d", "/usr/share/vulkan/implicit_layer.d"}, Patterns: []string{"nvidia_layers.json", "nvidia_layers.*.json", "VkLayer_MESA_device_select.json"}, Dest: "share/vulkan/implicit_layer.d"},
	{API: APIOpenCL, Dirs: []string{"/etc/OpenCL/vendors"}, Patterns: []string{"nvidia.icd", "nvidia*.icd"}, Dest: "etc/OpenCL/vendors"},
}

// DataFiles returns the vendor data files an entry can carry: the EGL
// vendor JSON, the EGL external platform JSONs, the Vulkan ICD and implicit
// layer JSONs and the OpenCL ICD. Directories relative to a driver
// directory (a cloud image's /usr/local/nvidia/share) are the caller's to
// add. Vulkan SC's ICD (vulkansc/icd.d) is not carried.
func DataFiles() []DataFile {
	out := make([]DataFile, len(dataFiles))
	for i, d := range dataFiles {
		d.Dirs = append([]string(nil), d.Dirs...)
		d.Patterns = append([]string(nil), d.Patterns...)
		out[i] = d
	}
	return out
}
