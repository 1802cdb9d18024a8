package hostdrivers

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Ownership (docs/DESIGN.md, invariant 4): nixglhost writes, renames over
// or removes only what it can prove it made. A cache root is ours when it
// carries our CACHEDIR.TAG; inside one, a path is ours when its name has
// the shape we give it and, for an entry, when it holds a manifest naming
// that same key. Everything else is left byte for byte.

// CacheTagName is the mark of a cache root: the Cache Directory Tagging
// convention's file, which backup tools (tar --exclude-caches, borg,
// restic) also read as "skip this directory".
const CacheTagName = "CACHEDIR.TAG"

// cacheTagSignature is the convention's fixed first line.
const cacheTagSignature = "Signature: 8a477f597d28d172789f06886806bc55"

// cacheTagOwner is the second line, which tells our tag from another
// tool's (cargo and others write the same signature): a root marked by
// another tool is that tool's cache, not ours.
const cacheTagOwner = "# This file is a cache directory tag created by nixglhost."

// cacheTag is the whole tag nixglhost writes.
const cacheTag = cacheTagSignature + "\n" + cacheTagOwner + "\n" +
	"# nixglhost removes in this directory only what it made; see nixglhost(1), CACHE.\n"

// Shapes of the names nixglhost gives what it makes in a cache root,
// matched by hand: the release binary links no regexp.
var (
	keyShape    = shape(func(n string) bool { return isHex(n, 32) })
	tmpShape    = shape(isTmpName)
	trashShape  = shape(func(n string) bool { k, pid, ok := cut2(n, ".trash-", 32); return ok && k != "" && isDigits(pid) })
	lockShape   = shape(func(n string) bool { r, ok := strings.CutPrefix(n, ".lock-"); return ok && isHex(r, 32) })
	indexShape  = shape(func(n string) bool { r, ok := strings.CutPrefix(n, ".index-"); return ok && isHex(r, 24) })
	tmpIdxShape = shape(func(n string) bool { r, ok := strings.CutPrefix(n, ".tmpidx-"); return ok && isDigits(r) })
	// .system-mode.lock, .system-mode.linked, .system-mode.linked.tmp-PID
	systemShapes = shape(func(n string) bool {
		r, ok := strings.CutPrefix(n, ".system-mode.")
		if !ok {
			return false
		}
		if r == "lock" || r == "linked" {
			return true
		}
		pid, ok := strings.CutPrefix(r, "linked.tmp-")
		return ok && isDigits(pid)
	})
)

// shape is a name matcher with regexp's method name.
type shape func(string) bool

// MatchString reports whether name has the shape.
func (s shape) MatchString(name string) bool { return s(name) }

// isHex reports whether s is n lowercase hexadecimal digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isDigits reports whether s is one or more decimal digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// cut2 splits PREFIX+HEX(n)+"-"+REST into HEX and REST.
func cut2(name, prefix string, n int) (hex, rest string, ok bool) {
	r, ok := strings.CutPrefix(name, prefix)
	if !ok || len(r) < n+1 || r[n] != '-' || !isHex(r[:n], n) {
		return "", "", false
	}
	return r[:n], r[n+1:], true
}

// isTmpName matches .tmp-KEY12-HOST-PID-N (HOST holds no '-' or '/').
func isTmpName(name string) bool {
	_, rest, ok := cut2(name, ".tmp-", 12)
	if !ok {
		return false
	}
	parts := strings.Split(rest, "-")
	return len(parts) == 3 && !strings.Contains(parts[0], "/") && isDigits(parts[1]) && isDigits(parts[2])
}

// IsKeyName reports whether name has the shape of a cache entry's name
// (a key: 32 lowercase hexadecimal digits).
func IsKeyName(name string) bool { return keyShape.MatchString(name) }

// OwnedEntry returns the manifest of root/name when that is a cache entry
// nixglhost made: name has a key's shape, and root/name is a real
// directory (not a link) of this user's holding a regular manifest.json of
// our format whose key is name. Otherwise the error says why the directory
// is not provably ours; nothing is changed either way. An entry of ours
// that others can write is still ours (to remove), but not usable
// (ownEntry).
func OwnedEntry(root, name string) (*Manifest, error) {
	dir := filepath.Join(root, name)
	if !IsKeyName(name) {
		return nil, fmt.Errorf("%s: not the name of a cache entry", dir)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	switch {
	case !fi.IsDir():
		return nil, fmt.Errorf("cache entry %s: not a directory", dir)
	case !ownedByMe(fi):
		return nil, fmt.Errorf("cache entry %s: belongs to another user", dir)
	}
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if m.Key != name {
		return nil, fmt.Errorf("cache entry %s: its manifest names key %q", dir, m.Key)
	}
	return m, nil
}

// ourScratch reports whether name, found in a cache root with the file
// mode m, is one of our lock, index or system-mode bookkeeping files: the
// name shape and the kind (a regular file) must both match. A directory
// is never proved by its name alone: see ourScratchDir.
func ourScratch(name string, m fs.FileMode) bool {
	switch {
	case lockShape.MatchString(name), indexShape.MatchString(name), tmpIdxShape.MatchString(name), systemShapes.MatchString(name):
		return m.IsRegular()
	}
	return false
}

// ourScratchFile reports whether p (with fi, its lstat) is a lock or index
// temporary that proves itself ours: a regular file of ours that is empty
// (a lock is never written) or starts as an index does.
func ourScratchFile(p string, fi fs.FileInfo) bool {
	if !fi.Mode().IsRegular() || !ownedByMe(fi) {
		return false
	}
	if fi.Size() == 0 {
		return true
	}
	return tmpIdxShape.MatchString(filepath.Base(p)) && replaceableIndex(p)
}

// buildMark is the file a build creates first in its temporary directory
// and removes just before the rename that makes it an entry: the proof
// that an unfinished temporary directory is ours.
const buildMark = ".nixglhost-build"

// ourScratchDir reports whether root/name is one of our temporary build
// directories (.tmp-KEY12-HOST-PID-N) or discarded entries
// (.trash-KEY-PID): a real directory of ours with that name shape that
// also proves itself. A temporary directory holds our build mark, or the
// manifest of the key its name begins; a discarded entry holds the
// manifest of the key it names (removeOurs removes the manifest last). An
// empty one is ours too, since removing it cannot lose anything: a build
// or a removal that stopped between its first and its last step.
func ourScratchDir(root, name string) bool {
	var keyPrefix string
	switch {
	case tmpShape.MatchString(name):
		keyPrefix = name[len(".tmp-") : len(".tmp-")+12]
	case trashShape.MatchString(name):
		keyPrefix = name[len(".trash-") : len(".trash-")+32]
	default:
		return false
	}
	dir := filepath.Join(root, name)
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || !ownedByMe(fi) {
		return false
	}
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return false
	}
	if len(names) == 0 {
		return true
	}
	if keyPrefix != "" && len(keyPrefix) == 12 {
		if mk, err := os.Lstat(filepath.Join(dir, buildMark)); err == nil && mk.Mode().IsRegular() && ownedByMe(mk) {
			return true
		}
	}
	m, err := ReadManifest(dir)
	return err == nil && strings.HasPrefix(m.Key, keyPrefix) && IsKeyName(m.Key)
}

// removeOurs removes dir, a directory proved ours (an entry, or what
// ourScratchDir accepts), keeping its proof (the manifest, the build mark)
// until the rest is gone: a removal that stops half way leaves a directory
// that still proves itself, or an empty one.
func removeOurs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if n != "manifest.json" && n != buildMark {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, n)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, n := range []string{buildMark, "manifest.json"} {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return os.Remove(dir)
}

// NotOursError says that a directory given as a cache root holds files
// nixglhost did not make, so it is refused before anything is written.
type NotOursError struct {
	// Dir is the refused directory.
	Dir string
	// Foreign names one of the files that made it so, relative to Dir.
	Foreign string
	// OtherTag is true when Dir carries another tool's CACHEDIR.TAG.
	OtherTag bool
}

func (e *NotOursError) Error() string {
	why := fmt.Sprintf("holds files nixglhost did not make (%s)", e.Foreign)
	if e.OtherTag {
		why = "is another program's cache (its CACHEDIR.TAG is not nixglhost's)"
	}
	return fmt.Sprintf("cache directory %s %s: refusing to use it, nothing was written there; give an empty or new directory such as %s",
		e.Dir, why, filepath.Join(e.Dir, "nixglhost"))
}

// tagState is what a root's CACHEDIR.TAG says.
type tagState int

const (
	tagAbsent tagState = iota
	tagOurs
	tagOther
)

// readTag reads the CACHEDIR.TAG in the directory held by dirfd without
// following a link. A tag that is not a regular file of this user's, or
// whose first two lines are not ours, is another's.
func readTag(dirfd int) tagState {
	// A tag of ours shorter than the whole may be one another launcher
	// is writing (writeTag creates, then writes): wait for it a little.
	for range 200 {
		st, partial := readTagOnce(dirfd)
		if !partial {
			return st
		}
		time.Sleep(time.Millisecond)
	}
	return tagOther
}

// readTagOnce is one look at the tag; partial reports a regular file of
// ours that holds a proper prefix of our tag.
func readTagOnce(dirfd int) (tagState, bool) {
	fd, err := unix.Openat(dirfd, CacheTagName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENOENT) {
		return tagAbsent, false
	}
	if err != nil {
		return tagOther, false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Geteuid() {
		return tagOther, false
	}
	var buf [512]byte
	n, _ := unix.Read(fd, buf[:])
	if n < 0 {
		n = 0
	}
	if !bytes.HasPrefix(buf[:n], []byte(cacheTagSignature+"\n"+cacheTagOwner+"\n")) {
		return tagOther, n < len(cacheTag) && strings.HasPrefix(cacheTag, string(buf[:n]))
	}
	return tagOurs, false
}

// looksTagged is the hot path's check of a root's tag: one fstatat(2) of a
// regular file of this user's with our tag's size. The cold path reads
// the tag itself (claimRoot) before it writes anything.
func looksTagged(dir string) bool {
	var st unix.Stat_t
	err := unix.Fstatat(unix.AT_FDCWD, dir+"/"+CacheTagName, &st, unix.AT_SYMLINK_NOFOLLOW)
	return err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && int(st.Uid) == os.Geteuid() && st.Size == int64(len(cacheTag))
}

// IsMarkedRoot reports whether dir carries nixglhost's CACHEDIR.TAG.
func IsMarkedRoot(dir string) bool {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return readTag(fd) == tagOurs
}

// claimRoot makes the directory held by f (named dir) a cache root of
// ours, or proves it already is one. A directory with our tag is ours. An
// untagged one is adopted, and tagged, only when everything in it is what
// nixglhost makes (empty, or entries with our manifest and our scratch
// files: a cache written before roots were tagged); anything else is
// refused with a *NotOursError before a byte is written there.
func claimRoot(f *os.File, dir string) error {
	fd := int(f.Fd())
	switch readTag(fd) {
	case tagOurs:
		return nil
	case tagOther:
		return &NotOursError{Dir: dir, Foreign: CacheTagName, OtherTag: true}
	}
	if name, ok := adoptable(f, dir); !ok {
		return &NotOursError{Dir: dir, Foreign: name}
	}
	return writeTag(fd, dir)
}

// adoptable reports whether every name in the directory f is something
// nixglhost makes; when not, it returns the first name that is not.
func adoptable(f *os.File, dir string) (string, bool) {
	// A fresh descriptor, so that reading the listing does not move f's
	// offset for later readers.
	d, err := openDirAt(int(f.Fd()), ".", dir)
	if err != nil {
		return ".", false
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return ".", false
	}
	for _, e := range ents {
		name := e.Name()
		if name == CacheTagName {
			// A tag another launcher created after claimRoot looked:
			// writeTag finds it and reads it (waiting while it is
			// written), and takes it only if it is ours.
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return name, false
		}
		if ourScratch(name, fi.Mode()) || fi.IsDir() && ourScratchDir(dir, name) {
			continue
		}
		if fi.IsDir() {
			if _, err := OwnedEntry(dir, name); err == nil {
				continue
			}
		}
		return name, false
	}
	return "", true
}

// writeTag creates our CACHEDIR.TAG in the directory held by dirfd; it
// never replaces a file already there.
func writeTag(dirfd int, dir string) error {
	p := filepath.Join(dir, CacheTagName)
	fd, err := unix.Openat(dirfd, CacheTagName, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.EEXIST) {
		// Another launcher tagged it meanwhile; read what it wrote.
		if readTag(dirfd) == tagOurs {
			return nil
		}
		return &NotOursError{Dir: dir, Foreign: CacheTagName, OtherTag: true}
	}
	if err != nil {
		return fmt.Errorf("cache directory tag %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	_, werr := f.Write([]byte(cacheTag))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		unix.Unlinkat(dirfd, CacheTagName, 0)
		return fmt.Errorf("cache directory tag %s: %w", p, werr)
	}
	return nil
}

// openDirAt opens name, a directory under dirfd, without following a link.
func openDirAt(dirfd int, name, shown string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", shown, err)
	}
	return os.NewFile(uintptr(fd), shown), nil
}

// ModeString writes a permission mode in octal with its sticky, setgid and
// setuid bits, as chmod takes it: 1777, not 0777, for /tmp.
func ModeString(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	return fmt.Sprintf("%04o", v)
}

// openRoot opens the cache root dir, creating it (mode perm) and each
// missing parent when needed, and checks it: see EnsureCacheRoot. Each
// missing component is made with mkdirat under the descriptor of its
// checked parent and then opened without following a link and checked
// itself, so a directory another user creates or swaps in on the way is
// refused, not used. An existing root is checked before anything is
// created.
func openRoot(dir string, perm uint32) (*os.File, error) {
	dir = filepath.Clean(dir)
	if err := CheckAncestors(dir); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(dir); err == nil {
		if err := CheckCacheRoot(dir, fi); err != nil {
			return nil, err
		}
	}
	// The nearest existing ancestor, checked above (links in it too).
	base := filepath.Dir(dir)
	var missing []string
	for {
		if _, err := os.Lstat(base); err == nil {
			break
		}
		missing = append([]string{filepath.Base(base)}, missing...)
		if base == filepath.Dir(base) {
			return nil, fmt.Errorf("cache directory %s: no existing parent", dir)
		}
		base = filepath.Dir(base)
	}
	real, err := filepath.EvalSymlinks(base)
	if err != nil {
		return nil, fmt.Errorf("cache directory parent %s: %w", base, err)
	}
	cur, err := openDirAt(unix.AT_FDCWD, real, base)
	if err != nil {
		return nil, fmt.Errorf("cache directory parent %w", err)
	}
	shown := base
	uid := os.Geteuid()
	for _, name := range append(missing, filepath.Base(dir)) {
		shown = filepath.Join(shown, name)
		mode := uint32(0o700)
		if shown == dir {
			mode = perm
		} else if perm&0o055 != 0 {
			mode = 0o755
		}
		if err := unix.Mkdirat(int(cur.Fd()), name, mode); err != nil && !errors.Is(err, unix.EEXIST) {
			cur.Close()
			return nil, fmt.Errorf("cache directory %s: %w", shown, err)
		}
		next, err := openDirAt(int(cur.Fd()), name, shown)
		cur.Close()
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			if fi, lerr := os.Lstat(shown); lerr == nil {
				if shown == dir {
					return nil, CheckCacheRoot(dir, fi)
				}
				return nil, fmt.Errorf("cache directory parent %s is a symbolic link or not a directory; it appeared while nixglhost was creating it", shown)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("cache directory %w", err)
		}
		fi, err := next.Stat()
		if err == nil {
			if shown == dir {
				err = CheckCacheRoot(dir, fi)
			} else {
				err = trustedDir(shown, fi, uid)
			}
		}
		if err != nil {
			next.Close()
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

// ownedByMe reports whether fi belongs to the effective user.
func ownedByMe(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
