package hostdrivers

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/google/go-cmp/cmp"
)

func TestAppendPath(t *testing.T) {
	tests := []struct {
		name, list string
		vals       []string
		want       string
	}{
		{"empty list", "", []string{"/e/lib"}, "/e/lib"},
		{"kept first", "/opt/a:/opt/b", []string{"/e/lib"}, "/opt/a:/opt/b:/e/lib"},
		// An empty element is the current directory to glibc: the
		// user's stay where they were, ours add none.
		{"user's empty elements kept", ":/opt/a::", []string{"/e/lib"}, ":/opt/a:::/e/lib"},
		{"trailing empty element kept", "/opt/a:", []string{"/e/lib"}, "/opt/a::/e/lib"},
		{"user's duplicates kept", "/opt/a:/opt/b:/opt/a", []string{"/e/lib"}, "/opt/a:/opt/b:/opt/a:/e/lib"},
		{"ours not added twice", "/e/lib:/opt/a", []string{"/e/lib"}, "/e/lib:/opt/a"},
		{"no empty value of ours", "/opt/a", []string{"", "/e/lib", "/e/lib"}, "/opt/a:/e/lib"},
		{"several", "", []string{"/a.json", "/b.json"}, "/a.json:/b.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppendPath(tt.list, tt.vals...); got != tt.want {
				t.Errorf("AppendPath(%q, %q) = %q, want %q", tt.list, tt.vals, got, tt.want)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "lib", "gbm"), 0o755); err != nil {
		t.Fatal(err)
	}
	full := &Manifest{
		APIs: []catalog.API{catalog.APICUDA, catalog.APIGLX, catalog.APIEGL},
		Data: []DataOut{
			{API: catalog.APIEGL, Dest: "share/glvnd/egl_vendor.d/10_nvidia.json"},
			{API: catalog.APIEGLPlatform, Dest: "share/egl/egl_external_platform.d/10_nvidia_wayland.json"},
			{API: catalog.APIVulkan, Dest: "share/vulkan/icd.d/nvidia_icd.json"},
			{API: catalog.APIVulkan, Dest: "share/vulkan/implicit_layer.d/nvidia_layers.json"},
			{API: catalog.APIOpenCL, Dest: "etc/OpenCL/vendors/nvidia.icd"},
		},
	}
	cudaOnly := &Manifest{APIs: []catalog.API{catalog.APICUDA, catalog.APINVML}}
	j := func(p string) string { return filepath.Join(dir, p) }
	tests := []struct {
		name string
		env  []string
		m    *Manifest
		eo   EnvOptions
		want []Change
	}{
		{
			name: "everything, nothing inherited",
			m:    full,
			want: []Change{
				{Name: "LD_LIBRARY_PATH", Value: j("lib")},
				{Name: "__EGL_VENDOR_LIBRARY_DIRS", Value: j("share/glvnd/egl_vendor.d")},
				{Name: "__EGL_EXTERNAL_PLATFORM_CONFIG_DIRS", Value: j("share/egl/egl_external_platform.d")},
				{Name: "VK_DRIVER_FILES", Value: j("share/vulkan/icd.d/nvidia_icd.json")},
				{Name: "VK_ICD_FILENAMES", Value: j("share/vulkan/icd.d/nvidia_icd.json")},
				{Name: "VK_ADD_IMPLICIT_LAYER_PATH", Value: j("share/vulkan/implicit_layer.d")},
				{Name: "OCL_ICD_VENDORS", Value: j("etc/OpenCL/vendors")},
				{Name: "GBM_BACKENDS_PATH", Value: j("lib/gbm")},
			},
		},
		{
			name: "user's values kept and extended",
			env:  []string{"LD_LIBRARY_PATH=/opt/x", "__GLX_VENDOR_LIBRARY_NAME=mesa", "VK_DRIVER_FILES=/mine.json", "OCL_ICD_VENDORS=/etc/mine"},
			m:    full,
			eo:   EnvOptions{Prime: true},
			want: []Change{
				{Name: "LD_LIBRARY_PATH", Value: "/opt/x:" + j("lib"), Kept: true},
				{Name: "__NV_PRIME_RENDER_OFFLOAD", Value: "1"},
				{Name: "__GLX_VENDOR_LIBRARY_NAME", Value: "mesa", Kept: true},
				{Name: "__VK_LAYER_NV_optimus", Value: "NVIDIA_only"},
				{Name: "__EGL_VENDOR_LIBRARY_DIRS", Value: j("share/glvnd/egl_vendor.d")},
				{Name: "__EGL_EXTERNAL_PLATFORM_CONFIG_DIRS", Value: j("share/egl/egl_external_platform.d")},
				{Name: "VK_DRIVER_FILES", Value: "/mine.json:" + j("share/vulkan/icd.d/nvidia_icd.json"), Kept: true},
				{Name: "VK_ADD_IMPLICIT_LAYER_PATH", Value: j("share/vulkan/implicit_layer.d")},
				{Name: "OCL_ICD_VENDORS", Value: "/etc/mine", Kept: true},
				{Name: "GBM_BACKENDS_PATH", Value: j("lib/gbm")},
			},
		},
		{
			// The loader reads VK_DRIVER_FILES first: setting it would
			// hide the user's VK_ICD_FILENAMES.
			name: "user's VK_ICD_FILENAMES extended, VK_DRIVER_FILES not set",
			env:  []string{"VK_ICD_FILENAMES=/mine.json", "LD_LIBRARY_PATH=:/opt/x"},
			m:    full,
			want: []Change{
				{Name: "LD_LIBRARY_PATH", Value: ":/opt/x:" + j("lib"), Kept: true},
				{Name: "__EGL_VENDOR_LIBRARY_DIRS", Value: j("share/glvnd/egl_vendor.d")},
				{Name: "__EGL_EXTERNAL_PLATFORM_CONFIG_DIRS", Value: j("share/egl/egl_external_platform.d")},
				{Name: "VK_ICD_FILENAMES", Value: "/mine.json:" + j("share/vulkan/icd.d/nvidia_icd.json"), Kept: true},
				{Name: "VK_ADD_IMPLICIT_LAYER_PATH", Value: j("share/vulkan/implicit_layer.d")},
				{Name: "OCL_ICD_VENDORS", Value: j("etc/OpenCL/vendors")},
				{Name: "GBM_BACKENDS_PATH", Value: j("lib/gbm")},
			},
		},
		{
			// Both set: the loader uses VK_DRIVER_FILES alone, so that
			// is the one extended; VK_ICD_FILENAMES stays the user's.
			name: "user set both: VK_DRIVER_FILES extended",
			env:  []string{"VK_ICD_FILENAMES=/old.json", "VK_DRIVER_FILES=/mine.json"},
			m:    &Manifest{APIs: []catalog.API{catalog.APIVulkan}, Data: []DataOut{{API: catalog.APIVulkan, Dest: "share/vulkan/icd.d/nvidia_icd.json"}}},
			want: []Change{
				{Name: "LD_LIBRARY_PATH", Value: j("lib")},
				{Name: "VK_DRIVER_FILES", Value: "/mine.json:" + j("share/vulkan/icd.d/nvidia_icd.json"), Kept: true},
				{Name: "GBM_BACKENDS_PATH", Value: j("lib/gbm")},
			},
		},
		{
			name: "an empty VK_ICD_FILENAMES counts as unset",
			env:  []string{"VK_ICD_FILENAMES="},
			m:    &Manifest{APIs: []catalog.API{catalog.APIVulkan}, Data: []DataOut{{API: catalog.APIVulkan, Dest: "share/vulkan/icd.d/nvidia_icd.json"}}},
			want: []Change{
				{Name: "LD_LIBRARY_PATH", Value: j("lib")},
				{Name: "VK_DRIVER_FILES", Value: j("share/vulkan/icd.d/nvidia_icd.json")},
				{Name: "VK_ICD_FILENAMES", Value: j("share/vulkan/icd.d/nvidia_icd.json")},
				{Name: "GBM_BACKENDS_PATH", Value: j("lib/gbm")},
			},
		},
		{
			name: "prime, CUDA only: no GLX or Vulkan variable",
			m:    cudaOnly,
			eo:   EnvOptions{Prime: true},
			want: []Change{
				{Name: "LD_LIBRARY_PATH", Value: j("lib")},
				{Name: "__NV_PRIME_RENDER_OFFLOAD", Value: "1"},
				{Name: "GBM_BACKENDS_PATH", Value: j("lib/gbm")},
			},
		},
		{
			name: "CUDA only, nix-ld",
			env:  []string{"LD_LIBRARY_PATH=/opt/x"},
			m:    cudaOnly,
			eo:   EnvOptions{NixLD: true},
			want: []Change{
				{Name: "NIX_LD_LIBRARY_PATH", Value: j("lib")},
				{Name: "GBM_BACKENDS_PATH", Value: j("lib/gbm")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Env(tt.env, dir, tt.m, tt.eo)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApply(t *testing.T) {
	env := []string{"A=1", "LD_LIBRARY_PATH=/x", "B=2", "LD_LIBRARY_PATH=/y"}
	got := Apply(env, []Change{{Name: "LD_LIBRARY_PATH", Value: "/y:/e/lib"}, {Name: "C", Value: "3"}})
	want := []string{"A=1", "B=2", "LD_LIBRARY_PATH=/y:/e/lib", "C=3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Apply (-want +got):\n%s", diff)
	}
}

func TestRewriteJSON(t *testing.T) {
	exposed := map[string]bool{"libGLX_nvidia.so.0": true, "libEGL_nvidia.so.0": true}
	tests := []struct {
		name, in, dest, want, err string
	}{
		{
			name: "EGL vendor keeps a bare soname",
			in:   `{"file_format_version":"1.0.0","ICD":{"library_path":"libEGL_nvidia.so.0"}}`,
			dest: "share/glvnd/egl_vendor.d",
			want: `{"ICD":{"library_path":"libEGL_nvidia.so.0"},"file_format_version":"1.0.0"}`,
		},
		{
			name: "absolute host path becomes the entry's",
			in:   `{"ICD":{"library_path":"/usr/lib/x86_64-linux-gnu/libEGL_nvidia.so.0"}}`,
			dest: "share/glvnd/egl_vendor.d",
			want: `{"ICD":{"library_path":"libEGL_nvidia.so.0"}}`,
		},
		{
			name: "Vulkan ICD points into lib/ relative to the JSON file",
			in:   `{"file_format_version":"1.0.1","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3.242"}}`,
			dest: "share/vulkan/icd.d",
			want: `{"ICD":{"api_version":"1.3.242","library_path":"../../../lib/libGLX_nvidia.so.0"},"file_format_version":"1.0.1"}`,
		},
		{
			name: "layer with a missing library is dropped, the rest kept",
			in:   `{"layers":[{"name":"A","library_path":"libGLX_nvidia.so.0"},{"name":"B","library_path":"libnvidia-present.so.580.159.04"}]}`,
			dest: "share/vulkan/implicit_layer.d",
			want: `{"layers":[{"library_path":"../../../lib/libGLX_nvidia.so.0","name":"A"}]}`,
		},
		{name: "library the driver lacks", in: `{"ICD":{"library_path":"libfoo.so.1"}}`, dest: "share/glvnd/egl_vendor.d", err: "does not provide"},
		{name: "not JSON", in: `{`, dest: "share/glvnd/egl_vendor.d", err: "invalid JSON"},
		{name: "no ICD", in: `{"x":1}`, dest: "share/glvnd/egl_vendor.d", err: "neither"},
		{name: "ICD not an object", in: `{"ICD":3}`, dest: "share/glvnd/egl_vendor.d", err: "not an object"},
		{name: "no layer left", in: `{"layers":[{"library_path":"libx.so"}]}`, dest: "share/vulkan/implicit_layer.d", err: "no layer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rewriteJSON([]byte(tt.in), tt.dest, exposed, "")
			if tt.err != "" {
				if err == nil || !contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, compact(t, got)); diff != "" {
				t.Errorf("rewriteJSON (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzRewriteJSON(f *testing.F) {
	f.Add([]byte(`{"ICD":{"library_path":"libGLX_nvidia.so.0"}}`), "share/vulkan/icd.d")
	f.Add([]byte(`{"layers":[{"library_path":"libGLX_nvidia.so.0"},{"library_path":"x"}]}`), "share/vulkan/implicit_layer.d")
	f.Add([]byte(`{"layer":{"library_path":"/a/b/libGLX_nvidia.so.0"}}`), "share/glvnd/egl_vendor.d")
	exposed := map[string]bool{"libGLX_nvidia.so.0": true}
	f.Fuzz(func(t *testing.T, b []byte, dest string) {
		out, err := rewriteJSON(b, dest, exposed, "")
		if err != nil {
			return
		}
		// What it writes is JSON that names only exposed libraries.
		if _, err := rewriteJSON(out, dest, exposed, ""); err != nil {
			t.Fatalf("output does not rewrite again: %v\n%s", err, out)
		}
	})
}

func TestRewriteICD(t *testing.T) {
	exposed := map[string]bool{"libnvidia-opencl.so.1": true}
	if got, err := rewriteICD([]byte("libnvidia-opencl.so.1\n"), exposed, ""); err != nil || string(got) != "libnvidia-opencl.so.1\n" {
		t.Errorf("rewriteICD = %q, %v", got, err)
	}
	if got, err := rewriteICD([]byte("/usr/lib/libnvidia-opencl.so.1"), exposed, ""); err != nil || string(got) != "libnvidia-opencl.so.1\n" {
		t.Errorf("rewriteICD(abs) = %q, %v", got, err)
	}
	for _, bad := range []string{"", "libpocl.so.2", "a\nb"} {
		if _, err := rewriteICD([]byte(bad), exposed, ""); err == nil {
			t.Errorf("rewriteICD(%q) succeeded, want an error", bad)
		}
	}
}

func TestVulkanAPIVersion(t *testing.T) {
	for v, want := range map[string]string{"470.256.02": "1.2.0", "515.43.04": "1.3.0", "535.261.03": "1.3.0", "": "1.3.0"} {
		if got := vulkanAPIVersion(v); got != want {
			t.Errorf("vulkanAPIVersion(%q) = %q, want %q", v, got, want)
		}
	}
	// An ICD file named nvidia.json (some packages' name) is recognised.
	found := false
	for _, df := range catalog.DataFiles() {
		found = found || df.Dest == "share/vulkan/icd.d" && df.Matches("nvidia.json")
	}
	if !found {
		t.Error("a Vulkan ICD file named nvidia.json is not recognised")
	}
}
