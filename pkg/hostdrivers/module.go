package hostdrivers

// This file reads the loaded NVIDIA kernel module's version, which the hot
// path checks against its index.

import (
	"strings"

	"github.com/nixglhost/nixglhost/internal/rawfile"
	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// ModuleVersion returns the version of the loaded NVIDIA kernel module under
// root (/sys/module/nvidia/version, else /proc/driver/nvidia/version) that
// drives the GPU, or "" when none is loaded or the loaded one drives the
// display only (a Jetson before L4T R38, Roles.DisplayOnlyNVIDIA): its
// version, the L4T release, picks no userspace driver and matches none.
// On the hot path; where a module is loaded it costs a stat of
// /sys/module/nvgpu and an open of /etc/nv_tegra_release, which desktops
// lack.
func ModuleVersion(root string) string {
	v, _ := nvidiaModule(root)
	if v != "" && displayOnlyModule(root, v) {
		return ""
	}
	return v
}

// nvidiaModule returns the loaded nvidia module's version and the file it
// was read from (inside root), or "", "".
func nvidiaModule(root string) (version, source string) {
	for _, src := range []string{"/sys/module/nvidia/version", "/proc/driver/nvidia/version"} {
		b, err := rawfile.ReadFile(ldpath.HostPath(root, src), 0, 64<<10)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if src != "/sys/module/nvidia/version" {
			v = ParseProcVersion(string(b))
		}
		if v != "" {
			return v, src
		}
	}
	return "", ""
}

// ParseProcVersion returns the kernel module version that the text of
// /proc/driver/nvidia/version gives ("NVRM version: NVIDIA UNIX x86_64
// Kernel Module  535.261.03  ..." or "... Kernel Module for aarch64
// 540.4.0 ..."), or "". The first "Kernel Module", optionally followed by
// "for ARCH", then blanks, then a version of two or three numeric parts
// followed by a blank, wins. (Hand-written: a regexp would link the regexp
// package's initialisers into every launch.)
func ParseProcVersion(text string) string {
	for i := 0; ; {
		j := strings.Index(text[i:], "Kernel Module")
		if j < 0 {
			return ""
		}
		i += j + len("Kernel Module")
		rest := text[i:]
		if after, ok := skipFor(rest); ok {
			if v, ok := versionAfterSpace(after); ok {
				return v
			}
		}
		if v, ok := versionAfterSpace(rest); ok {
			return v
		}
	}
}

// isSpace is RE2's \s: tab, newline, form feed, carriage return, space.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

// spaces returns the length of the run of blanks at the start of s.
func spaces(s string) int {
	n := 0
	for n < len(s) && isSpace(s[n]) {
		n++
	}
	return n
}

// skipFor skips "<blanks>for<blanks><word>" at the start of s.
func skipFor(s string) (string, bool) {
	n := spaces(s)
	if n == 0 || !strings.HasPrefix(s[n:], "for") {
		return "", false
	}
	s = s[n+len("for"):]
	n = spaces(s)
	if n == 0 {
		return "", false
	}
	s = s[n:]
	w := 0
	for w < len(s) && !isSpace(s[w]) {
		w++
	}
	if w == 0 {
		return "", false
	}
	return s[w:], true
}

// versionAfterSpace reads "<blanks>N.N[.N]<blank>" at the start of s.
func versionAfterSpace(s string) (string, bool) {
	n := spaces(s)
	if n == 0 {
		return "", false
	}
	s = s[n:]
	digits := func(at int) int {
		k := at
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		return k
	}
	e1 := digits(0)
	if e1 == 0 || e1 >= len(s) || s[e1] != '.' {
		return "", false
	}
	e2 := digits(e1 + 1)
	if e2 == e1+1 {
		return "", false
	}
	// A third part, when it is followed by a blank; else two parts.
	if e2 < len(s) && s[e2] == '.' {
		if e3 := digits(e2 + 1); e3 > e2+1 && e3 < len(s) && isSpace(s[e3]) {
			return s[:e3], true
		}
	}
	if e2 < len(s) && isSpace(s[e2]) {
		return s[:e2], true
	}
	return "", false
}
