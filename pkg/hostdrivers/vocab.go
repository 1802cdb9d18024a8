package hostdrivers

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/nixglhost/nixglhost/pkg/ldpath"
)

// Origin names the discovery source that made a directory a place to look
// for driver files. Its values are the words DEBUG output, --doctor and the
// manifest use.
type Origin string

// The discovery sources, in the order they are searched.
const (
	// OriginFlag is an explicit -d directory (the only source then).
	OriginFlag Origin = "-d"
	// OriginLibraryPath is a directory of the caller's LD_LIBRARY_PATH.
	OriginLibraryPath Origin = "LD_LIBRARY_PATH"
	// OriginNixOS is /run/opengl-driver/lib.
	OriginNixOS Origin = "nixos"
	// OriginWSL is /usr/lib/wsl/lib.
	OriginWSL Origin = "wsl"
	// OriginApptainer is /.singularity.d/libs (apptainer --nv).
	OriginApptainer Origin = "apptainer"
	// OriginContainer is /usr/local/nvidia/lib64 or lib (container
	// toolkits, cloud images).
	OriginContainer Origin = "container"
	// OriginLdSoConf is a directory of /etc/ld.so.conf and its includes.
	OriginLdSoConf Origin = "ld.so.conf"
	// OriginLdSoCache is the directory of an /etc/ld.so.cache entry.
	OriginLdSoCache Origin = "ld.so.cache"
	// OriginDefault is one of the loader's default directories.
	OriginDefault Origin = "default"
	// OriginHostSearch is a driver library that a chosen one needs,
	// found on the host's search path because the -d directories lack it
	// (Debian's split layout: -d .../nvidia/current without glcore).
	OriginHostSearch Origin = "host search path"
)

// Mode says how a host file is placed in a cache entry.
type Mode string

// The modes.
const (
	// ModeLink is a symbolic link to the host file.
	ModeLink Mode = "link"
	// ModePatched is a copy whose DT_RUNPATH was rewritten, for a file
	// that must find a hidden dependency (or, in a self-contained entry,
	// any other file of the entry).
	ModePatched Mode = "patched"
	// ModeShim is a generated shared object in lib/ that loads the host
	// file (linked in deps/plugins/) and carries the search path the
	// host file lacks: a plug-in loaded by path, mostly Mesa's (see
	// docs/DESIGN.md, "Mesa").
	ModeShim Mode = "shim"
)

// SkipCode says why a directory or file was left out, or a dependency not
// found. Reports act on the code; Skipped.Reason is the text for people.
type SkipCode string

// The codes.
const (
	// SkipMissing: the path does not exist.
	SkipMissing SkipCode = "missing"
	// SkipUnreadable: permission denied.
	SkipUnreadable SkipCode = "unreadable"
	// SkipNotDir: a directory was expected.
	SkipNotDir SkipCode = "not-a-directory"
	// SkipNotAbsolute: a relative or empty directory entry.
	SkipNotAbsolute SkipCode = "not-absolute"
	// SkipSameDir: the same directory as an earlier source.
	SkipSameDir SkipCode = "same-directory"
	// SkipCacheEntry: a nixglhost cache entry's lib/, not the host's
	// driver.
	SkipCacheEntry SkipCode = "cache-entry"
	// SkipUnresolvable: a link that leads nowhere (dangling, a loop).
	SkipUnresolvable SkipCode = "unresolvable"
	// SkipNotRegular: a driver name that is not a regular file.
	SkipNotRegular SkipCode = "not-a-regular-file"
	// SkipBadELF: a driver name whose file is not a readable ELF file.
	SkipBadELF SkipCode = "bad-elf"
	// SkipWrongArch: a driver file for another architecture.
	SkipWrongArch SkipCode = "wrong-architecture"
	// SkipCompatUnusable: a cuda_compat libcuda the kernel cannot use.
	SkipCompatUnusable SkipCode = "compat-not-used"
	// SkipCompatPart: another file of an unused cuda_compat driver.
	SkipCompatPart SkipCode = "compat-part-not-used"
	// SkipCompatReplaced: a host file replaced by its cuda_compat one.
	SkipCompatReplaced SkipCode = "replaced-by-compat"
	// SkipMesaNotTaken: Mesa's files, left out because the host has an
	// NVIDIA driver and --mesa was not given.
	SkipMesaNotTaken SkipCode = "mesa-not-taken"
	// SkipNVIDIANotTaken: NVIDIA's files, left out because --mesa-only was
	// given.
	SkipNVIDIANotTaken SkipCode = "nvidia-not-taken"
	// SkipOtherVersion: a file of a driver version not chosen.
	SkipOtherVersion SkipCode = "other-version"
	// SkipShadowed: a file whose name an earlier source already had.
	SkipShadowed SkipCode = "shadowed"
	// SkipNoComponent: a driver library another one needs is absent.
	SkipNoComponent SkipCode = "component-not-found"
	// SkipNotOnHost: a generic library the driver loads is not on the host.
	SkipNotOnHost SkipCode = "not-on-host"
	// SkipError: any other error (Reason says which).
	SkipError SkipCode = "error"
)

// CodeOf classifies an error from the file system.
func CodeOf(err error) SkipCode {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return SkipMissing
	case errors.Is(err, fs.ErrPermission):
		return SkipUnreadable
	case errors.Is(err, syscall.ENOTDIR):
		return SkipNotDir
	}
	return SkipError
}

// dropCode maps ldpath's reasons for dropping a directory to codes.
func dropCode(d ldpath.Dropped) SkipCode {
	switch d.Kind {
	case ldpath.DropNotAbsolute:
		return SkipNotAbsolute
	case ldpath.DropNotDir:
		return SkipNotDir
	case ldpath.DropSameDir:
		return SkipSameDir
	}
	return CodeOf(d.Err)
}
