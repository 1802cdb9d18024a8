package cdi

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"golang.org/x/sys/unix"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// otherUID owns what the tests plant as another user's.
const otherUID = 64103

// testSpec is a spec as Build makes it, for entry.
func testSpec(t *testing.T, entry string) *specs.Spec {
	t.Helper()
	spec, err := Build(t.TempDir(), entry, nil, nil)
	fixtures.Must(t, err)
	return spec
}

// foreignOfKind is a spec of nixglhost's kind that nixglhost did not
// write: an administrator's, or another tool's.
const foreignOfKind = `{"cdiVersion":"0.5.0","kind":"nixglhost.org/gpu","devices":[{"name":"all","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia0"}]}}]}`

// legacySpec is the mark of a spec an earlier nixglhost wrote (cdiVersion
// 0.6.0, before the record).
const legacySpec = `{"cdiVersion":"0.6.0","kind":"nixglhost.org/gpu","annotations":{"nixglhost.org/generator":"nixglhost"},"devices":[]}`

// writeOurs writes the spec for entry into dir with Write and returns its
// path.
func writeOurs(t *testing.T, dir, entry string) string {
	t.Helper()
	if _, err := Write(dir, testSpec(t, entry)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return filepath.Join(dir, FileName)
}

// TestWriteRefuses: Check and Write refuse a spec file nixglhost did not
// write (another kind; nixglhost's kind with no record, beside a record of
// other bytes, or edited since it was written), a file at the record's
// name that is not nixglhost's record, and a CDI directory another user
// could write to or redirect, naming the path, and leave every file byte
// for byte (no directory made, no temporary file left).
func TestWriteRefuses(t *testing.T) {
	tests := []struct {
		name   string
		asRoot bool
		// setup returns the CDI directory and the path the refusal names.
		setup   func(t *testing.T, base string) (dir, named string)
		wantErr string
	}{
		{"a spec of another kind", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			return dir, fixtures.Write(t, filepath.Join(dir, FileName), `{"cdiVersion":"0.6.0","kind":"nvidia.com/gpu","devices":[]}`)
		}, `did not write it (kind "nvidia.com/gpu")`},
		{"a spec of our kind, no record", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			return dir, fixtures.Write(t, filepath.Join(dir, FileName), foreignOfKind)
		}, "did not write it (of kind nixglhost.org/gpu, but no record " + RecordName + " of it)"},
		{"a spec of our kind beside our record of another", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			writeOurs(t, dir, "/c/a")
			return dir, fixtures.Write(t, filepath.Join(dir, FileName), foreignOfKind)
		}, "did not write it (of kind nixglhost.org/gpu, but not the spec " + RecordName + " records)"},
		{"our spec, edited", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			p := writeOurs(t, dir, "/c/a")
			b, err := os.ReadFile(p)
			fixtures.Must(t, err)
			return dir, fixtures.Write(t, p, strings.Replace(string(b), `"ro"`, `"rw"`, 1))
		}, "not the spec " + RecordName + " records"},
		{"another generator's mark", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			return dir, fixtures.Write(t, filepath.Join(dir, FileName), `{"kind":"nixglhost.org/gpu","annotations":{"nixglhost.org/generator":"someone"}}`)
		}, "did not write it"},
		{"the old mark on another kind", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			return dir, fixtures.Write(t, filepath.Join(dir, FileName), `{"kind":"nvidia.com/gpu","annotations":{"nixglhost.org/generator":"nixglhost"}}`)
		}, `did not write it (kind "nvidia.com/gpu")`},
		{"not JSON", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			return dir, fixtures.Write(t, filepath.Join(dir, FileName), "cdiVersion: 0.6.0\n")
		}, "did not write it (not a JSON spec)"},
		{"a foreign file at the record's name", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			return dir, fixtures.Write(t, filepath.Join(dir, RecordName), "someone's notes\n")
		}, "did not write it (it does not start as nixglhost's record)"},
		{"the record's name is a link to a record", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			target := fixtures.Write(t, filepath.Join(base, "elsewhere"), recordHeader)
			p := filepath.Join(dir, RecordName)
			fixtures.Must(t, os.Symlink(target, p))
			return dir, p
		}, "did not write it (a symbolic link)"},
		{"another user's record", true, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			writeOurs(t, dir, "/c/a")
			p := filepath.Join(dir, RecordName)
			fixtures.Must(t, os.Chown(p, otherUID, otherUID))
			return dir, p
		}, "belongs to uid 64103"},
		{"a link to a marked spec", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			target := fixtures.Write(t, filepath.Join(base, "elsewhere.json"), legacySpec)
			p := filepath.Join(dir, FileName)
			fixtures.Must(t, os.Symlink(target, p))
			return dir, p
		}, "did not write it (a symbolic link)"},
		{"a directory", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			fixtures.Write(t, filepath.Join(dir, FileName, "x"), "x")
			return dir, filepath.Join(dir, FileName)
		}, "did not write it (a directory)"},
		{"a fifo", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			p := filepath.Join(dir, FileName)
			fixtures.Must(t, syscall.Mkfifo(p, 0o644))
			return dir, p
		}, "did not write it (not a regular file)"},
		{"another user's marked spec", true, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			p := fixtures.Write(t, filepath.Join(dir, FileName), legacySpec)
			fixtures.Must(t, os.Chown(p, otherUID, otherUID))
			return dir, p
		}, "belongs to uid 64103"},
		{"a 0777 directory", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o777)
			return dir, dir
		}, "is writable by others (mode 0777)"},
		{"a 1777 directory", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o777|os.ModeSticky)
			return dir, dir
		}, "is writable by others (mode 1777)"},
		{"a 0775 directory", false, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o775)
			return dir, dir
		}, "is writable by others (mode 0775)"},
		{"another user's directory", true, func(t *testing.T, base string) (string, string) {
			dir := fixtures.MkdirMode(t, filepath.Join(base, "cdi"), 0o755)
			fixtures.Must(t, os.Chown(dir, otherUID, otherUID))
			return dir, dir
		}, "belongs to uid 64103"},
		{"the directory is a link", false, func(t *testing.T, base string) (string, string) {
			real := fixtures.MkdirMode(t, filepath.Join(base, "real"), 0o755)
			dir := filepath.Join(base, "cdi")
			fixtures.Must(t, os.Symlink(real, dir))
			return dir, dir
		}, "is a symbolic link"},
		{"missing, below a 0777 parent", false, func(t *testing.T, base string) (string, string) {
			open := fixtures.MkdirMode(t, filepath.Join(base, "open"), 0o777)
			return filepath.Join(open, "etc", "cdi"), open
		}, "writable by others (mode 0777) and not sticky"},
		{"below another user's link", true, func(t *testing.T, base string) (string, string) {
			l := fixtures.OthersLink(t, base, "etc", otherUID)
			return filepath.Join(l, "cdi"), l
		}, "belongs to uid 64103"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.asRoot && os.Geteuid() != 0 {
				fixtures.Unavailable(t, "giving files to another user needs root")
			}
			base := t.TempDir()
			dir, named := tt.setup(t, base)
			before := fixtures.Snapshot(t, base)
			check := func(what string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), named) {
					t.Errorf("%s: %v; want %q naming %s", what, err, tt.wantErr, named)
				}
			}
			check("Check", Check(dir))
			changed, err := Write(dir, testSpec(t, "/var/cache/nix-gl-host/x"))
			check("Write", err)
			if changed {
				t.Errorf("Write said it changed the spec")
			}
			if d := cmp.Diff(before, fixtures.Snapshot(t, base)); d != "" {
				t.Errorf("a refusal changed files (-before +after):\n%s", d)
			}
		})
	}
}

// TestWriteOurs: a CDI directory two levels below an existing one is
// made, 0755 each; the spec is written 0644, left alone when the same,
// replaced when not; names of a temporary's shape that are not this run's
// stay, and no temporary is left.
func TestWriteOurs(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "etc", "cdi")
	p := filepath.Join(dir, FileName)
	if err := Check(dir); err != nil {
		t.Fatalf("Check of a directory to be made: %v", err)
	}
	old := syscall.Umask(0o077)
	changed, err := Write(dir, testSpec(t, "/c/a"))
	syscall.Umask(old)
	if err != nil || !changed {
		t.Fatalf("first Write: %t, %v", changed, err)
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if fi, err := os.Lstat(d); err != nil || fi.Mode() != os.ModeDir|0o755 {
			t.Errorf("%s: %v, %v; want a 0755 directory", d, fi.Mode(), err)
		}
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode() != 0o644 {
		t.Errorf("%s: %v, %v; want 0644", p, fi.Mode(), err)
	}
	planted := fixtures.Write(t, filepath.Join(dir, ".nixglhost-cdi-1-0000000000000000.tmp"), "someone's\n")
	plantedBefore := fixtures.Describe(t, planted)
	if err := Check(dir); err != nil {
		t.Errorf("Check of our own spec: %v", err)
	}
	if changed, err := Write(dir, testSpec(t, "/c/a")); err != nil || changed {
		t.Errorf("the same spec again: %t, %v; want unchanged", changed, err)
	}
	if changed, err := Write(dir, testSpec(t, "/c/b")); err != nil || !changed {
		t.Errorf("a new spec: %t, %v; want it written", changed, err)
	}
	if b, err := os.ReadFile(p); err != nil || !strings.Contains(string(b), `"/c/b"`) {
		t.Errorf("%s holds %s, %v; want the new spec", p, b, err)
	}
	if got := fixtures.Describe(t, planted); got != plantedBefore {
		t.Errorf("%s changed: %s, was %s", planted, got, plantedBefore)
	}
	ents, err := os.ReadDir(dir)
	fixtures.Must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if d := cmp.Diff([]string{filepath.Base(planted), RecordName, FileName}, names); d != "" {
		t.Errorf("the CDI directory holds (-want +got):\n%s", d)
	}
}

// TestWriteOverRecorded: Write replaces a spec it can prove its own in
// each state a run leaves, stopped or finished (the record listing the
// spec there and a pending one, before and after the spec's rename), and
// a spec of an earlier nixglhost (the old generator annotation, no
// record); afterwards the spec holds the new bytes, with no annotations,
// and the record lists those alone.
func TestWriteOverRecorded(t *testing.T) {
	specBytes := func(t *testing.T, entry string) []byte {
		t.Helper()
		b, err := marshal(testSpec(t, entry))
		fixtures.Must(t, err)
		return b
	}
	record := func(bs ...[]byte) string {
		r := recordHeader
		for _, b := range bs {
			r += FileName + " " + digest(b) + "\n"
		}
		return r
	}
	tests := []struct {
		name string
		// setup fills the CDI directory dir.
		setup func(t *testing.T, dir string)
	}{
		{"finished", func(t *testing.T, dir string) {
			writeOurs(t, dir, "/c/a")
		}},
		{"stopped before the spec's rename", func(t *testing.T, dir string) {
			a, b := specBytes(t, "/c/a"), specBytes(t, "/c/b")
			fixtures.Write(t, filepath.Join(dir, FileName), string(a))
			fixtures.Write(t, filepath.Join(dir, RecordName), record(a, b))
		}},
		{"stopped after the spec's rename", func(t *testing.T, dir string) {
			a, b := specBytes(t, "/c/a"), specBytes(t, "/c/b")
			fixtures.Write(t, filepath.Join(dir, FileName), string(b))
			fixtures.Write(t, filepath.Join(dir, RecordName), record(a, b))
		}},
		{"written by an earlier nixglhost", func(t *testing.T, dir string) {
			fixtures.Write(t, filepath.Join(dir, FileName), legacySpec)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fixtures.MkdirMode(t, filepath.Join(t.TempDir(), "cdi"), 0o755)
			tt.setup(t, dir)
			if err := Check(dir); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if changed, err := Write(dir, testSpec(t, "/c/new")); err != nil || !changed {
				t.Fatalf("Write: %t, %v; want the spec replaced", changed, err)
			}
			want := specBytes(t, "/c/new")
			got, err := os.ReadFile(filepath.Join(dir, FileName))
			fixtures.Must(t, err)
			if d := cmp.Diff(string(want), string(got)); d != "" {
				t.Errorf("the spec (-want +got):\n%s", d)
			}
			if strings.Contains(string(got), "annotations") {
				t.Errorf("the spec carries annotations:\n%s", got)
			}
			rec, err := os.ReadFile(filepath.Join(dir, RecordName))
			fixtures.Must(t, err)
			if d := cmp.Diff(record(want), string(rec)); d != "" {
				t.Errorf("the record (-want +got):\n%s", d)
			}
		})
	}
}

// TestReplaceRaces: the rename never replaces a spec that appeared after
// the check, nor one that is no longer the file checked; the file there
// stays byte for byte and the temporary is the caller's to remove.
func TestReplaceRaces(t *testing.T) {
	tests := []struct {
		name    string
		checked bool // a spec of ours was there when checked
		wantErr string
	}{
		{"appeared after the check", false, "appeared while nixglhost was writing it"},
		{"replaced after the check", true, "changed while nixglhost was writing it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d, err := os.Open(dir)
			fixtures.Must(t, err)
			defer d.Close()
			var old *ownFile
			if tt.checked {
				writeOurs(t, dir, "/c/a")
				f, err := readOurs(d)
				fixtures.Must(t, err)
				old = f.spec
				// Moved away, not removed: its inode stays taken.
				fixtures.Must(t, os.Rename(filepath.Join(dir, FileName), filepath.Join(dir, "away")))
			}
			p := fixtures.Write(t, filepath.Join(dir, FileName), "someone's\n")
			before := fixtures.Describe(t, p)
			tmp, _, err := writeTemp(int(d.Fd()), dir, []byte("ours\n"))
			fixtures.Must(t, err)
			if err := replace(int(d.Fd()), tmp, p, old); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("replace: %v; want %q", err, tt.wantErr)
			}
			if got := fixtures.Describe(t, p); got != before {
				t.Errorf("%s changed: %s", p, got)
			}
			var st unix.Stat_t
			if err := unix.Fstatat(int(d.Fd()), tmp, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				t.Errorf("the temporary file is gone: %v", err)
			}
		})
	}
}

// TestWriteThroughOwnLink: a parent that is the caller's own link to a
// directory of theirs (as /var/run is root's link to /run) is followed,
// its target checked: the spec is written where it leads.
func TestWriteThroughOwnLink(t *testing.T) {
	base := t.TempDir()
	run := fixtures.MkdirMode(t, filepath.Join(base, "run"), 0o755)
	fixtures.Must(t, os.Symlink(run, filepath.Join(base, "varrun")))
	dir := filepath.Join(base, "varrun", "cdi")
	if changed, err := Write(dir, testSpec(t, "/c/a")); err != nil || !changed {
		t.Fatalf("Write(%s): %t, %v", dir, changed, err)
	}
	if _, err := os.Stat(filepath.Join(run, "cdi", FileName)); err != nil {
		t.Errorf("no spec where the link leads: %v", err)
	}
}
