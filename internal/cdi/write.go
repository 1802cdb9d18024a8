package cdi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "tags.cncf.io/container-device-interface/specs-go"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/heldfile"
	"github.com/nixglhost/nixglhost/pkg/hostdrivers"
)

// The runtimes read every spec of a CDI directory as root, and a spec is
// a list of host paths to mount into containers and device nodes to give
// them. So a spec is written only into a directory no other user can
// change, reached from / through directories no other user can change,
// and never over a file nixglhost did not write.

// legacyGenerator is the generator annotation's value in the specs that
// nixglhost wrote before it kept a record (cdiVersion 0.6.0): such a spec,
// of Kind, is still its own, so that an upgrade replaces it.
const (
	legacyGeneratorAnnotation = "nixglhost.org/generator"
	legacyGenerator           = "nixglhost"
)

// recordHeader starts every record nixglhost writes: the first line of a
// file at RecordName is what proves the record its own.
const recordHeader = "nixglhost CDI spec record 1\n"

// maxSpec bounds what is read of a spec file already there; maxRecord of
// a record.
const (
	maxSpec   = 16 << 20
	maxRecord = 4 << 10
)

// Check refuses, writing nothing, what Write would refuse in dir as it is
// now: a CDI directory that another user could write to or redirect, a
// file named FileName there that nixglhost did not write, and a file named
// RecordName that is not its record. A directory that does not exist yet
// is checked as far as it exists.
func Check(dir string) error {
	d, err := openDir(dir, false)
	if err != nil || d == nil {
		return err
	}
	defer d.Close()
	_, err = readOurs(d)
	return err
}

// Write writes spec to dir/FileName atomically: a temporary file made in
// the directory (synced first) and renamed over the name. It refuses,
// changing nothing there, a file of that name that nixglhost did not
// write (see readOurs: a regular file of the caller's, of Kind, whose
// bytes the record RecordName lists) or a file at RecordName that is not
// its record, and a directory another user could write to or redirect:
// the directory and every parent must belong to root or the caller and be
// writable by no one else (a sticky parent excepted, the directory itself
// not). Missing directories are made one at a time (0755), each from its
// checked parent's descriptor, then opened without following a link and
// checked. changed is false when the file already holds the same spec.
//
// The record is written first listing both the spec there and the new
// one, then the spec, then the record listing the new spec alone: a run
// stopped at any point leaves a spec the record proves nixglhost's.
func Write(dir string, spec *specs.Spec) (changed bool, err error) {
	b, err := marshal(spec)
	if err != nil {
		return false, err
	}
	d, err := openDir(dir, true)
	if err != nil {
		return false, err
	}
	defer d.Close()
	old, err := readOurs(d)
	if err != nil {
		return false, err
	}
	if old.spec != nil && bytes.Equal(old.spec.b, b) && slices.Contains(old.written, digest(b)) {
		return false, nil
	}
	dfd := int(d.Fd())
	keep := []string{digest(b)}
	if old.spec != nil && digest(old.spec.b) != keep[0] {
		keep = append([]string{digest(old.spec.b)}, keep...)
	}
	rec, err := writeRecord(dfd, d.Name(), old.record, keep)
	if err != nil {
		return false, err
	}
	// The record's rename reaches the disk before the spec's.
	if err := d.Sync(); err != nil {
		return false, fmt.Errorf("CDI directory %s: %w", d.Name(), err)
	}
	if err := writeReplacing(dfd, d.Name(), FileName, b, old.spec); err != nil {
		return false, err
	}
	if len(keep) > 1 {
		if _, err := writeRecord(dfd, d.Name(), rec, keep[1:]); err != nil {
			return true, err
		}
	}
	if err := d.Sync(); err != nil {
		return true, fmt.Errorf("CDI directory %s: %w", d.Name(), err)
	}
	return true, nil
}

// marshal gives the bytes Write writes for spec.
func marshal(spec *specs.Spec) ([]byte, error) {
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// digest names a spec's bytes in the record: their length and FNV-128a
// (it tells a changed file from the one written; the directory is the
// caller's alone, so nobody forges one).
func digest(b []byte) string {
	h := fnv.New128a()
	h.Write(b)
	return fmt.Sprintf("%d %x", len(b), h.Sum(nil))
}

// writeRecord writes the record RecordName in dfd (named dir), listing the
// digests of the spec bytes nixglhost wrote as FileName, over old (the
// record there, nil for none), and returns the record as written.
func writeRecord(dfd int, dir string, old *ownFile, digests []string) (*ownFile, error) {
	var sb strings.Builder
	sb.WriteString(recordHeader)
	for _, dg := range digests {
		fmt.Fprintf(&sb, "%s %s\n", FileName, dg)
	}
	b := []byte(sb.String())
	if err := writeReplacing(dfd, dir, RecordName, b, old); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, RecordName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, RecordName), err)
	}
	return &ownFile{b: b, st: st}, nil
}

// writeReplacing writes b as name in dfd (named dir) through a temporary
// file renamed over old (nil: onto a free name), removing the temporary
// when the rename is refused.
func writeReplacing(dfd int, dir, name string, b []byte, old *ownFile) error {
	tmp, made, err := writeTemp(dfd, dir, b)
	if err != nil {
		return err
	}
	if err := replace(dfd, tmp, filepath.Join(dir, name), old); err != nil {
		heldfile.RemoveIfSame(dfd, tmp, &made)
		return err
	}
	return nil
}

// replace renames tmp over p's name in dfd (p is that name in dfd's
// directory): over the file old, when it is still that file, or onto a
// free name, never over what appeared there meanwhile.
func replace(dfd int, tmp, p string, old *ownFile) error {
	name := filepath.Base(p)
	if old != nil {
		var now unix.Stat_t
		if err := unix.Fstatat(dfd, name, &now, unix.AT_SYMLINK_NOFOLLOW); err != nil || now.Dev != old.st.Dev || now.Ino != old.st.Ino {
			return fmt.Errorf("%s changed while nixglhost was writing it: leaving it alone; run again", p)
		}
		if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	}
	err := unix.Renameat2(dfd, tmp, dfd, name, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: a hard link never
		// replaces either.
		if err = unix.Linkat(dfd, tmp, dfd, name, 0); err == nil {
			unix.Unlinkat(dfd, tmp, 0)
		}
	}
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s appeared while nixglhost was writing it: leaving it alone; run again", p)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// writeTemp writes b to a new file of a fresh name in dfd (named dir),
// mode 0644, synced, and returns its name and identity.
func writeTemp(dfd int, dir string, b []byte) (string, unix.Stat_t, error) {
	var st unix.Stat_t
	var name string
	fd := -1
	for range 16 {
		name = fmt.Sprintf(".nixglhost-cdi-%d-%016x.tmp", os.Getpid(), rand.Uint64())
		var err error
		fd, err = unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) {
			return "", st, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
	}
	if fd < 0 {
		return "", st, fmt.Errorf("CDI directory %s: no free temporary name", dir)
	}
	st, err := heldfile.Finish(dfd, fd, name, b, 0o644)
	if err != nil {
		return "", st, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
	}
	return name, st, nil
}

// ownFile is a file nixglhost wrote in the CDI directory, as found there:
// its bytes and its identity (for replace).
type ownFile struct {
	b  []byte
	st unix.Stat_t
}

// found is what readOurs proved nixglhost's in a CDI directory.
type found struct {
	// spec is FileName, nil when there is none.
	spec *ownFile
	// record is RecordName, nil when there is none.
	record *ownFile
	// written are the record's digests of FileName.
	written []string
}

// readOurs reads the record and the spec file of the CDI directory d and
// returns them when nixglhost wrote them (each nil when absent), and an
// error naming the first one it did not write. Either is a regular file
// of the caller's, never read through a link. The record is nixglhost's
// when it starts with recordHeader. The spec is nixglhost's when it is a
// spec of Kind whose bytes the record lists (or, written before there was
// a record, one of Kind that carries the old generator annotation): a
// spec of another kind, or of Kind but not the bytes nixglhost wrote (an
// edited copy, another tool's), is not.
func readOurs(d *os.File) (found, error) {
	var f found
	rp := filepath.Join(d.Name(), RecordName)
	rec, err := readOwn(d, RecordName, maxRecord)
	if err != nil {
		return f, err
	}
	if rec != nil {
		lines, ok := strings.CutPrefix(string(rec.b), recordHeader)
		if !ok {
			return f, notOurs(rp, "it does not start as nixglhost's record")
		}
		for _, l := range strings.Split(lines, "\n") {
			if dg, ok := strings.CutPrefix(l, FileName+" "); ok {
				f.written = append(f.written, dg)
			}
		}
		f.record = rec
	}
	p := filepath.Join(d.Name(), FileName)
	spec, err := readOwn(d, FileName, maxSpec)
	if err != nil || spec == nil {
		return f, err
	}
	var head struct {
		Kind        string            `json:"kind"`
		Annotations map[string]string `json:"annotations"`
	}
	switch {
	case json.Unmarshal(spec.b, &head) != nil:
		return f, notOurs(p, "not a JSON spec")
	case head.Kind != Kind:
		return f, notOurs(p, fmt.Sprintf("kind %q", head.Kind))
	case slices.Contains(f.written, digest(spec.b)):
	case head.Annotations[legacyGeneratorAnnotation] == legacyGenerator:
	case rec == nil:
		return f, notOurs(p, "of kind "+Kind+", but no record "+RecordName+" of it")
	default:
		return f, notOurs(p, "of kind "+Kind+", but not the spec "+RecordName+" records")
	}
	f.spec = spec
	return f, nil
}

// readOwn reads name in d when it is a regular file of the caller's of at
// most max bytes, never following a link; nil when there is none, and an
// error naming it otherwise.
func readOwn(d *os.File, name string, max int) (*ownFile, error) {
	p := filepath.Join(d.Name(), name)
	fd, err := unix.Openat(int(d.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, nil
	case errors.Is(err, unix.ELOOP):
		return nil, notOurs(p, "a symbolic link")
	case err != nil:
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	s := &ownFile{}
	if err := unix.Fstat(fd, &s.st); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	switch {
	case s.st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return nil, notOurs(p, "a directory")
	case s.st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, notOurs(p, "not a regular file")
	case int(s.st.Uid) != os.Geteuid():
		return nil, notOurs(p, fmt.Sprintf("it belongs to uid %d", s.st.Uid))
	}
	s.b, err = io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(s.b) > max {
		return nil, notOurs(p, "larger than any file of this name nixglhost writes")
	}
	return s, nil
}

// notOurs is the refusal of a file named FileName or RecordName that
// nixglhost did not write.
func notOurs(p, why string) error {
	return fmt.Errorf("%s exists and nixglhost did not write it (%s): leaving it alone; remove it yourself if it is stale, or write the spec to another CDI directory", p, why)
}

// openDir opens the CDI directory dir (see Write), creating what is
// missing of it when create is set; otherwise a directory that is not
// there yet gives nil, once what exists of its path was checked.
//
// It is long because it checks, component by component, a path held by
// descriptors; each check is one short block.
func openDir(dir string, create bool) (*os.File, error) {
	dir = filepath.Clean(dir)
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("CDI directory %s: not an absolute path", dir)
	}
	if err := hostdrivers.CheckAncestors(dir); err != nil {
		return nil, fmt.Errorf("CDI directory %s: %w", dir, err)
	}
	// The nearest existing parent, checked above with the links on the way.
	base := filepath.Dir(dir)
	var missing []string
	for {
		if _, err := os.Lstat(base); err == nil {
			break
		}
		if base == filepath.Dir(base) {
			return nil, fmt.Errorf("CDI directory %s: no existing parent", dir)
		}
		missing = append([]string{filepath.Base(base)}, missing...)
		base = filepath.Dir(base)
	}
	if len(missing) > 0 && !create {
		return nil, nil
	}
	real, err := filepath.EvalSymlinks(base)
	if err != nil {
		return nil, fmt.Errorf("CDI directory parent %s: %w", base, err)
	}
	cur, err := unix.Open(real, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("CDI directory parent %s: %w", base, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(cur, &st); err != nil || checkParent(base, &st) != nil {
		unix.Close(cur)
		if err == nil {
			err = checkParent(base, &st)
		}
		return nil, err
	}
	shown := base
	names := append(missing, filepath.Base(dir))
	for i, name := range names {
		shown = filepath.Join(shown, name)
		last := i == len(names)-1
		fd, err := unix.Openat(cur, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		made := false
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(cur, name, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				made = err == nil
				fd, err = unix.Openat(cur, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		isLink := false
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			var lst unix.Stat_t
			isLink = unix.Fstatat(cur, name, &lst, unix.AT_SYMLINK_NOFOLLOW) == nil && lst.Mode&unix.S_IFMT == unix.S_IFLNK
		}
		unix.Close(cur)
		switch {
		case errors.Is(err, unix.ENOENT) && !create:
			return nil, nil
		case isLink && last:
			return nil, fmt.Errorf("CDI directory %s is a symbolic link: the runtimes would read specs wherever it points; give the directory itself", shown)
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
			return nil, fmt.Errorf("CDI directory %s: %s is not a directory (or appeared while nixglhost was creating it)", dir, shown)
		case err != nil:
			return nil, fmt.Errorf("CDI directory %s: %w", shown, err)
		}
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("CDI directory %s: %w", shown, err)
		}
		if last {
			err = checkDir(shown, &st)
		} else {
			err = checkParent(shown, &st)
		}
		if err == nil && made {
			// Exactly 0755, whatever the umask: the runtimes read it.
			err = unix.Fchmod(fd, 0o755)
		}
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		cur = fd
	}
	return os.NewFile(uintptr(cur), dir), nil
}

// checkParent refuses a parent of the CDI directory that another user
// could use to swap it: one owned by neither root nor the caller, or
// writable by others without the sticky bit.
func checkParent(p string, st *unix.Stat_t) error {
	switch {
	case int(st.Uid) != 0 && int(st.Uid) != os.Geteuid():
		return fmt.Errorf("CDI directory parent %s belongs to uid %d, who could replace the CDI directory below it: give a CDI directory under a path only root controls", p, st.Uid)
	case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
		return fmt.Errorf("CDI directory parent %s is writable by others (mode %s) and not sticky: they could swap the CDI directory; run chmod go-w %s, or give another CDI directory", p, modeString(st.Mode), p)
	}
	return nil
}

// checkDir refuses a CDI directory that is not the caller's or that
// others can write to, sticky or not: the runtimes read every spec there.
func checkDir(p string, st *unix.Stat_t) error {
	switch {
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("CDI directory %s belongs to uid %d: nixglhost writes specs only into a directory of its own user's; give another CDI directory", p, st.Uid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("CDI directory %s is writable by others (mode %s): the runtimes read every spec there as root, so they could add devices and mounts to containers; run chmod go-w %s, or give another CDI directory", p, modeString(st.Mode), p)
	}
	return nil
}

// modeString writes a stat mode's permission bits in octal, with the
// sticky, setgid and setuid bits, as chmod takes them: 1777, not 0777.
func modeString(mode uint32) string {
	return fmt.Sprintf("%04o", mode&0o7777)
}
