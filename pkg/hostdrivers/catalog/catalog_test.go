package catalog

import (
	"bufio"
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nixglhost/nixglhost/internal/fixtures"
)

func TestCatalogTable(t *testing.T) {
	order := map[API]int{}
	for i, a := range APIs() {
		order[a] = i
	}
	cat := Catalog()
	seenAPI := map[API]bool{}
	for i, e := range cat {
		if _, ok := order[e.API]; !ok {
			t.Errorf("%s: API %q is not in APIs()", e.Name, e.API)
		}
		seenAPI[e.API] = true
		if e.Doc == "" {
			t.Errorf("%s: no Doc", e.Name)
		}
		if i > 0 {
			p := cat[i-1]
			if order[p.API] > order[e.API] || (p.API == e.API && p.Name >= e.Name) {
				t.Errorf("table out of order or duplicated at %s (after %s)", e.Name, p.Name)
			}
		}
		if !slices.IsSorted(e.Dlopens) || len(slices.Compact(slices.Clone(e.Dlopens))) != len(e.Dlopens) {
			t.Errorf("%s: Dlopens not sorted and unique: %q", e.Name, e.Dlopens)
		}
		if !slices.IsSorted(e.Optional) || len(slices.Compact(slices.Clone(e.Optional))) != len(e.Optional) {
			t.Errorf("%s: Optional not sorted and unique: %q", e.Name, e.Optional)
		}
		for _, d := range e.Optional {
			if slices.Contains(e.Dlopens, d) {
				t.Errorf("%s: %s is in both Dlopens and Optional", e.Name, d)
			}
		}
		for _, d := range append(slices.Clone(e.Dlopens), e.Optional...) {
			if _, ok := Classify(d); ok {
				t.Errorf("%s: Dlopens names the driver's own %s", e.Name, d)
			}
			if IsGlibcFamily(d) {
				t.Errorf("%s: Dlopens names glibc's %s", e.Name, d)
			}
			if _, v, ok := splitSO(d); !ok || v == "" || !strings.HasPrefix(d, "lib") {
				t.Errorf("%s: Dlopens entry %q is not a soname", e.Name, d)
			}
		}
		switch {
		case e.Kind == KindData:
			if strings.Contains(e.Name, ".so") {
				t.Errorf("%s: a data entry with a library name", e.Name)
			}
		default:
			got, ok := Classify(e.Name + ".so")
			if !ok || got.Name != e.Name {
				t.Errorf("Classify(%s.so) = %v, %v", e.Name, got.Name, ok)
			}
			if IsDispatch(e.Name+".so") || IsGlibcFamily(e.Name+".so") {
				t.Errorf("%s: also dispatch or glibc", e.Name)
			}
		}
	}
	for _, a := range APIs() {
		// Mesa's DRI and VA drivers are matched by their names' shape.
		if !seenAPI[a] && a != APIDRI && a != APIVA {
			t.Errorf("no entry for API %s", a)
		}
	}
	// Catalog hands out copies.
	cat[0].Optional = append(cat[0].Optional[:0], "libmangled.so.1")
	if Catalog()[0].Optional[0] == "libmangled.so.1" {
		t.Error("Catalog shares its slices with the caller")
	}
}

func TestCatalogClassify(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string // entry name; "" for not a driver file
		api  API
		kind Kind
	}{
		{"cuda bare", "libcuda.so", "libcuda", APICUDA, KindDSO},
		{"cuda soname", "libcuda.so.1", "libcuda", APICUDA, KindDSO},
		{"cuda versioned", "libcuda.so.535.261.03", "libcuda", APICUDA, KindDSO},
		{"cuda wsl/jetson", "libcuda.so.1.1", "libcuda", APICUDA, KindDSO},
		{"cuda with dir", "/usr/lib/wsl/lib/libcuda.so.1", "libcuda", APICUDA, KindDSO},
		{"nvml", "libnvidia-ml.so.1", "libnvidia-ml", APINVML, KindDSO},
		{"ptxjit", "libnvidia-ptxjitcompiler.so.1", "libnvidia-ptxjitcompiler", APICUDA, KindDSO},
		{"nvvm", "libnvidia-nvvm.so.4", "libnvidia-nvvm", APICUDA, KindDSO},
		{"nvvm70", "libnvidia-nvvm70.so.4", "libnvidia-nvvm70", APICUDA, KindDSO},
		{"glx vendor", "libGLX_nvidia.so.0", "libGLX_nvidia", APIGLX, KindDSO},
		{"egl vendor", "libEGL_nvidia.so.0", "libEGL_nvidia", APIEGL, KindDSO},
		{"gles2 vendor", "libGLESv2_nvidia.so.2", "libGLESv2_nvidia", APIGLES, KindDSO},
		{"egl wayland", "libnvidia-egl-wayland.so.1.1.10", "libnvidia-egl-wayland", APIEGLPlatform, KindDSO},
		{"egl wayland2", "libnvidia-egl-wayland2.so.1", "libnvidia-egl-wayland2", APIEGLPlatform, KindDSO},
		{"egl gbm", "libnvidia-egl-gbm.so.1.1.2", "libnvidia-egl-gbm", APIEGLPlatform, KindDSO},
		{"vdpau", "libvdpau_nvidia.so.1", "libvdpau_nvidia", APIVideo, KindVDPAU},
		{"gbm backend", "nvidia-drm_gbm.so", "nvidia-drm_gbm", APIGBM, KindGBM},
		{"optix data", "nvoptix.bin", "nvoptix.bin", APIOptiX, KindData},
		{"ngx", "libnvidia-ngx.so.535.261.03", "libnvidia-ngx", APIOptiX, KindDSO},
		{"glcore", "libnvidia-glcore.so.470.256.02", "libnvidia-glcore", APICore, KindDSO},
		{"pkcs11 openssl3", "libnvidia-pkcs11-openssl3.so.535.261.03", "libnvidia-pkcs11-openssl3", APICore, KindDSO},
		{"jetson nvrm", "libnvrm_gpu.so", "libnvrm_gpu", APITegra, KindDSO},
		{"jetson nvsci", "libnvscibuf.so.1", "libnvscibuf", APITegra, KindDSO},
		{"wsl dxcore", "libdxcore.so", "libdxcore", APIWSL, KindDSO},
		{"wsl d3d12core", "libd3d12core.so", "libd3d12core", APIWSL, KindDSO},
		{"wsl dxgdmal", "libnvdxgdmal.so.1", "libnvdxgdmal", APIWSL, KindDSO},

		{"x11", "libX11.so.6", "", "", 0},
		{"libc", "libc.so.6", "", "", 0},
		{"glvnd libGL", "libGL.so.1", "", "", 0},
		{"glvnd libGL file", "libGL.so.1.7.0", "", "", 0},
		{"glvnd libEGL", "libEGL.so.1", "", "", 0},
		{"glvnd gles2", "libGLESv2.so.2", "", "", 0},
		{"vulkan loader", "libvulkan.so.1", "", "", 0},
		{"opencl loader", "libOpenCL.so.1", "", "", 0},
		{"mesa egl vendor", "libEGL_mesa.so.0", "libEGL_mesa", APIEGL, KindDSO},
		{"mesa dri driver", "/usr/lib/x86_64-linux-gnu/dri/iris_dri.so", "iris_dri", APIDRI, KindDSO},
		{"mesa gallium", "libgallium-24.2.8-1.so", "libgallium-24.2.8-1", APIDRI, KindDSO},
		{"mesa va driver", "radeonsi_drv_video.so", "radeonsi_drv_video", APIVA, KindDSO},
		{"mesa vulkan icd", "libvulkan_lvp.so", "libvulkan_lvp", APIVulkan, KindDSO},
		{"vulkan loader", "libvulkan.so.1", "", "", 0},
		{"bare _dri", "_dri.so", "", "", 0},
		{"x server module", "nvidia_drv.so", "", "", 0},
		{"x server glx", "libglxserver_nvidia.so.535.261.03", "", "", 0},
		{"settings gtk", "libnvidia-gtk3.so.535.261.03", "", "", 0},
		{"prefix only", "libcudart.so.12", "", "", 0},
		{"longer name", "libcuda_foo.so.1", "", "", 0},
		{"suffix junk", "libcuda.so.1.bak", "", "", 0},
		{"not a library", "libcuda", "", "", 0},
		{"empty", "", "", "", 0},
		{"dot so only", ".so", "", "", 0},
		{"data name with so", "nvoptix.bin.so", "", "", 0},
		{"wine dll", "nvngx.dll", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := Classify(tt.file)
			if ok != (tt.want != "") {
				t.Fatalf("Classify(%q) ok = %v (entry %q), want %v", tt.file, ok, e.Name, tt.want != "")
			}
			if !ok {
				return
			}
			got := struct {
				Name string
				API  API
				Kind Kind
			}{e.Name, e.API, e.Kind}
			want := struct {
				Name string
				API  API
				Kind Kind
			}{tt.want, tt.api, tt.kind}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("Classify(%q) (-want +got):\n%s", tt.file, d)
			}
		})
	}
}

func TestCatalogDriverVersion(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"535", "libcuda.so.535.261.03", "535.261.03"},
		{"470", "libnvidia-glcore.so.470.256.02", "470.256.02"},
		{"580 with dir", "/usr/local/nvidia/lib64/libnvidia-ml.so.580.159.04", "580.159.04"},
		{"two components", "libcuda.so.390.157", "390.157"},
		{"not in catalogue", "libnvidia-rtcore-sdk.so.535.261.03", "535.261.03"},
		{"soname", "libcuda.so.1", ""},
		{"nvvm soname", "libnvidia-nvvm.so.4", ""},
		{"wsl/jetson", "libcuda.so.1.1", ""},
		{"jetson unversioned", "libnvrm_gpu.so", ""},
		{"bare", "libcuda.so", ""},
		{"egl-wayland", "libnvidia-egl-wayland.so.1.1.10", ""},
		{"egl-gbm", "libnvidia-egl-gbm.so.1.1.2", ""},
		{"L4T release", "libnvidia-eglcore.so.35.4.1", ""},
		{"four components", "libfoo.so.535.261.03.1", ""},
		{"leading zero", "libfoo.so.053.1", ""},
		{"not numeric", "libcuda.so.535.261.03~rc", ""},
		{"no so", "nvoptix.bin", ""},
		{"glibc file", "libm-2.31.so", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DriverVersion(tt.file); got != tt.want {
				t.Errorf("DriverVersion(%q) = %q, want %q", tt.file, got, tt.want)
			}
		})
	}
}

func TestCatalogIsGlibcFamily(t *testing.T) {
	tests := []struct {
		name string
		file string
		want bool
	}{
		{"libc", "libc.so.6", true},
		{"libc bare", "libc.so", true},
		{"libm", "libm.so.6", true},
		{"libm old file", "libm-2.31.so", true},
		{"libc old file", "libc-2.28.so", true},
		{"ld x86-64", "ld-linux-x86-64.so.2", true},
		{"ld aarch64", "ld-linux-aarch64.so.1", true},
		{"ld i386", "ld-linux.so.2", true},
		{"ld armhf", "ld-linux-armhf.so.3", true},
		{"ld old file", "ld-2.31.so", true},
		{"ld ppc64", "ld64.so.2", true},
		{"nss files", "libnss_files.so.2", true},
		{"nss dns old file", "libnss_dns-2.31.so", true},
		{"dl", "libdl.so.2", true},
		{"pthread", "libpthread.so.0", true},
		{"rt", "librt.so.1", true},
		{"resolv", "libresolv.so.2", true},
		{"util", "libutil.so.1", true},
		{"anl", "libanl.so.1", true},
		{"nsl", "libnsl.so.1", true},
		{"BrokenLocale", "libBrokenLocale.so.1", true},
		{"mvec", "libmvec.so.1", true},
		{"malloc debug", "libc_malloc_debug.so.0", true},
		{"thread_db", "libthread_db.so.1", true},
		{"memusage", "libmemusage.so", true},
		{"pcprofile", "libpcprofile.so", true},
		{"SegFault", "libSegFault.so", true},
		{"crypt (decided: yes)", "libcrypt.so.1", true},
		{"with dir", "/lib/x86_64-linux-gnu/libc.so.6", true},
		{"libcuda", "libcuda.so.1", false},
		{"libcrypto", "libcrypto.so.3", false},
		{"libcap", "libcap.so.2", false},
		{"libgcc_s", "libgcc_s.so.1", false},
		{"libstdc++", "libstdc++.so.6", false},
		{"libmount", "libmount.so.1", false},
		{"libdrm", "libdrm.so.2", false},
		{"libX11", "libX11.so.6", false},
		{"libc-mipsn8", "libc-mipsn8.so.0", false},
		{"ld.bfd-like", "ldfoo.so.1", false},
		{"no so", "libc", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsGlibcFamily(tt.file); got != tt.want {
				t.Errorf("IsGlibcFamily(%q) = %v, want %v", tt.file, got, tt.want)
			}
		})
	}
}

func TestCatalogIsDispatch(t *testing.T) {
	tests := []struct {
		name string
		file string
		want bool
	}{
		{"libGL", "libGL.so.1", true},
		{"libGL file", "libGL.so.1.7.0", true},
		{"libEGL", "libEGL.so.1", true},
		{"libGLX", "libGLX.so.0", true},
		{"libGLdispatch", "libGLdispatch.so.0", true},
		{"libOpenGL", "libOpenGL.so.0", true},
		{"libGLESv1_CM", "libGLESv1_CM.so.1", true},
		{"libGLESv2", "libGLESv2.so.2", true},
		{"libvulkan", "libvulkan.so.1", true},
		{"libOpenCL", "libOpenCL.so.1", true},
		{"with dir", "/usr/lib/x86_64-linux-gnu/libEGL.so.1", true},
		{"GLX vendor", "libGLX_nvidia.so.0", false},
		{"EGL vendor", "libEGL_nvidia.so.0", false},
		{"GLES vendor", "libGLESv2_nvidia.so.2", false},
		{"mesa vendor", "libEGL_mesa.so.0", false},
		{"libcuda", "libcuda.so.1", false},
		{"libgbm (decided: no)", "libgbm.so.1", false},
		{"libGLU", "libGLU.so.1", false},
		{"nvidia opencl", "libnvidia-opencl.so.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsDispatch(tt.file); got != tt.want {
				t.Errorf("IsDispatch(%q) = %v, want %v", tt.file, got, tt.want)
			}
		})
	}
}

func TestCatalogDataFiles(t *testing.T) {
	tests := []struct {
		name string
		dir  string
		base string
		want string // Dest; "" for no match
	}{
		{"egl vendor", "/usr/share/glvnd/egl_vendor.d", "10_nvidia.json", "share/glvnd/egl_vendor.d"},
		{"egl vendor etc", "/etc/glvnd/egl_vendor.d", "10_nvidia.json", "share/glvnd/egl_vendor.d"},
		{"mesa vendor", "/usr/share/glvnd/egl_vendor.d", "50_mesa.json", "share/glvnd/egl_vendor.d"},
		{"wayland platform", "/usr/share/egl/egl_external_platform.d", "10_nvidia_wayland.json", "share/egl/egl_external_platform.d"},
		{"gbm platform", "/usr/share/egl/egl_external_platform.d", "15_nvidia_gbm.json", "share/egl/egl_external_platform.d"},
		{"xcb platform", "/usr/share/egl/egl_external_platform.d", "20_nvidia_xcb.json", "share/egl/egl_external_platform.d"},
		{"vulkan icd", "/usr/share/vulkan/icd.d", "nvidia_icd.json", "share/vulkan/icd.d"},
		{"vulkan icd rpm", "/usr/share/vulkan/icd.d", "nvidia_icd.x86_64.json", "share/vulkan/icd.d"},
		{"vulkan icd etc", "/etc/vulkan/icd.d", "nvidia_icd.json", "share/vulkan/icd.d"},
		{"mesa icd", "/usr/share/vulkan/icd.d", "radeon_icd.x86_64.json", "share/vulkan/icd.d"},
		{"vulkan layers", "/usr/share/vulkan/implicit_layer.d", "nvidia_layers.json", "share/vulkan/implicit_layer.d"},
		{"mesa layer", "/usr/share/vulkan/implicit_layer.d", "VkLayer_MESA_device_select.json", "share/vulkan/implicit_layer.d"},
		{"other layer", "/usr/share/vulkan/implicit_layer.d", "VkLayer_khronos_validation.json", ""},
		{"opencl", "/etc/OpenCL/vendors", "nvidia.icd", "etc/OpenCL/vendors"},
		{"pocl", "/etc/OpenCL/vendors", "pocl.icd", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dataDest(tt.dir, tt.base); got != tt.want {
				t.Errorf("data file %s/%s goes to %q, want %q", tt.dir, tt.base, got, tt.want)
			}
		})
	}
	order := map[API]int{}
	for i, a := range APIs() {
		order[a] = i
	}
	dfs := DataFiles()
	for i, d := range dfs {
		if len(d.Dirs) == 0 || len(d.Patterns) == 0 || d.Dest == "" || path.IsAbs(d.Dest) {
			t.Errorf("data file %d (%s) incomplete: %+v", i, d.API, d)
		}
		for _, p := range d.Patterns {
			if _, err := path.Match(p, ""); err != nil {
				t.Errorf("bad pattern %q: %v", p, err)
			}
		}
		if i > 0 && order[dfs[i-1].API] > order[d.API] {
			t.Errorf("data files out of API order at %d", i)
		}
	}
}

// dataDest returns the Dest of the DataFile that claims base in the host
// directory dir, or "".
func dataDest(dir, base string) string {
	for _, d := range DataFiles() {
		if slices.Contains(d.Dirs, dir) && d.Matches(base) {
			return d.Dest
		}
	}
	return ""
}

// notDriverFiles are files of the Debian packages under usr/lib that are
// deliberately not in the catalogue, with the reason.
var notDriverFiles = map[string]string{
	"nvngx.dll":  "Windows PE for Wine/Proton (DLSS through dxvk-nvapi); no use to a Linux program",
	"_nvngx.dll": "Windows PE for Wine/Proton (DLSS through dxvk-nvapi); no use to a Linux program",
}

// packagingDirs hold Debian packaging metadata, not driver files.
var packagingDirs = []string{"usr/share/doc/", "usr/share/bug/", "usr/share/lintian/"}

func TestCatalogCorpus(t *testing.T) {
	fixtures.SkipShort(t, "classifying every file of the driver corpora")
	type tree struct {
		name, root string
		versions   []string
	}
	var trees []tree
	for _, arch := range []string{"amd64", "arm64"} {
		trees = append(trees,
			tree{arch + "/root", fixtures.NvidiaRoot(t, arch), []string{"535.261.03"}},
			tree{arch + "/old", fixtures.NvidiaOld(t, arch), []string{"525.147.05", "470.256.02"}})
	}
	for _, tr := range trees {
		t.Run(strings.ReplaceAll(tr.name, "/", "_"), func(t *testing.T) {
			n := 0
			err := filepath.WalkDir(tr.root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() {
					return nil
				}
				rel, _ := filepath.Rel(tr.root, p)
				rel = filepath.ToSlash(rel)
				base := d.Name()
				for _, pd := range packagingDirs {
					if strings.HasPrefix(rel, pd) {
						return nil
					}
				}
				n++
				switch {
				case strings.HasPrefix(rel, "usr/lib/"):
					if why, ok := notDriverFiles[base]; ok {
						t.Logf("ignored %s: %s", rel, why)
						return nil
					}
					e, ok := Classify(base)
					if !ok {
						t.Errorf("%s: not classified", rel)
						return nil
					}
					if e.Kind == KindData {
						return nil
					}
					if v := DriverVersion(base); v != "" && !slices.Contains(tr.versions, v) {
						t.Errorf("%s: DriverVersion = %q, want one of %q", rel, v, tr.versions)
					}
					if _, v, _ := splitSO(base); v != "" && strings.Count(v, ".") >= 2 && !e.OwnVersion && DriverVersion(base) == "" {
						t.Errorf("%s: a driver-versioned file without a DriverVersion", rel)
					}
				case strings.HasPrefix(rel, "usr/share/") || strings.HasPrefix(rel, "etc/"):
					if !strings.HasSuffix(base, ".json") && !strings.HasSuffix(base, ".icd") {
						t.Errorf("%s: unexpected data file", rel)
						return nil
					}
					if dataDest("/"+path.Dir(rel), base) == "" {
						t.Errorf("%s: matches no DataFile", rel)
					}
				default:
					t.Errorf("%s: unexpected file", rel)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatalf("no files under %s", tr.root)
			}
		})
	}
}

// notLoaded are soname-like strings in driver files that are known not to
// be loads: the dlopen check ignores them.
var notLoaded = map[string]string{
	"libc-mipsn8.so.0":   "an LLVM target's libc name inside NVVM",
	"libKF6KIOCore.so.6": "libnvidia-glcore's application-profile match (KDE's KIO); loading it would pull in Qt",
}

// sonameStrings returns the soname-like strings (lib*.so.N[.M...]) in b:
// runs of library-name characters that start with "lib" and end in ".so"
// and numeric components.
func sonameStrings(b []byte) map[string]bool {
	nameChar := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '-' || c == '+' || c == '.'
	}
	out := map[string]bool{}
	sep := []byte(".so.")
	for off := 0; off < len(b); {
		i := bytes.Index(b[off:], sep)
		if i < 0 {
			break
		}
		i += off
		end := i + 3
		for end < len(b) && b[end] == '.' {
			k := end + 1
			for k < len(b) && b[k] >= '0' && b[k] <= '9' {
				k++
			}
			if k == end+1 {
				break
			}
			end = k
		}
		off = i + 1
		if end == i+3 {
			continue
		}
		s := i
		for s > 0 && nameChar(b[s-1]) {
			s--
		}
		if li := bytes.Index(b[s:i], []byte("lib")); li >= 0 {
			out[string(b[s+li:end])] = true
		}
		off = end
	}
	return out
}

// dlopenCandidates filters names to the ones that can be dlopens of
// generic host libraries: sonames that are neither in needed, nor the
// driver's own (catalogued or carrying a driver version), nor glibc's, nor
// known non-loads.
func dlopenCandidates(names []string, needed []string) map[string]bool {
	out := map[string]bool{}
	for _, n := range names {
		if _, v, ok := splitSO(n); !ok || v == "" || !strings.HasPrefix(n, "lib") {
			continue
		}
		if slices.Contains(needed, n) || IsGlibcFamily(n) || DriverVersion(n) != "" {
			continue
		}
		if _, ok := Classify(n); ok {
			continue
		}
		if _, ok := notLoaded[n]; ok {
			continue
		}
		out[n] = true
	}
	return out
}

// corpusDlopens reads every catalogued DSO (a regular file) under root and
// returns its entry's dlopen candidates, merged into got.
func corpusDlopens(t *testing.T, root string, got map[string]map[string]bool) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(root, "usr", "lib"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		e, ok := Classify(d.Name())
		if !ok || e.Kind == KindData {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		names := make([]string, 0, 64)
		for n := range sonameStrings(b) {
			names = append(names, n)
		}
		if got[e.Name] == nil {
			got[e.Name] = map[string]bool{}
		}
		for n := range dlopenCandidates(names, needed) {
			got[e.Name][n] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// realHostFile is the metadata a real cloud GPU host (driver 580) left in
// the shared notes next to the repository.
func realHostFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(fixtures.RepoRoot(), "testdata", "real-hosts", "cloud-h200-usr-local-nvidia.txt")
	if _, err := os.Stat(p); err != nil {
		fixtures.Unavailable(t, "real-host notes: %v", err)
	}
	return p
}

// realHost is what the tests use of the real-host notes.
type realHost struct {
	tree    []treeLine                 // the "/usr/local/nvidia tree" section
	needed  map[string][]string        // file name -> DT_NEEDED
	strings map[string][]string        // file name -> dlopen-like strings
	dlopens map[string]map[string]bool // entry name -> dlopen candidates
}

type treeLine struct {
	typ, path, target string
}

func parseRealHost(t *testing.T, file string) realHost {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := realHost{needed: map[string][]string{}, strings: map[string][]string{}, dlopens: map[string]map[string]bool{}}
	section := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			section = line[3:]
			continue
		}
		switch {
		case section == "/usr/local/nvidia tree":
			// "f SIZE PATH -> " or "l SIZE PATH -> TARGET"
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != "->" {
				t.Fatalf("tree line %q", line)
			}
			tl := treeLine{typ: fields[0], path: fields[2]}
			if len(fields) > 4 {
				tl.target = fields[4]
			}
			h.tree = append(h.tree, tl)
		case strings.HasPrefix(section, "ELF facts in"):
			// "FILE SIZE | SONAME | NEEDED... | GLIBC | RUNPATH | STRINGS..."
			cols := strings.Split(line, "|")
			if len(cols) != 6 {
				t.Fatalf("ELF facts line has %d columns: %q", len(cols), line)
			}
			name := strings.Fields(cols[0])[0]
			h.needed[name] = strings.Fields(cols[2])
			h.strings[name] = strings.Fields(cols[5])
			e, ok := Classify(name)
			if !ok {
				t.Errorf("real host: %s not classified", name)
				continue
			}
			if h.dlopens[e.Name] == nil {
				h.dlopens[e.Name] = map[string]bool{}
			}
			for n := range dlopenCandidates(h.strings[name], h.needed[name]) {
				h.dlopens[e.Name][n] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(h.tree) == 0 || len(h.needed) == 0 {
		t.Fatalf("%s: tree or ELF facts section missing", file)
	}
	return h
}

func TestCatalogRealHost580(t *testing.T) {
	h := parseRealHost(t, realHostFile(t))
	const version = "580.159.04"
	nlib := 0
	for _, tl := range h.tree {
		rel, ok := strings.CutPrefix(tl.path, "/usr/local/nvidia/")
		if !ok {
			t.Errorf("tree line outside /usr/local/nvidia: %s", tl.path)
			continue
		}
		base := path.Base(rel)
		switch dir := path.Dir(rel); {
		case dir == "lib64":
			nlib++
			if _, ok := Classify(base); !ok {
				t.Errorf("%s: not classified", tl.path)
			}
			v := DriverVersion(base)
			if strings.HasSuffix(base, ".so."+version) && v != version {
				t.Errorf("DriverVersion(%s) = %q, want %q", base, v, version)
			}
			if !strings.HasSuffix(base, ".so."+version) && v != "" {
				t.Errorf("DriverVersion(%s) = %q, want \"\"", base, v)
			}
			if tl.typ == "f" && v != version {
				t.Errorf("%s: a real file without the driver version", tl.path)
			}
		case dir == "glibc":
			// The host's private glibc for its tools: all glibc but libgcc_s.
			if want := base != "libgcc_s.so.1"; IsGlibcFamily(base) != want {
				t.Errorf("IsGlibcFamily(%s) = %v, want %v", base, !want, want)
			}
		case strings.HasPrefix(dir, "share/"):
			var dest string
			for _, d := range DataFiles() {
				if d.Dest == dir && d.Matches(base) {
					dest = d.Dest
				}
			}
			if dest == "" {
				t.Errorf("%s: matches no DataFile by Dest", tl.path)
			}
		}
	}
	if nlib == 0 {
		t.Error("no lib64 files in the tree section")
	}
	// Every library the ELF-facts section describes is catalogued with a
	// 580 dlopen set that the table covers.
	cat := map[string]Entry{}
	for _, e := range Catalog() {
		cat[e.Name] = e
	}
	for name, got := range h.dlopens {
		have := map[string]bool{}
		for _, d := range append(cat[name].Dlopens, cat[name].Optional...) {
			have[d] = true
		}
		for d := range got {
			if !have[d] {
				t.Errorf("%s: 580 names %s, missing from Dlopens and Optional", name, d)
			}
		}
	}
}

func TestCatalogDlopens(t *testing.T) {
	// The union is only right over every corpus (arm64's libnvidia-cfg
	// names libdrm, amd64's does not), so -short cannot take a part.
	fixtures.SkipShort(t, "reading every DSO of both driver corpora")
	// found: entry name -> candidates, the union over every corpus read.
	found := map[string]map[string]bool{}
	corpusDlopens(t, fixtures.NvidiaRoot(t, "amd64"), found)
	corpusDlopens(t, fixtures.NvidiaRoot(t, "arm64"), found)
	var host580 map[string]map[string]bool
	if p := filepath.Join(fixtures.RepoRoot(), "testdata", "real-hosts", "cloud-h200-usr-local-nvidia.txt"); fileExists(p) {
		host580 = parseRealHost(t, p).dlopens
		for name, set := range host580 {
			if found[name] == nil {
				found[name] = map[string]bool{}
			}
			for n := range set {
				found[name][n] = true
			}
		}
	}
	var unchecked []string
	for _, e := range Catalog() {
		set, ok := found[e.Name]
		if !ok {
			if e.Kind != KindData {
				unchecked = append(unchecked, e.Name)
			}
			continue
		}
		want := make([]string, 0, len(set))
		for n := range set {
			want = append(want, n)
		}
		sort.Strings(want)
		got := append(append([]string{}, e.Dlopens...), e.Optional...)
		sort.Strings(got)
		if host580 == nil {
			// Without 580's names only missing names can be told.
			got = slices.DeleteFunc(slices.Clone(got), func(n string) bool { return !set[n] })
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: Dlopens+Optional differ from the driver's strings (-found +catalogue):\n%s", e.Name, d)
		}
	}
	t.Logf("not in any corpus, Dlopens unchecked: %s", strings.Join(unchecked, " "))
	if host580 == nil {
		fixtures.Unavailable(t, "real-host notes missing: checked that no 535 name is missing, not that none is invented")
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestCatalogKindString(t *testing.T) {
	got := []string{KindDSO.String(), KindData.String(), KindGBM.String(), KindVDPAU.String(), Kind(9).String()}
	want := []string{"dso", "data", "gbm", "vdpau", "kind(9)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Kind.String (-want +got):\n%s", d)
	}
}
