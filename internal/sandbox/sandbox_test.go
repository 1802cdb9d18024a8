package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// TestSandboxPathsChains: a symlink in the entry whose host target is
// itself a link (a soname link) gets every link of the chain and the
// resolved file; relative links inside the entry get nothing.
func TestSandboxPathsChains(t *testing.T) {
	host := t.TempDir()
	entry := filepath.Join(t.TempDir(), "entry")
	for _, d := range []string{"lib", "deps", "x/y"} {
		fixtures.Must(t, os.MkdirAll(filepath.Join(entry, d), 0o755))
	}
	fixtures.Must(t, os.MkdirAll(filepath.Join(host, "real"), 0o755))
	fixtures.Must(t, os.WriteFile(filepath.Join(host, "real/libfoo.so.1.2.3"), nil, 0o644))
	fixtures.Must(t, os.Symlink("libfoo.so.1.2.3", filepath.Join(host, "real/libfoo.so.1")))
	fixtures.Must(t, os.Symlink("real", filepath.Join(host, "lib")))
	fixtures.Must(t, os.Symlink(filepath.Join(host, "lib/libfoo.so.1"), filepath.Join(entry, "deps/libfoo.so.1")))
	fixtures.Must(t, os.Symlink("../deps/libfoo.so.1", filepath.Join(entry, "lib/libfoo.so.1")))
	got, err := Paths(host, entry, AllDevices)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/run/opengl-driver=" + entry,
		filepath.Join(host, "lib/libfoo.so.1"),
		filepath.Join(host, "lib/libfoo.so.1.2.3"),
		filepath.Join(host, "real/libfoo.so.1.2.3"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestSandboxPathsUncarriable: a path Nix would split wrongly is an error,
// not a wrong mount.
func TestSandboxPathsUncarriable(t *testing.T) {
	for _, tc := range []struct{ name, hostName, entryName string }{
		{"host path with =", "a=b", "entry"},
		{"host path with a newline", "a\nb", "entry"},
		{"entry with =", "host", "x=y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := filepath.Join(t.TempDir(), tc.hostName)
			entry := filepath.Join(t.TempDir(), tc.entryName)
			if err := os.MkdirAll(filepath.Join(entry, "deps"), 0o755); err != nil {
				t.Fatal(err)
			}
			fixtures.Must(t, os.MkdirAll(host, 0o755))
			fixtures.Must(t, os.WriteFile(filepath.Join(host, "libfoo.so.1"), nil, 0o644))
			fixtures.Must(t, os.Symlink(filepath.Join(host, "libfoo.so.1"), filepath.Join(entry, "deps/libfoo.so.1")))
			if got, err := Paths("/nonexistent-root", entry, AllDevices); err == nil || !strings.Contains(err.Error(), "cannot carry") {
				t.Errorf("Paths = %q, %v; want an error", got, err)
			}
		})
	}
}

// TestDeviceNodes: each group of nodes is printed only when asked for, in
// one order (NVIDIA's, numbered by number, then /dev/dri, then /dev/kfd),
// and nodes of no group (/dev/null, /dev/nvidia-caps) never are.
func TestDeviceNodes(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"nvidiactl", "nvidia0", "nvidia1", "nvidia10", "nvidia2", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "nvidia-caps/nvidia-cap1", "dri/card0", "dri/renderD128", "kfd", "null"} {
		fixtures.Write(t, filepath.Join(root, "dev", n), "")
	}
	nvidia := []string{"/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia2", "/dev/nvidia10", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"}
	for _, tc := range []struct {
		name string
		devs Devices
		want []string
	}{
		{name: "none", devs: 0, want: nil},
		{name: "nvidia", devs: DevNVIDIA, want: nvidia},
		{name: "dri", devs: DevDRI, want: []string{"/dev/dri"}},
		{name: "kfd", devs: DevKFD, want: []string{"/dev/kfd"}},
		{name: "rocm's", devs: DevKFD | DevDRI, want: []string{"/dev/dri", "/dev/kfd"}},
		{name: "nvidia and dri", devs: DevNVIDIA | DevDRI, want: append(slices.Clone(nvidia), "/dev/dri")},
		{name: "all", devs: AllDevices, want: append(slices.Clone(nvidia), "/dev/dri", "/dev/kfd")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DeviceNodes(root, tc.devs)
			if err != nil {
				t.Fatal(err)
			}
			var inside []string
			for _, l := range got {
				in, out, _ := strings.Cut(l, "=")
				if out != filepath.Join(root, in) {
					t.Errorf("%s is bound from %s, want %s", in, out, filepath.Join(root, in))
				}
				inside = append(inside, in)
			}
			if diff := cmp.Diff(tc.want, inside); diff != "" {
				t.Errorf("DeviceNodes(%v) (-want +got):\n%s", tc.devs, diff)
			}
		})
	}
}

// TestGrantFor: what a derivation's sandbox gets follows its features:
// rocm alone gets /dev/kfd and /dev/dri and no entry, a driver feature the
// entry, NVIDIA's nodes and /dev/dri, several the union, and a feature
// nixglhost does not know (one an administrator configured) everything.
func TestGrantFor(t *testing.T) {
	for _, tc := range []struct {
		name     string
		features []Feature
		want     Grant
	}{
		{name: "none", want: Grant{}},
		{name: "rocm", features: []Feature{ROCm}, want: Grant{Devices: DevKFD | DevDRI}},
		{name: "cuda", features: []Feature{CUDA}, want: Grant{Entry: true, Devices: DevNVIDIA | DevDRI}},
		{name: "nvidia-gpu", features: []Feature{NVIDIAGPU}, want: Grant{Entry: true, Devices: DevNVIDIA | DevDRI}},
		{name: "opengl", features: []Feature{OpenGL}, want: Grant{Entry: true, Devices: DevNVIDIA | DevDRI}},
		{name: "rocm and cuda", features: []Feature{ROCm, CUDA}, want: Grant{Entry: true, Devices: AllDevices}},
		{name: "configured", features: []Feature{"gpu"}, want: Grant{Entry: true, Devices: AllDevices}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, GrantFor(tc.features)); diff != "" {
				t.Errorf("GrantFor(%q) (-want +got):\n%s", tc.features, diff)
			}
		})
	}
}

func TestDevicesString(t *testing.T) {
	for devs, want := range map[Devices]string{
		0:                    "none",
		DevNVIDIA:            "nvidia",
		DevKFD | DevDRI:      "dri+kfd",
		AllDevices:           "nvidia+dri+kfd",
		DevDRI | Devices(64): "dri+Devices(0x40)",
	} {
		if got := devs.String(); got != want {
			t.Errorf("Devices(%#x).String() = %q, want %q", uint8(devs), got, want)
		}
	}
}
