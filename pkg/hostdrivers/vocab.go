package hostdrivers

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
)
