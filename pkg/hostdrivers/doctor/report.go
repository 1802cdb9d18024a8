package doctor

import (
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers/catalog"
)

// Severity says how bad a finding is.
type Severity string

// Finding severities.
const (
	// SeverityBlocking marks a finding that will make the program fail.
	SeverityBlocking Severity = "blocking"
	// SeverityWarning marks a finding that may make it misbehave.
	SeverityWarning Severity = "warning"
)

// Topic names what a finding is about.
type Topic string

// Finding topics: the JSON contract's values.
const (
	TopicDriver       Topic = "driver"       // no usable driver, or the plan could not be resolved
	TopicModule       Topic = "module"       // the kernel driver against the userspace driver
	TopicCompat       Topic = "cuda_compat"  // a cuda_compat libcuda's note
	TopicArchitecture Topic = "architecture" // the program's ELF class or machine against the driver's
	TopicInterpreter  Topic = "interpreter"  // the program's loader
	TopicGlibc        Topic = "glibc"        // GLIBC_ versions the driver needs beyond the program's
	TopicLibstdcxx    Topic = "libstdc++"    // GLIBCXX_/CXXABI_ versions likewise
	TopicGPU          Topic = "gpu"          // a GPU whose userspace driver the entry lacks
	TopicMesa         Topic = "mesa"         // Mesa's private libraries and the program's
	TopicEnvironment  Topic = "environment"  // inherited variables that bear on the driver
	TopicCache        Topic = "cache"        // the cache directory
)

// Finding is one diagnosis.
type Finding struct {
	// Severity is SeverityBlocking or SeverityWarning.
	Severity Severity `json:"severity"`
	// Topic names what the finding is about (the Topic constants).
	Topic Topic `json:"topic"`
	// Message says what is wrong, naming the files and versions.
	Message string `json:"message"`
	// Fix says what to do about it; may be empty.
	Fix string `json:"fix,omitempty"`
}

// Report is the doctor's whole answer; --doctor --json prints it as JSON.
// Every slice field is present (possibly empty) in the JSON; Program is
// absent when no PROGRAM was given.
type Report struct {
	// Root is the host tree that was searched ("/" unless --driver-root).
	Root string `json:"root"`
	// Blocking counts the findings of SeverityBlocking; nixglhost --doctor
	// exits 1 when it is not zero.
	Blocking int `json:"blocking"`
	// Findings are the diagnoses, blocking ones first.
	Findings []Finding `json:"findings"`
	// Dirs are the directories searched, in priority order.
	Dirs []DirReport `json:"dirs"`
	// Skipped are the directories and files left out, with the reason:
	// "missing", "unreadable: ...", "not a directory", "same directory
	// as ...", "wrong architecture: ...", "driver version ... not chosen".
	Skipped []hostdrivers.Skipped `json:"skipped"`
	// Module is the loaded kernel module.
	Module ModuleReport `json:"module"`
	// Driver is the userspace driver chosen and the others seen.
	Driver DriverReport `json:"driver"`
	// Compat lists the cuda_compat libcuda files found in -d directories.
	Compat []CompatReport `json:"cuda_compat"`
	// APIs says, per API in APIs() order, whether the driver provides it.
	APIs []APIReport `json:"apis"`
	// Capabilities is the per-API table as users name the APIs: library
	// found or not, vendor file found, made or missing, and the outcome.
	Capabilities []CapabilityReport `json:"capabilities"`
	// GPUs are the GPUs of /sys/class/drm, with the userspace drivers
	// each needs and whether the entry holds them.
	GPUs []GPUReport `json:"gpus"`
	// Program describes PROGRAM, when one was given.
	Program *ProgramReport `json:"program,omitempty"`
	// Environment lists the inherited variables that bear on the driver
	// (LD_LIBRARY_PATH, LD_PRELOAD and the vendor variables), when set.
	Environment []EnvVar `json:"environment"`
	// Cache describes the cache directory.
	Cache CacheReport `json:"cache"`
	// Companion is the 32-bit companion entry, when the mode makes one
	// and the program is x86-64.
	Companion *CompanionReport `json:"companion,omitempty"`
	// Mode names the mode whose plan this is ("launch", "system",
	// "hook", "cdi").
	Mode string `json:"mode"`
}

// DirReport is one directory searched for driver files.
type DirReport struct {
	// Dir is the directory, inside the root.
	Dir string `json:"dir"`
	// Origin is the discovery source that named it (see Source.Origin).
	Origin hostdrivers.Origin `json:"origin"`
	// DriverFiles counts the distinct driver files found there (soname
	// links to one file count once), its vdpau/ and gbm/ included.
	DriverFiles int `json:"driver_files"`
	// Used counts those that went into the selection.
	Used int `json:"used"`
	// Note says why nothing there is used ("no driver files", "wrong
	// architecture: ...", "driver version ... not chosen ..."), or "".
	Note string `json:"note,omitempty"`
}

// ModuleReport is the loaded GPU kernel module: nvidia, Jetson's nvgpu
// (with its L4T release) or WSL2's dxgkrnl, as hostdrivers.ReadKernel
// finds it for the launch.
type ModuleReport = hostdrivers.Kernel

// DriverReport is the userspace driver chosen.
type DriverReport struct {
	// Version is the chosen driver version ("" for an unversioned driver).
	Version string `json:"version"`
	// Reason says why it was chosen.
	Reason string `json:"reason"`
	// Versions lists every version seen, in discovery order.
	Versions []VersionSeen `json:"versions"`
	// Files counts the files chosen.
	Files int `json:"files"`
	// Class and Machine are the driver files' ELF class and machine.
	Class   string `json:"class,omitempty"`
	Machine string `json:"machine,omitempty"`
	// Missing lists the libraries some chosen file loads that the host
	// lacks (optional ones are common: a headless server has no X11).
	Missing []hostdrivers.Skipped `json:"missing"`
}

// VersionSeen is one driver version found on the host.
type VersionSeen struct {
	Version string `json:"version"`
	// Dirs are the directories holding files of that version.
	Dirs []string `json:"dirs"`
	// Chosen is true for the version the selection uses.
	Chosen bool `json:"chosen"`
}

// CompatReport is a CUDA forward-compatibility libcuda (cuda_compat): a
// newer libcuda meant to run on an older kernel module. Its ELF note section
// ".note.cuda.fwd_compatibility" holds one note, owner "NVIDIA
// Corporation", whose descriptor is JSON such as {"Format": 1,
// "CUDA Version": "12.4", "Driver": [470, 535], "Device": [...]}: Driver
// lists the kernel module branches (majors) it supports. This is the
// format NVIDIA's container toolkit reads; it is assumed, not documented by
// NVIDIA.
type CompatReport struct {
	// Path is the libcuda file, inside the root.
	Path string `json:"path"`
	// Version is the driver version of its file name.
	Version string `json:"version"`
	// CUDA is the CUDA version the note names.
	CUDA string `json:"cuda,omitempty"`
	// Branches are the kernel module branches the note allows.
	Branches []int `json:"branches"`
	// Usable says whether the loaded module's branch is among them.
	Usable bool `json:"usable"`
	// Chosen says whether the selection uses it.
	Chosen bool `json:"chosen"`
	// Reason explains Usable.
	Reason string `json:"reason"`
}

// APIReport says whether the driver provides one API.
type APIReport struct {
	API       catalog.API `json:"api"`
	Available bool        `json:"available"`
	// Files are the chosen driver files serving it, inside the root.
	Files []string `json:"files"`
	// Data are the vendor data files (JSON, ICD) for it, inside the root.
	Data []string `json:"data"`
	// Made are the vendor files the entry will get from nixglhost because
	// the host has none for a library it holds (their place in the entry).
	Made []string `json:"made,omitempty"`
	// Backends are the backends in lib/'s subdirectories serving it
	// ("gbm/nvidia-drm_gbm.so"), relative to lib/.
	Backends []string `json:"backends,omitempty"`
}

// ProgramReport describes PROGRAM as the loader will see it.
type ProgramReport struct {
	// Path is PROGRAM resolved through PATH.
	Path string `json:"path"`
	// ELF is the ELF file that runs (a script's interpreter), or "" when
	// none was found.
	ELF string `json:"elf"`
	// Class and Machine are the ELF file's class and machine.
	Class   string `json:"class,omitempty"`
	Machine string `json:"machine,omitempty"`
	// Interp is its PT_INTERP, "" for a static program.
	Interp string `json:"interp,omitempty"`
	// InterpKind is "nix-store", "fhs" or "static".
	InterpKind string `json:"interp_kind"`
	// NixLD is true for an FHS program that nix-ld serves.
	NixLD bool `json:"nix_ld"`
	// Libc is the libc.so.6 beside the interpreter, and Glibc the highest
	// GLIBC_x.y it defines ("" when unknown).
	Libc  string `json:"libc,omitempty"`
	Glibc string `json:"glibc,omitempty"`
	// DriverGlibc is the highest GLIBC_x.y the chosen driver files and
	// their hidden dependencies need, and DriverGlibcBy the file needing it.
	DriverGlibc   string `json:"driver_glibc,omitempty"`
	DriverGlibcBy string `json:"driver_glibc_by,omitempty"`
	// GlibcTooNew lists the files needing a version the program's glibc
	// lacks.
	GlibcTooNew []VersionProblem `json:"glibc_too_new"`
	// Libstdcxx is the libstdc++.so.6 the program loads itself, "" when it
	// loads none (then the driver's comes from the host, hidden), and
	// Glibcxx the highest GLIBCXX_ version it defines.
	Libstdcxx string `json:"libstdcxx,omitempty"`
	Glibcxx   string `json:"glibcxx,omitempty"`
	// CXXTooNew lists the files needing a GLIBCXX_ or CXXABI_ version the
	// program's libstdc++ lacks.
	CXXTooNew []VersionProblem `json:"cxx_too_new"`
}

// VersionProblem is a symbol version a file needs and the program's
// runtime lacks.
type VersionProblem struct {
	// File is the driver file or hidden dependency, inside the root.
	File string `json:"file"`
	// Dependency is true for a hidden dependency (deps/).
	Dependency bool `json:"dependency"`
	// Library is the library the version is needed from ("libc.so.6").
	Library string `json:"library"`
	// Version is the highest missing version ("GLIBC_2.34").
	Version string `json:"version"`
	// Symbols are (some of) the symbols bound to that version, demangled.
	Symbols []string `json:"symbols"`
}

// EnvVar is an inherited environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CacheReport describes the cache directory.
type CacheReport struct {
	// Dir is the cache directory.
	Dir string `json:"dir"`
	// Exists says whether it exists yet.
	Exists bool `json:"exists"`
	// Entries counts the entries in it, Bytes their size on disk
	// (symlinks to host files count as links, not as the files).
	Entries int   `json:"entries"`
	Bytes   int64 `json:"bytes"`
	// Writable says whether nixglhost can build entries there (for a
	// missing directory: whether it can be created).
	Writable bool `json:"writable"`
	// Entry is the entry this host's driver maps to, and Built whether it
	// exists already.
	Entry string `json:"entry,omitempty"`
	Built bool   `json:"built"`
	// Refused is why the launch will not use the directory at all (the
	// check Prepare makes: another owner, writable by others, a symbolic
	// link), or "".
	Refused string `json:"refused,omitempty"`
}

// DoctorOptions says what the doctor looks at besides the driver.
type DoctorOptions struct {
	// ProgramPath is PROGRAM resolved through PATH, "" for none.
	ProgramPath string
	// Program is the ELF file that runs for it (a script's interpreter),
	// "" when there is none.
	Program string
	// NixLD says whether nix-ld serves FHS programs here.
	NixLD bool
	// StoreDir is the Nix store ("/nix/store" when empty).
	StoreDir string
	// Environ is the inherited environment (as os.Environ).
	Environ []string
	// CacheDir is the cache directory, "" to skip the cache checks.
	CacheDir string
	// Mode names the mode whose plan is reported ("launch" when empty).
	Mode string
	// Companion says the mode prepares the 32-bit companion entry beside
	// a 64-bit program's (the launch and system mode do): the report then
	// says what that entry will hold.
	Companion bool
}

// CompanionReport is what the 32-bit companion entry will hold, resolved
// as the mode resolves it (hostdrivers.Resolve for the 32-bit target).
type CompanionReport struct {
	// Class and Machine are the companion's target ("ELFCLASS32", "EM_386").
	Class   string `json:"class"`
	Machine string `json:"machine"`
	// Version and Files describe the 32-bit driver chosen; Files is 0
	// when there is none.
	Version string `json:"version,omitempty"`
	Files   int    `json:"files"`
	// Entry is the companion entry's directory in the cache ("" without
	// a cache or a driver).
	Entry string `json:"entry,omitempty"`
	// None says why there is no companion entry ("" when there is one).
	None string `json:"none,omitempty"`
}
