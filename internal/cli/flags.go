// Package cli describes nixglhost's command line as data, each flag once, and
// generates the shell completions (bash, zsh, fish) and the man page from it.
//
// It is the one place a flag is described: cmd/nixglhost registers its
// flags from Flags (binding each name to a field of its configuration; a
// test there checks that every flag is bound) and prints Usage, and the
// completions and the man page are generated from it. To add a flag, add it
// here and bind it in cmd/nixglhost's parseArgs.
package cli

import "strings"

// Complete says what a flag's argument is, for the shells' completion.
type Complete int

const (
	// None means the argument is free text: no completion is offered.
	None Complete = iota
	// Dir means the argument is a directory.
	Dir
	// File means the argument is a file.
	File
	// List means the argument is a comma-separated list of Values.
	List
)

// Flag is one command-line flag. The standard flag package accepts one or
// two dashes before any name; Short names are shown with one, Long names with
// two.
type Flag struct {
	// Short is the one-letter name ("d"), or "".
	Short string
	// Long is the long name without dashes ("driver-root"), or "".
	Long string
	// Arg is the argument's name as the usage shows it ("DIR"); "" for a
	// boolean flag.
	Arg string
	// Complete says what Arg is.
	Complete Complete
	// Values are the words Arg is made of, for List.
	Values []string
	// Repeatable says the flag may be given more than once.
	Repeatable bool
	// Exits says the flag prints something and exits: nothing else is
	// meaningful beside it (completion offers nothing more after it).
	Exits bool
	// Help is the one-line description the completions show.
	Help string
	// Doc is the man page's paragraph; Help when empty.
	Doc string
	// Usage is the flag's text in the usage's flag list, wrapped to fit
	// beside the spec (lines joined by a newline); Help when empty.
	Usage string
	// Default is the argument's value when the flag is not given.
	Default string
}

// Flags is every flag of nixglhost, in the order the usage text lists them.
var Flags = []Flag{
	{
		Short: "d", Arg: "DIR", Complete: Dir, Repeatable: true,
		Help: "driver directory to use (repeatable, in priority order)",
		Doc: "Use the NVIDIA driver in DIR. Repeat it to give several directories, in priority " +
			"order. No other directory is searched for the driver then. A forward-compatibility " +
			"libcuda (cuda_compat) given this way goes first, and only when the host's kernel " +
			"driver can use it.",
		Usage: "driver directory to use (repeatable, in priority order);\nno other directory is searched for the driver then",
	},
	{
		Short: "p",
		Help:  "print the library directory to add, and exit",
		Doc: "Prepare the cache entry and print its library directory, for a caller to put on " +
			"LD_LIBRARY_PATH itself; then exit. With no driver found it prints nothing and exits 1, " +
			"so that no empty element (the current directory) reaches a library path. " +
			"A last resort: see NOTES.",
	},
	{
		Long: "print-env",
		Help: "print the environment to set as shell exports, and exit",
		Doc: "Prepare the cache entry and print every variable nixglhost would set, as POSIX " +
			"shell export lines; then exit. A last resort: see NOTES.",
	},
	{
		Long: "doctor",
		Help: "explain what was found and why PROGRAM would fail, and exit",
		Doc: "Explain what was found where, what was chosen and why, and what would make " +
			"PROGRAM fail; then exit, with status 1 when something blocks. Given with " +
			"--link-run-opengl-driver, --cdi-spec or --nix-pre-build-hook (and their flags), it " +
			"explains the entry that mode would build instead, and changes nothing.",
		Usage: "explain what was found and why PROGRAM would fail, and\nexit (1 when something blocks); with a root mode's flags,\nthe entry that mode would build",
	},
	{
		Long:  "json",
		Help:  "with --print-env, --doctor or a cache command: print a JSON object instead",
		Doc:   "With --print-env, --doctor, --cache-list, --cache-gc or --cache-clear: print one JSON object instead, for tools.",
		Usage: "with --print-env, --doctor, --cache-list, --cache-gc or\n--cache-clear: print a JSON object instead",
	},
	{
		Long: "mesa",
		Help: "take Mesa's drivers (Intel, AMD, llvmpipe) beside NVIDIA's",
		Doc: "Take Mesa's drivers (Intel, AMD, nouveau, llvmpipe and lavapipe) beside NVIDIA's, for " +
			"a hybrid laptop or an NVIDIA compute card beside an integrated GPU. Without it, Mesa's " +
			"drivers are taken only where they render: the host has no NVIDIA driver, or it is WSL2, " +
			"or nouveau is loaded, or the display runs on a GPU Mesa drives.",
		Usage: "take Mesa's drivers (Intel, AMD, llvmpipe) beside\nNVIDIA's; by default only where Mesa renders",
	},
	{
		Long: "mesa-only",
		Help: "take Mesa's drivers alone, leaving NVIDIA's out",
		Doc: "Take Mesa's drivers alone and leave NVIDIA's out, as nixGLIntel does: for a program " +
			"that must render on the integrated GPU, or with llvmpipe, on a machine with NVIDIA's " +
			"driver. It wins over --mesa.",
	},
	{
		Long: "prime",
		Help: "render on the NVIDIA GPU of a hybrid laptop (PRIME render offload)",
		Doc: "Set NVIDIA's PRIME render offload variables (__NV_PRIME_RENDER_OFFLOAD=1, " +
			"__GLX_VENDOR_LIBRARY_NAME=nvidia, __VK_LAYER_NV_optimus=NVIDIA_only), so that GLX and " +
			"Vulkan render on the NVIDIA GPU while the display runs on another one. Without it, GLX " +
			"asks the X server which vendor library to load: right on NVIDIA's X server, on Mesa's, " +
			"on remote X and on Xvfb.",
		Usage: "render on the NVIDIA GPU of a hybrid laptop (PRIME\nrender offload); otherwise GLX asks the X server",
	},
	{
		Long: "driver-root", Arg: "DIR", Complete: Dir,
		Help: "the host tree to search (default /)",
		Doc: "Search the host tree rooted at DIR instead of /: discovery, ld.so.conf and " +
			"ld.so.cache are read below it, and -d paths are taken inside it.",
		Usage:   "the host tree to search (default /)",
		Default: "/",
	},
	{
		Long: "cache-dir", Arg: "DIR", Complete: Dir,
		Help: "where cache entries live",
		Doc: "Keep cache entries in DIR. The default is $XDG_CACHE_HOME/nixglhost, " +
			"then ~/.cache/nixglhost.",
		Usage: "where cache entries live\n(default $XDG_CACHE_HOME/nixglhost, ~/.cache/nixglhost)",
	},
	{
		Long: "cache-list",
		Help: "list the cache entries (driver, mode, size, built, last used, state), and exit",
		Doc: "List the cache entries, then exit: each one's key, driver version, the mode that built it " +
			"(wrapper, or self-contained for system mode, the pre-build hook and --cdi-spec), size (its own " +
			"files; its links to the host's files take none), when it was built and last used, whether " +
			"its host files are unchanged (current) or not (stale), what uses it, and whether --cache-gc " +
			"would remove it. Last use is the access time the file system keeps, since a launch writes " +
			"nothing to record one: to within a day under relatime (the usual default), unknown under " +
			"noatime. Acts on --cache-dir, else the cache and its fallbacks; as root, the system cache too.",
		Usage: "list the cache entries (key, driver, mode, size, when\nbuilt and last used, current or stale), and exit",
	},
	{
		Long: "cache-gc",
		Help: "remove stale cache entries and abandoned builds now, saying why, and exit",
		Doc: "Run the garbage collector a cold launch runs, now, and say what it removes and why: entries " +
			"whose host driver files changed or are gone (a driver upgrade) once they are a day old, " +
			"entries another machine built once they are a month old, and temporary directories and " +
			"locks of launches that died. Then exit. Same caches as --cache-list.",
		Usage: "remove stale cache entries (a day after a driver\nupgrade) and abandoned builds now, saying why, and exit",
	},
	{
		Long: "cache-clear",
		Help: "remove every cache entry that nothing uses, and exit",
		Doc: "Remove every cache entry nixglhost made and its own files (indexes, locks, leftovers), then " +
			"exit. An entry in use is kept and named: one RUN/opengl-driver points to, one a CDI spec " +
			"mounts, one a running process or a Nix build's sandbox uses. Anything nixglhost did not make " +
			"is left alone and named, and CACHEDIR.TAG stays; a directory without nixglhost's " +
			"CACHEDIR.TAG is refused. Same caches as --cache-list.",
		Usage: "remove every cache entry that nothing uses (not one\nRUN/opengl-driver points to), and exit; leaves alone\nwhat nixglhost did not make",
	},
	{
		Long: "link-run-opengl-driver",
		Help: "(root) point /run/opengl-driver at a self-contained system cache entry",
		Doc: "As root: build a self-contained entry in the system cache (--cache-dir, default " +
			"/var/cache/nix-gl-host) and point RUN/opengl-driver at it, so every Nix program " +
			"finds the driver through its own DT_RUNPATH, with no wrapper. A RUN/opengl-driver " +
			"that nixglhost did not make (NixOS's) is left alone. /run is a tmpfs: repeat it at boot.",
		Usage: "(root) point RUN/opengl-driver at a self-contained entry\nin the system cache (--cache-dir, default\n/var/cache/nix-gl-host): every Nix program then finds\nthe driver with no wrapper; refuses a RUN/opengl-driver\nit did not make (NixOS's)",
	},
	{
		Long:  "unlink-run-opengl-driver",
		Help:  "(root) remove /run/opengl-driver if nixglhost made it",
		Doc:   "As root: remove RUN/opengl-driver if nixglhost made it.",
		Usage: "(root) remove RUN/opengl-driver if nixglhost made it",
	},
	{
		Long: "cdi-spec",
		Help: "(root) write a CDI spec giving containers the GPU with no wrapper",
		Doc: "As root: build the self-contained entry in the system cache and write the Container " +
			"Device Interface spec nixglhost.org/gpu (CDI-DIR/nixglhost.org-gpu.json): the entry " +
			"mounted read-only at /run/opengl-driver, the host files it links to, and the GPU device " +
			"nodes, per GPU (=0, =GPU-<uuid>) and =all. Podman, Docker 25+, containerd and CRI-O " +
			"read it. A file there nixglhost did not write is left alone.",
		Usage: "(root) write the CDI spec nixglhost.org/gpu (devices =0,\n=GPU-<uuid>, =all) into --cdi-dir: containers get the\nentry at /run/opengl-driver and the GPU, no wrapper",
	},
	{
		Long: "cdi-dir", Arg: "DIR", Complete: Dir,
		Help:    "with --cdi-spec: the CDI directory (default /etc/cdi; /var/run/cdi for one boot)",
		Doc:     "With --cdi-spec: the directory the spec goes to (default /etc/cdi; /var/run/cdi holds it for one boot).",
		Usage:   "with --cdi-spec: the CDI directory (default /etc/cdi;\n/var/run/cdi for one boot)",
		Default: "/etc/cdi",
	},
	{
		Long: "run-dir", Arg: "DIR", Complete: Dir,
		Help:    "RUN for the two above (default /run)",
		Doc:     "The directory RUN that holds opengl-driver for the two flags above (default /run).",
		Usage:   "RUN for the two above (default /run)",
		Default: "/run",
	},
	{
		Long: "nix-pre-build-hook",
		Help: "act as Nix's pre-build-hook for derivations that need a GPU",
		Doc: "Act as Nix's pre-build-hook (also when run as nixglhost-pre-build-hook): for a " +
			"derivation DRV whose requiredSystemFeatures name a GPU feature, print the sandbox " +
			"paths of the driver and the GPU devices.",
		Usage: "act as Nix's pre-build-hook (also when run as\nnixglhost-pre-build-hook): for a derivation DRV whose\nrequiredSystemFeatures name a GPU feature, print the\nsandbox paths of the driver and the GPU devices",
	},
	{
		Long: "hook-features", Arg: "LIST", Complete: List,
		Values: []string{"cuda", "opengl", "nvidia-gpu", "rocm"},
		Help:   "with --nix-pre-build-hook: the features that get the GPU",
		Doc: "With --nix-pre-build-hook: the comma-separated system features that get the GPU " +
			"(default $NIXGLHOST_HOOK_FEATURES, else cuda,opengl,nvidia-gpu,rocm; rocm gets the device " +
			"nodes only).",
		Usage: "with --nix-pre-build-hook: the features that get the\nGPU (default $NIXGLHOST_HOOK_FEATURES, else\ncuda,opengl,nvidia-gpu,rocm)",
	},
	{
		Short: "v", Long: "verbose",
		Help: "trace every decision to stderr (as DEBUG=1 does)",
		Doc:  "Trace every decision to stderr: where it looked, what it found and chose, and why.",
	},
	{
		Long: "version", Exits: true,
		Help: "print the version, commit, Go version and build flags, and exit",
		Doc: "Print the release version and the commit it was built from, then the Go version, the " +
			"target and the build flags the Go toolchain recorded, and exit.",
	},
	{
		Short: "h", Long: "help", Exits: true,
		Help:  "print the usage and exit",
		Doc:   "Print the usage and exit.",
		Usage: "print this help and exit",
	},
}

// Names returns the flag's spellings as the usage shows them: "-d", or
// "-v" and "--verbose".
func (f Flag) Names() []string {
	var n []string
	if f.Short != "" {
		n = append(n, "-"+f.Short)
	}
	if f.Long != "" {
		n = append(n, "--"+f.Long)
	}
	return n
}

// Spec returns the flag as the usage's flag list writes it: "-v, --verbose",
// "--driver-root DIR".
func (f Flag) Spec() string {
	s := strings.Join(f.Names(), ", ")
	if f.Arg != "" {
		s += " " + f.Arg
	}
	return s
}

// Text returns Doc, or Help when Doc is empty.
func (f Flag) Text() string {
	if f.Doc != "" {
		return f.Doc
	}
	return f.Help
}

// argFlags returns the spellings, with one and two dashes, of the flags that
// take an argument: a completer must skip the word after them.
func argFlags(flags []Flag) []string {
	var n []string
	for _, f := range flags {
		if f.Arg == "" {
			continue
		}
		for _, name := range []string{f.Short, f.Long} {
			if name != "" {
				n = append(n, "-"+name, "--"+name)
			}
		}
	}
	return n
}
