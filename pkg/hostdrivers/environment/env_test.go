package environment

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
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
	full := &hostdrivers.Manifest{
		APIs: []catalog.API{catalog.APICUDA, catalog.APIGLX, catalog.APIEGL},
		Data: []hostdrivers.DataOut{
			{API: catalog.APIEGL, Dest: "share/glvnd/egl_vendor.d/10_nvidia.json"},
			{API: catalog.APIEGLPlatform, Dest: "share/egl/egl_external_platform.d/10_nvidia_wayland.json"},
			{API: catalog.APIVulkan, Dest: "share/vulkan/icd.d/nvidia_icd.json"},
			{API: catalog.APIVulkan, Dest: "share/vulkan/implicit_layer.d/nvidia_layers.json"},
			{API: catalog.APIOpenCL, Dest: "etc/OpenCL/vendors/nvidia.icd"},
		},
	}
	cudaOnly := &hostdrivers.Manifest{APIs: []catalog.API{catalog.APICUDA, catalog.APINVML}}
	j := func(p string) string { return filepath.Join(dir, p) }
	tests := []struct {
		name string
		env  []string
		m    *hostdrivers.Manifest
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
			m:    &hostdrivers.Manifest{APIs: []catalog.API{catalog.APIVulkan}, Data: []hostdrivers.DataOut{{API: catalog.APIVulkan, Dest: "share/vulkan/icd.d/nvidia_icd.json"}}},
			want: []Change{
				{Name: "LD_LIBRARY_PATH", Value: j("lib")},
				{Name: "VK_DRIVER_FILES", Value: "/mine.json:" + j("share/vulkan/icd.d/nvidia_icd.json"), Kept: true},
				{Name: "GBM_BACKENDS_PATH", Value: j("lib/gbm")},
			},
		},
		{
			name: "an empty VK_ICD_FILENAMES counts as unset",
			env:  []string{"VK_ICD_FILENAMES="},
			m:    &hostdrivers.Manifest{APIs: []catalog.API{catalog.APIVulkan}, Data: []hostdrivers.DataOut{{API: catalog.APIVulkan, Dest: "share/vulkan/icd.d/nvidia_icd.json"}}},
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
