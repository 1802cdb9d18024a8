package hostdrivers

import (
	"io"
	"log/slog"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
)

// Options says where to look for the host's driver and for which program.
type Options struct {
	// Root is the host tree every path is relative to ("/" when empty); the
	// GPU operator, for one, mounts the host driver under /run/nvidia/driver.
	Root string
	// Dirs are explicit driver directories (-d), in priority order, as
	// paths inside Root. When set, no other directory is searched for
	// driver files (generic dependencies are still resolved on the host).
	Dirs []string
	// LibraryPath is the caller's LD_LIBRARY_PATH, a discovery source.
	LibraryPath string
	// Target is the ELF identity of the program the driver is for; files
	// of another class or machine are skipped. The zero value means the
	// machine nixglhost was built for.
	Target elfscan.Ident
	// SelfContained gives every driver DSO a patched copy whose
	// DT_RUNPATH reaches lib/ and deps/, so the entry works with no
	// LD_LIBRARY_PATH at all (system mode, /run/opengl-driver): libcuda
	// then finds libnvidia-ptxjitcompiler through its own runpath. It
	// copies most of the driver's bytes; the wrapper does not need it.
	SelfContained bool
	// SeenAt is where a SelfContained entry will be seen by programs
	// (RUN/opengl-driver, or /run/opengl-driver in the build sandbox): its
	// EGL and OpenCL vendor files name their libraries by absolute path
	// there, as NixOS's do. "" keeps bare names.
	SeenAt string
	// CompanionSeenAt is where the 32-bit companion entry of a
	// SelfContained entry is seen (RUN/opengl-driver-32, as NixOS has
	// it); see CompanionOptions.
	CompanionSeenAt string
	// TrustedFilesOnly refuses a plan holding a driver, dependency or
	// vendor file that a user other than root (or the caller) owns or can
	// write, that lies in a directory others can write (sticky or not),
	// or below a directory or link another user could change: root's
	// modes must not hand a user's library to every program
	// (CheckTrustedFiles).
	TrustedFilesOnly bool
	// Mesa takes Mesa's drivers (Intel, AMD, nouveau, llvmpipe) beside
	// NVIDIA's. Without it they are taken only when the host has no NVIDIA
	// driver or Mesa renders there (Roles.MesaRenders), so that an NVIDIA
	// machine's entry does not carry Mesa's LLVM (see docs/DESIGN.md,
	// "Mesa").
	Mesa bool
	// VDPAUPeer is, for the 32-bit companion entry of a 64-bit launch,
	// the 64-bit entry's lib/vdpau ("" for none): the companion's
	// lib/vdpau-<platform> links for the 64-bit platforms lead there, so
	// that one VDPAU_DRIVER_PATH serves both classes (see
	// docs/DESIGN.md, "32-bit programs"). It is part of the companion's
	// key when the companion has a VDPAU driver. PrepareCompanion sets it
	// (see VDPAUPeer).
	VDPAUPeer string
	// MesaOnly takes Mesa's drivers alone, leaving NVIDIA's out (as
	// nixGLIntel does).
	MesaOnly bool
	// Logger receives one debug record per decision; nil discards.
	Logger *slog.Logger
	// BuildHook, if set, is called at each step of a cold build ("tmpdir",
	// "links", "patched", "data", "rename"): crash-injection tests pause
	// the builder there and kill it.
	BuildHook func(step string)
}

func (o *Options) hook(step string) {
	if o.BuildHook != nil {
		o.BuildHook(step)
	}
}

func (o *Options) root() string {
	if o.Root == "" {
		return "/"
	}
	return o.Root
}

func (o *Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o.Logger
}

// seenAt is where the entry's vendor files say its libraries are: SeenAt
// for a self-contained entry, "" (bare names) for the wrapper's.
func (o *Options) seenAt() string {
	if !o.SelfContained {
		return ""
	}
	return o.SeenAt
}
