// Package rawfile opens files without the Go runtime's poller. os.Open
// hands every descriptor to epoll (creating the poller on first use), and
// on Linux a regular file is refused there: a short-lived launcher pays a
// handful of system calls per file, and a dozen once, for nothing. The
// launch path opens its few files here (see docs/DESIGN.md, "Launch cost").
package rawfile

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Open opens path for reading with O_CLOEXEC and the extra flags (such as
// unix.O_NOFOLLOW), and returns it as an *os.File the poller never sees:
// reads and closes are plain system calls.
func Open(path string, flags int) (*os.File, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|flags, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// ReadAll reads what is left of f, expecting about size bytes (its size
// when stat'ed), and at most limit: one read for a file that did not
// grow, not the doubling reads of io.ReadAll. A file longer than limit is
// an error.
func ReadAll(f *os.File, size, limit int64) ([]byte, error) {
	tooLarge := &os.PathError{Op: "read", Path: f.Name(), Err: errors.New("file too large")}
	size = max(size, 0)
	if size > limit {
		return nil, tooLarge
	}
	// One byte more than expected, so that the end is seen in one read.
	b := make([]byte, 0, size+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return nil, tooLarge
		}
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// ReadFile reads the whole file at path (at most limit bytes) through Open
// and ReadAll.
func ReadFile(path string, flags int, limit int64) ([]byte, error) {
	f, err := Open(path, flags)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	size := int64(0)
	if unix.Fstat(int(f.Fd()), &st) == nil {
		size = st.Size
	}
	return ReadAll(f, size, limit)
}
