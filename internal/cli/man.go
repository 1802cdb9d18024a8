package cli

import (
	"fmt"
	"io"
	"strings"
)

// Synopsis is the command's forms, as the usage's first lines give them:
// one for each mode but --help and --version (cmd/nixglhost's
// TestSynopsisHasEveryMode checks it).
var Synopsis = []string{
	"[-d DIR]... [flags] [--] PROGRAM [ARGS...]",
	"[-d DIR]... -p [PROGRAM]",
	"[-d DIR]... --print-env [--json] [PROGRAM]",
	"[-d DIR]... --doctor [--json] [PROGRAM]",
	"[-d DIR]... --doctor [--json] --link-run-opengl-driver | --cdi-spec | --nix-pre-build-hook",
	"[--cache-dir DIR] --cache-list | --cache-gc | --cache-clear [--json]",
	"[-d DIR]... --link-run-opengl-driver [--run-dir DIR]",
	"--unlink-run-opengl-driver [--run-dir DIR]",
	"[-d DIR]... --cdi-spec [--cdi-dir DIR]",
	"[-d DIR]... --nix-pre-build-hook [--hook-features LIST] DRV [SANDBOX]",
}

// Section is a man page section beyond NAME, SYNOPSIS and OPTIONS: a title
// and paragraphs. A paragraph that starts with a word and a tab is a tagged
// item (the word is the tag).
type Section struct {
	Title string
	Paras []string
}

// Description is what the man page says before OPTIONS.
var Description = []string{
	"nixglhost runs PROGRAM, a program built with Nix, with the host's NVIDIA driver. " +
		"A Nix program does not search the host's library directories, so it finds no driver " +
		"on a distribution other than NixOS; putting the host's library directory on " +
		"LD_LIBRARY_PATH instead loads the host's libc and the rest of its libraries under the " +
		"program's own, which breaks it.",
	"nixglhost finds the driver, copies or links only the driver's own libraries into a " +
		"private cache entry laid out like NixOS's /run/opengl-driver (the generic host " +
		"libraries the driver needs go into a hidden deps/ directory reached only by the " +
		"driver), appends the entry's lib/ to LD_LIBRARY_PATH, points the GLX, EGL, Vulkan, " +
		"OpenCL and GBM loaders at its vendor files, and executes PROGRAM in its own place: " +
		"its arguments, environment, exit status and signals are its own.",
	"The host's libc is never exposed. The host is never written to. A cache entry is " +
		"built in a temporary directory and renamed into place, keyed by the driver files' " +
		"identities, so a driver upgrade makes a new entry and concurrent launches never see " +
		"a half-built one.",
}

// Sections are the man page's sections after OPTIONS.
var Sections = []Section{
	{"ENVIRONMENT", []string{
		"DEBUG\tWhen set to anything but empty or 0, trace every decision to stderr, as -v does.",
		"LD_LIBRARY_PATH\tKept in front: the cache entry's lib/ is appended. nixglhost warns " +
			"when an entry in it holds a libc.so.6. It is also a discovery source for the driver.",
		"XDG_CACHE_HOME, HOME\tWhere the cache lives when --cache-dir is not given.",
		"NIXGLHOST_HOOK_FEATURES\tThe default of --hook-features.",
		"NIX_LD, NIX_LD_LIBRARY_PATH\tFor a program whose interpreter is not in the Nix store, " +
			"on NixOS with nix-ld, the entry goes on NIX_LD_LIBRARY_PATH instead, so it does " +
			"not leak into the program's children.",
	}},
	{"EXIT STATUS", []string{
		"PROGRAM's own once it runs; 2 for a usage error; 1 for any other failure before " +
			"PROGRAM starts, with a message naming the file or flag.",
	}},
	{"CACHE", []string{
		"A cache directory is marked as nixglhost's by a CACHEDIR.TAG (which also tells backup tools " +
			"to skip it); nixglhost refuses a directory that holds files it did not make. In it, nixglhost " +
			"removes only what it made: entries whose manifest names their key, and its own indexes, " +
			"locks and temporary directories. Anything else there is never read, changed or removed.",
		"A cold launch removes entries whose host driver files changed or are gone (a driver upgrade) " +
			"once they are a day old, and what launches that died left behind; --cache-gc does the same " +
			"now. --cache-list shows every entry, and --cache-clear removes every entry that nothing uses. " +
			"As root they act on the system cache too.",
	}},
	{"FILES", []string{
		"$XDG_CACHE_HOME/nixglhost/, ~/.cache/nixglhost/\tThe cache entries. Each one has " +
			"lib/, deps/, share/, etc/ and manifest.json; removing the directory is always safe.",
		"/var/cache/nix-gl-host/\tThe system cache, for --link-run-opengl-driver.",
		"/run/opengl-driver\tWhere every Nix program looks for the driver (NixOS fills it); " +
			"--link-run-opengl-driver points it at a cache entry.",
	}},
	{"NOTES", []string{
		"-p and --print-env are the last resort: a library path set in a shell applies to " +
			"every program started from it, Nix-built or not, and stays stale when the driver " +
			"is upgraded. Prefer running each program through nixglhost.",
	}},
	{"EXAMPLES", []string{
		"nixglhost -- python train.py\tRun a Nix-built Python with CUDA.",
		"nixglhost -d /usr/lib/aarch64-linux-gnu/tegra -d /usr/lib/aarch64-linux-gnu/tegra-egl -- ./app\t" +
			"Use a Jetson's driver directories.",
		"eval \"$(nixglhost --print-env)\"\tSet the environment in the current shell.",
	}},
	{"SEE ALSO", []string{"ld.so(8), ldconfig(8), nix(1)"}},
}

// roff escapes s for a troff text line.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// WriteMan writes the man page, section 1, in troff (man macros). It carries
// version and no date, so two builds of one version give the same bytes.
func WriteMan(w io.Writer, flags []Flag, version string) error {
	var b strings.Builder
	b.WriteString(".\\\" Generated by internal/cli/gen from internal/cli; do not edit.\n")
	fmt.Fprintf(&b, ".TH NIXGLHOST 1 \"\" %q \"User Commands\"\n", "nixglhost "+version)
	b.WriteString(".SH NAME\nnixglhost \\- run a Nix\\-built program with the host's GPU driver\n")
	b.WriteString(".SH SYNOPSIS\n")
	for i, s := range Synopsis {
		if i > 0 {
			b.WriteString(".br\n")
		}
		fmt.Fprintf(&b, ".B nixglhost\n%s\n", roff(s))
	}
	b.WriteString(".SH DESCRIPTION\n")
	for i, p := range Description {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		b.WriteString(roff(p) + "\n")
	}
	b.WriteString(".SH OPTIONS\n")
	for _, f := range flags {
		b.WriteString(".TP\n")
		var names []string
		for _, n := range f.Names() {
			names = append(names, `\fB`+roff(n)+`\fR`)
		}
		tag := strings.Join(names, ", ")
		if f.Arg != "" {
			tag += ` \fI` + roff(f.Arg) + `\fR`
		}
		b.WriteString(tag + "\n" + roff(f.Text()) + "\n")
	}
	for _, s := range Sections {
		fmt.Fprintf(&b, ".SH %s\n", s.Title)
		for i, p := range s.Paras {
			if tag, text, ok := strings.Cut(p, "\t"); ok {
				fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s\n", roff(tag), roff(text))
				continue
			}
			if i > 0 {
				b.WriteString(".PP\n")
			}
			b.WriteString(roff(p) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
