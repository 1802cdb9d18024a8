package elfscan

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"strings"
)

// ReplaceRodataString overwrites, in the ELF file at path, every
// NUL-terminated string of its read-only data sections (.rodata and
// .rodata.*) that begins with prefix followed by the string's end or a ':'
// (a search path list whose first element is prefix), with repl padded with
// NUL bytes to the old string's length. repl must not be longer than the
// string it replaces; such a string is left as it is. It returns how many
// strings were replaced. The file's size and layout do not change: this is
// for the compiled-in default search paths of a copy (Mesa's DRI driver
// directory), never for a host file.
func ReplaceRodataString(path, prefix, repl string) (int, error) {
	if prefix == "" {
		return 0, fmt.Errorf("%s: empty prefix", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	n, err := replaceRodata(f, st.Size(), f, prefix, repl)
	if err != nil {
		return n, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// replaceRodata is ReplaceRodataString on a file of size bytes read from
// r and written through w.
func replaceRodata(r io.ReaderAt, size int64, w io.WriterAt, prefix, repl string) (int, error) {
	f, err := open(r, size, "")
	if err != nil {
		return 0, err
	}
	secs, _, err := f.sectionHeaders()
	if err != nil || len(secs) == 0 {
		return 0, err
	}
	names, err := f.sectionNames(secs)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, s := range secs {
		name := names[i]
		if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_WRITE != 0 || s.Flags&elf.SHF_ALLOC == 0 ||
			!(name == ".rodata" || strings.HasPrefix(name, ".rodata.")) {
			continue
		}
		if err := f.inFile(s, "section "+name); err != nil {
			return n, err
		}
		if s.Size > maxSection {
			return n, fmt.Errorf("section %s too large", name)
		}
		data := make([]byte, s.Size)
		if m, err := r.ReadAt(data, int64(s.Off)); m < len(data) {
			return n, ioError("", "section "+name, int64(s.Off), err)
		}
		for off := 0; ; {
			i := bytes.Index(data[off:], []byte(prefix))
			if i < 0 {
				break
			}
			start := off + i
			off = start + 1
			// A string's start: the section's start or after a NUL.
			if start > 0 && data[start-1] != 0 {
				continue
			}
			end := bytes.IndexByte(data[start:], 0)
			if end < 0 {
				break
			}
			str := data[start : start+end]
			if len(str) > len(prefix) && str[len(prefix)] != ':' || len(repl) > len(str) {
				continue
			}
			buf := make([]byte, len(str))
			copy(buf, repl)
			if _, err := w.WriteAt(buf, int64(s.Off)+int64(start)); err != nil {
				return n, err
			}
			n++
			off = start + end
		}
	}
	return n, nil
}
