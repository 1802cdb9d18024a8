package elfscan

import (
	"io"
)

// pageReader serves the many small reads the reader makes (a string table
// walked 256 bytes at a time, version entries one by one) from whole 4 KiB
// pages, each read once: a file costs a few system calls instead of
// hundreds. Reads larger than a page go straight through. At most
// maxPages pages are kept, so memory stays bounded whatever the file.
type pageReader struct {
	r     io.ReaderAt
	size  int64
	pages map[int64][]byte
}

const (
	pageSize = 4096
	maxPages = 64
)

func newPageReader(r io.ReaderAt, size int64) *pageReader {
	return &pageReader{r: r, size: size, pages: make(map[int64][]byte)}
}

// ReadAt implements io.ReaderAt.
func (p *pageReader) ReadAt(b []byte, off int64) (int, error) {
	if len(b) > pageSize || off < 0 {
		return p.r.ReadAt(b, off)
	}
	n := 0
	for n < len(b) {
		pos := off + int64(n)
		if pos >= p.size {
			return n, io.EOF
		}
		pg, err := p.page(pos / pageSize)
		if err != nil {
			return n, err
		}
		in := int(pos % pageSize)
		if in >= len(pg) {
			return n, io.EOF
		}
		n += copy(b[n:], pg[in:])
	}
	return n, nil
}

// page returns page i, reading it when it is not kept yet.
func (p *pageReader) page(i int64) ([]byte, error) {
	if pg, ok := p.pages[i]; ok {
		return pg, nil
	}
	if len(p.pages) >= maxPages {
		for k := range p.pages {
			delete(p.pages, k)
			break
		}
	}
	buf := make([]byte, min(int64(pageSize), p.size-i*pageSize))
	m, err := p.r.ReadAt(buf, i*pageSize)
	if m < len(buf) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	p.pages[i] = buf
	return buf, nil
}
