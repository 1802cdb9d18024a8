package hostdrivers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"
)

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
