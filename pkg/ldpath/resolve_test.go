package ldpath

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func TestResolve(t *testing.T) {
	root := tree(t,
		"usr/lib/x86_64-linux-gnu/libz.so.1.2.13",
		"usr/lib/x86_64-linux-gnu/libz.so.1->libz.so.1.2.13",
		"lib->usr/lib",
		"lib64->/usr/lib64",
		"usr/lib64/",
		"etc/alternatives/libcuda->/usr/lib/nvidia/current/libcuda.so.1",
		"usr/lib/nvidia/current/libcuda.so.1",
		"usr/lib/x86_64-linux-gnu/libcuda.so.1->/etc/alternatives/libcuda",
		"escape->../../../../..",
		"escapeabs->/../../etc",
		"etc/ld.so.conf",
		"loop1->loop2",
		"loop2->loop1",
		"self->self",
		"dangling->/nowhere",
		"rel/a->../usr/./lib/",
		"file",
		"chain/l0->l1", "chain/l1->l2", "chain/l2->l3", "chain/l3->/usr",
	)
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"plain", "/usr/lib64", "/usr/lib64", nil},
		{"root", "/", "/", nil},
		{"relative link", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", nil},
		{"merged usr", "/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", nil},
		{"absolute link re-rooted", "/lib64", "/usr/lib64", nil},
		{"alternatives chain", "/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib/nvidia/current/libcuda.so.1", nil},
		{"dotdot clamped in path", "/../../usr/lib64", "/usr/lib64", nil},
		{"dotdot clamped in link", "/escape/etc/ld.so.conf", "/etc/ld.so.conf", nil},
		{"dotdot clamped in absolute link", "/escapeabs/ld.so.conf", "/etc/ld.so.conf", nil},
		{"dotdot after link follows the target", "/lib64/../lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", nil},
		{"dot and double slash", "/usr//./lib64/", "/usr/lib64", nil},
		{"relative target with dots", "/rel/a/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", nil},
		{"chain", "/chain/l0/lib64", "/usr/lib64", nil},
		{"relative input taken from root", "usr/lib64", "/usr/lib64", nil},
		{"missing final", "/usr/lib/missing", "", fs.ErrNotExist},
		{"missing intermediate", "/nope/lib", "", fs.ErrNotExist},
		{"dangling", "/dangling", "", fs.ErrNotExist},
		{"loop", "/loop1", "", unix.ELOOP},
		{"self loop", "/self/x", "", unix.ELOOP},
		{"file as directory", "/file/x", "", unix.ENOTDIR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(root, tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Resolve(%q) = %q, %v; want error %v", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestResolveHops(t *testing.T) {
	// 40 links are followed, the 41st is refused, as by the kernel.
	for _, n := range []int{40, 41} {
		root := t.TempDir()
		mk(t, root, "target/")
		for i := 0; i < n; i++ {
			next := "target"
			if i < n-1 {
				next = "l" + strconv.Itoa(i+1)
			}
			mk(t, root, "l"+strconv.Itoa(i)+"->"+next)
		}
		got, err := Resolve(root, "/l0")
		if n == 40 && (err != nil || got != "/target") {
			t.Errorf("40 hops: got %q, %v", got, err)
		}
		if n == 41 && !errors.Is(err, unix.ELOOP) {
			t.Errorf("41 hops: got %q, %v; want ELOOP", got, err)
		}
	}
}

func TestHostPath(t *testing.T) {
	for _, tt := range []struct{ root, p, want string }{
		{"/", "/etc/ld.so.conf", "/etc/ld.so.conf"},
		{"", "/etc/ld.so.conf", "/etc/ld.so.conf"},
		{"/run/nvidia/driver", "/etc/ld.so.conf", "/run/nvidia/driver/etc/ld.so.conf"},
		{"/r/", "/", "/r"},
		{"/r", "/a/../b", filepath.Join("/r", "b")},
	} {
		if got := HostPath(tt.root, tt.p); got != tt.want {
			t.Errorf("HostPath(%q, %q) = %q; want %q", tt.root, tt.p, got, tt.want)
		}
	}
}
