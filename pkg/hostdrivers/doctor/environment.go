package doctor

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"

	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// vendorVars are the variables nixglhost sets that a user may already
// have set, with what their being set does.
var vendorVars = []struct{ name, effect string }{
	{"__GLX_VENDOR_LIBRARY_NAME", ""},
	{"__EGL_VENDOR_LIBRARY_FILENAMES", "it overrides the vendor directories: nixglhost's EGL vendor file is ignored"},
	{"__EGL_VENDOR_LIBRARY_DIRS", "it is kept and nixglhost's directory appended: a vendor listed there is tried first"},
	{"VK_ICD_FILENAMES", "it is kept and nixglhost's ICD appended: the Vulkan loader also offers the drivers listed there"},
	{"VK_DRIVER_FILES", "it is kept and nixglhost's ICD appended: the Vulkan loader also offers the drivers listed there"},
}

// envHazards reports the inherited variables that bear on the driver.
func envHazards(r *Report, env []string, progLibcDir string, nixProg, haveProg bool) {
	for _, k := range []string{"LD_LIBRARY_PATH", "LD_PRELOAD"} {
		if v, ok := hostdrivers.LookupEnv(env, k); ok {
			r.Environment = append(r.Environment, EnvVar{k, v})
		}
	}
	sev := SeverityWarning
	if nixProg {
		sev = SeverityBlocking
	}
	who := "a Nix program"
	if nixProg {
		who = "the program"
	}
	for _, h := range glibcInLibraryPath(env, progLibcDir) {
		r.Findings = append(r.Findings, Finding{sev, TopicEnvironment,
			h + ": " + who + " would load that glibc instead of its own and fail (symbol lookup errors or a crash)",
			"remove it: nixglhost adds the driver's directory by itself"})
	}
	for _, vv := range vendorVars {
		v, ok := hostdrivers.LookupEnv(env, vv.name)
		if !ok {
			continue
		}
		r.Environment = append(r.Environment, EnvVar{vv.name, v})
		effect := vv.effect
		if vv.name == "__GLX_VENDOR_LIBRARY_NAME" {
			if v == "nvidia" {
				continue
			}
			effect = "GLX will use that vendor's library, not NVIDIA's"
		}
		r.Findings = append(r.Findings, Finding{SeverityWarning, TopicEnvironment,
			fmt.Sprintf("%s is already set (%q): %s", vv.name, v, effect), "unset it unless you mean it"})
	}
}

// glibcInLibraryPath returns one description per LD_LIBRARY_PATH directory
// holding glibc family members and per LD_PRELOAD entry naming one,
// except the program's own glibc directory. It reads directory entries
// only.
func glibcInLibraryPath(env []string, ownDir string) []string {
	var out []string
	lp, _ := hostdrivers.LookupEnv(env, "LD_LIBRARY_PATH")
	for _, d := range strings.Split(lp, ":") {
		if d == "" || !filepath.IsAbs(d) || d == ownDir {
			continue
		}
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		var names []string
		for _, e := range ents {
			if n := e.Name(); catalog.IsGlibcFamily(n) && strings.Contains(n, ".so.") {
				names = append(names, n)
			}
		}
		if len(names) > 0 {
			if len(names) > 3 {
				names = append(names[:3], "...")
			}
			out = append(out, "LD_LIBRARY_PATH entry "+d+" holds "+strings.Join(names, ", "))
		}
	}
	pre, _ := hostdrivers.LookupEnv(env, "LD_PRELOAD")
	for _, p := range strings.FieldsFunc(pre, func(c rune) bool { return c == ':' || c == ' ' || c == '\t' }) {
		if catalog.IsGlibcFamily(path.Base(p)) && filepath.Dir(p) != ownDir {
			out = append(out, "LD_PRELOAD names "+p+", a glibc library")
		}
	}
	return out
}
