package elfscan

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// pageCountingReader counts the reads that reach the file.
type pageCountingReader struct {
	r     io.ReaderAt
	reads int
}

func (c *pageCountingReader) ReadAt(b []byte, off int64) (int, error) {
	c.reads++
	return c.r.ReadAt(b, off)
}

func TestPageReader(t *testing.T) {
	data := make([]byte, 3*pageSize+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	c := &pageCountingReader{r: bytes.NewReader(data)}
	p := newPageReader(c, int64(len(data)))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		off := rng.Int64N(int64(len(data)) + 10)
		n := rng.IntN(300)
		want := make([]byte, n)
		wn, werr := bytes.NewReader(data).ReadAt(want, off)
		got := make([]byte, n)
		gn, gerr := p.ReadAt(got, off)
		if gn != wn || !bytes.Equal(got[:gn], want[:wn]) || (werr == nil) != (gerr == nil) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d, %v", n, off, gn, gerr, wn, werr)
		}
	}
	if c.reads > 4 {
		t.Errorf("%d reads reached the file for 4 pages", c.reads)
	}
	// A big read goes straight through.
	big := make([]byte, 2*pageSize)
	if n, err := p.ReadAt(big, 10); n != len(big) || err != nil || !bytes.Equal(big, data[10:10+len(big)]) {
		t.Errorf("big read: %d, %v", n, err)
	}
}
