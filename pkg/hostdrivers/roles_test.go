package hostdrivers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// Host files the role tests plant, as the real hosts show them (see
// testdata/real-hosts and ../shared/real-hosts/jetson-generations.txt).
const (
	orinR35Release  = "# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, EABI: aarch64, DATE: Sun Mar 19 15:19:21 UTC 2023\n"
	orinR36Release  = "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024\n"
	thorR38Release  = "# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64, DATE: Fri Aug 22 00:55:42 UTC 2025\n"
	orinR39Release  = "# R39 (release), REVISION: 2.0, GCID: 43000000, BOARD: generic, EABI: aarch64, DATE: Mon Mar  2 10:00:00 UTC 2026\n"
	orinDisplayProc = "NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  35.3.1  Release Build  (buildbrain@mobile-u64-5414-d7000)  Sun Mar 19 07:59:27 PDT 2023\nGCC version:  collect2: error: ld returned 1 exit status\n"
	thorProc        = "NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  580.00  Release Build  (buildbrain@mobile-u64-6336-d8000)  Fri Aug 22 00:40:00 PDT 2025\nGCC version:  gcc version 13.3.0 (Ubuntu 13.3.0-6ubuntu2~24.04)\n"
)

// plantHost writes files (path -> content; a content starting with "->"
// makes a symlink to the rest) under a new root and returns it.
func plantHost(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		fixtures.Must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		if target, ok := strings.CutPrefix(content, "->"); ok {
			fixtures.Must(t, os.Symlink(target, full))
			continue
		}
		if strings.HasSuffix(p, "/") {
			continue
		}
		fixtures.Write(t, full, content)
	}
	return root
}

// card returns the files of a DRM card bound to driver.
func card(files map[string]string, name, driver string, bootVGA bool) {
	files["sys/class/drm/"+name+"/device/driver"] = "->../../../bus/pci/drivers/" + driver
	v := "0\n"
	if bootVGA {
		v = "1\n"
	}
	files["sys/class/drm/"+name+"/device/boot_vga"] = v
	files["sys/class/drm/"+name+"-HDMI-A-1/status"] = "connected\n"
}

// TestRoles: each host generation's files give the GPU's kernel driver
// (what the launch and the doctor both read through ReadKernel) and say
// whether Mesa renders. Orin before L4T R38 loads an nvidia module for its
// display: nvgpu is the GPU's driver and the L4T release its version (it
// was the display module, 35.3.1, taken for a desktop branch 35). Thor
// and Orin on JetPack 7.2 run the GPU on the OpenRM nvidia module.
func TestRoles(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		cards [][3]string // name, driver, "vga" when boot_vga
		gpu   Kernel
		mesa  string // a part of MesaRenders' reason, "" for none
	}{
		{
			name: "Orin R35, display module loaded",
			files: map[string]string{
				"etc/nv_tegra_release": orinR35Release, "sys/module/nvgpu/parameters/": "",
				"sys/module/nvidia/version": "35.3.1\n", "proc/driver/nvidia/version": orinDisplayProc,
			},
			cards: [][3]string{{"card0", "tegra-drm", "vga"}},
			gpu:   Kernel{Kind: KernelNVGPU, Version: "35.3.1", Source: "/sys/module/nvgpu", Release: strings.TrimSpace(orinR35Release[2:]), Display: "35.3.1"},
		},
		{
			name: "Orin R35, /proc only (a container)",
			files: map[string]string{
				"etc/nv_tegra_release": orinR35Release, "proc/driver/nvidia/version": orinDisplayProc,
			},
			gpu: Kernel{Kind: KernelNVGPU, Version: "35.3.1", Source: "/etc/nv_tegra_release", Release: strings.TrimSpace(orinR35Release[2:]), Display: "35.3.1"},
		},
		{
			name: "Orin R36, display module loaded",
			files: map[string]string{
				"etc/nv_tegra_release": orinR36Release, "sys/module/nvgpu/version": "36.3.0\n",
				"sys/module/nvidia/version": "36.3.0\n",
			},
			gpu: Kernel{Kind: KernelNVGPU, Version: "36.3.0", Source: "/sys/module/nvgpu/version", Release: strings.TrimSpace(orinR36Release[2:]), Display: "36.3.0"},
		},
		{
			name: "Thor R38, OpenRM",
			files: map[string]string{
				"etc/nv_tegra_release": thorR38Release, "sys/module/nvidia/version": "580.00\n", "proc/driver/nvidia/version": thorProc,
			},
			gpu: Kernel{Kind: KernelNVIDIA, Version: "580.00", Source: "/sys/module/nvidia/version", Release: strings.TrimSpace(thorR38Release[2:])},
		},
		{
			name: "Orin on JetPack 7.2 (R39), OpenRM",
			files: map[string]string{
				"etc/nv_tegra_release": orinR39Release, "proc/driver/nvidia/version": thorProc,
			},
			cards: [][3]string{{"card0", "nvidia", "vga"}},
			gpu:   Kernel{Kind: KernelNVIDIA, Version: "580.00", Source: "/proc/driver/nvidia/version", Release: strings.TrimSpace(orinR39Release[2:])},
		},
		{
			name:  "Thor, module not loaded",
			files: map[string]string{"etc/nv_tegra_release": thorR38Release},
			gpu:   Kernel{},
		},
		{
			name:  "desktop NVIDIA",
			files: map[string]string{"sys/module/nvidia/version": "535.261.03\n"},
			cards: [][3]string{{"card0", "nvidia", "vga"}},
			gpu:   Kernel{Kind: KernelNVIDIA, Version: "535.261.03", Source: "/sys/module/nvidia/version"},
		},
		{
			name:  "hybrid laptop, the iGPU drives the display",
			files: map[string]string{"sys/module/nvidia/version": "535.261.03\n"},
			cards: [][3]string{{"card0", "nvidia", ""}, {"card1", "i915", "vga"}},
			gpu:   Kernel{Kind: KernelNVIDIA, Version: "535.261.03", Source: "/sys/module/nvidia/version"},
			mesa:  "card1) is driven by i915",
		},
		{
			name:  "hybrid laptop in reverse PRIME, NVIDIA drives the display",
			files: map[string]string{"sys/module/nvidia/version": "535.261.03\n"},
			cards: [][3]string{{"card0", "amdgpu", ""}, {"card1", "nvidia", "vga"}},
			gpu:   Kernel{Kind: KernelNVIDIA, Version: "535.261.03", Source: "/sys/module/nvidia/version"},
		},
		{
			name:  "nouveau, NVIDIA's userspace installed",
			files: map[string]string{"sys/module/nouveau/parameters/": ""},
			cards: [][3]string{{"card0", "nouveau", "vga"}},
			gpu:   Kernel{},
			mesa:  "nouveau is loaded",
		},
		{
			name:  "WSL2",
			files: map[string]string{"dev/dxg": ""},
			gpu:   Kernel{Kind: KernelDXG, Source: "/dev/dxg", Release: "WSL2: the Windows driver serves the GPU"},
			mesa:  "WSL2 (/dev/dxg)",
		},
		{
			name: "headless server",
			gpu:  Kernel{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			for p, c := range tt.files {
				files[p] = c
			}
			for _, c := range tt.cards {
				card(files, c[0], c[1], c[2] == "vga")
			}
			root := plantHost(t, files)
			r := ReadRoles(root)
			if diff := cmp.Diff(tt.gpu, r.GPU()); diff != "" {
				t.Errorf("GPU() (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.gpu, ReadKernel(root)); diff != "" {
				t.Errorf("ReadKernel disagrees with Roles.GPU (-want +got):\n%s", diff)
			}
			// The hot path's module version is the GPU's module alone.
			wantModule := ""
			if tt.gpu.Kind == KernelNVIDIA {
				wantModule = tt.gpu.Version
			}
			if got := ModuleVersion(root); got != wantModule {
				t.Errorf("ModuleVersion = %q, want %q", got, wantModule)
			}
			got := r.MesaRenders()
			if (tt.mesa == "") != (got == "") || !strings.Contains(got, tt.mesa) {
				t.Errorf("MesaRenders() = %q, want one saying %q", got, tt.mesa)
			}
			if len(r.Cards) != len(tt.cards) {
				t.Errorf("cards %+v, want %d (connectors are no cards)", r.Cards, len(tt.cards))
			}
		})
	}
}

// TestL4TVersion: the release line gives the L4T version; lines that do
// not say give "".
func TestL4TVersion(t *testing.T) {
	for line, want := range map[string]string{
		"R35 (release), REVISION: 3.1, GCID: 32827747": "35.3.1",
		"R36 (release), REVISION: 4.3, GCID: 38968081": "36.4.3",
		"R39 (release), REVISION: 2.0, BOARD: generic": "39.2.0",
		"R32 (release), REVISION: 7.4":                 "32.7.4",
		"R36 (release)":                                "",
		"R36 (release), REVISION: , GCID: 1":           "",
		"R36 (release), REVISION: 3.x":                 "",
		"R36 (release), REVISION: .3":                  "",
		"KERNEL_VARIANT: oot":                          "",
		"":                                             "",
	} {
		if got := (Roles{L4T: line}).L4TVersion(); got != want {
			t.Errorf("L4TVersion(%q) = %q, want %q", line, got, want)
		}
	}
}

// TestTakeVendorsByRole: beside NVIDIA's userspace, Mesa's files are taken
// without --mesa where the host's roles say Mesa renders (WSL2's d3d12,
// nouveau, a display on an integrated GPU), and left out where NVIDIA
// renders (its card drives the display, a Jetson, a headless server);
// MesaOnly leaves NVIDIA's out instead. Before, every host with an NVIDIA
// file left Mesa out ("the host has an NVIDIA driver").
func TestTakeVendorsByRole(t *testing.T) {
	tests := []struct {
		name               string
		files              map[string]string
		cards              [][3]string
		mesaOnly           bool
		wantMesa, wantNVDA bool
		skip               SkipCode
	}{
		{name: "WSL2", files: map[string]string{"dev/dxg": ""}, wantMesa: true, wantNVDA: true},
		{name: "nouveau loaded", files: map[string]string{"sys/module/nouveau/parameters/": ""}, cards: [][3]string{{"card0", "nouveau", "vga"}}, wantMesa: true, wantNVDA: true},
		{name: "hybrid, the iGPU drives the display", files: map[string]string{"sys/module/nvidia/version": "535.261.03\n"}, cards: [][3]string{{"card0", "i915", "vga"}, {"card1", "nvidia", ""}}, wantMesa: true, wantNVDA: true},
		{name: "NVIDIA drives the display", files: map[string]string{"sys/module/nvidia/version": "535.261.03\n"}, cards: [][3]string{{"card0", "amdgpu", ""}, {"card1", "nvidia", "vga"}}, wantNVDA: true, skip: SkipMesaNotTaken},
		{name: "Jetson", files: map[string]string{"etc/nv_tegra_release": orinR36Release, "sys/module/nvgpu/version": "36.3.0\n"}, wantNVDA: true, skip: SkipMesaNotTaken},
		{name: "headless server", files: map[string]string{"sys/module/nvidia/version": "535.261.03\n"}, wantNVDA: true, skip: SkipMesaNotTaken},
		{name: "Mesa only asked for", files: map[string]string{"sys/module/nvidia/version": "535.261.03\n"}, mesaOnly: true, wantMesa: true, skip: SkipNVIDIANotTaken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			for p, c := range tt.files {
				files[p] = c
			}
			for _, c := range tt.cards {
				card(files, c[0], c[1], c[2] == "vga")
			}
			root := plantHost(t, files)
			lib := filepath.Join(root, "lib")
			fixtures.Must(t, os.MkdirAll(filepath.Join(lib, "dri"), 0o755))
			fixtures.FakeStub(t, lib, "libEGL_mesa.so.0", "amd64")
			fixtures.FakeStub(t, filepath.Join(lib, "dri"), "d3d12_dri.so", "amd64")
			fixtures.FakeDriver(t, lib, "535.261.03", "amd64")
			o := &Options{Root: root, Dirs: []string{"/lib"}, MesaOnly: tt.mesaOnly}
			pl, err := Resolve(o)
			fixtures.Must(t, err)
			var mesa, nvidia bool
			for _, f := range pl.Selection.Files {
				if f.CatalogEntry().Mesa {
					mesa = true
				} else {
					nvidia = true
				}
			}
			if mesa != tt.wantMesa || nvidia != tt.wantNVDA {
				t.Errorf("Mesa taken %t, NVIDIA taken %t; want %t, %t", mesa, nvidia, tt.wantMesa, tt.wantNVDA)
			}
			var codes []SkipCode
			for _, s := range pl.Selection.Skipped {
				if s.Code == SkipMesaNotTaken || s.Code == SkipNVIDIANotTaken {
					codes = append(codes, s.Code)
				}
			}
			var want []SkipCode
			switch tt.skip {
			case SkipMesaNotTaken:
				want = []SkipCode{tt.skip, tt.skip} // lib/ and lib/dri/
			case SkipNVIDIANotTaken:
				want = []SkipCode{tt.skip} // lib/
			}
			if diff := cmp.Diff(want, codes); diff != "" {
				t.Errorf("reasons for leaving a vendor out (-want +got):\n%s", diff)
			}
		})
	}
}
