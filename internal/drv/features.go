package drv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxFeatureValue bounds the one value Features keeps in memory: the
// requiredSystemFeatures environment entry, or that member of __json.
// Nix's own feature lists are a few words.
const maxFeatureValue = 1 << 20

// ReadFeatures returns the requiredSystemFeatures of the .drv file at path
// (as Derivation.RequiredSystemFeatures does) without building the
// derivation: it streams the file once, checking the grammar as it goes,
// and keeps only the features: the __json value of a derivation with
// structured attributes is checked as it streams by, and only its
// requiredSystemFeatures member is kept. Time is linear in the file's size
// and memory bounded whatever the file holds (a 64 KiB read buffer, for
// __json a nesting stack of at most 10,000 bytes, and the features' own
// text, at most 1 MiB): the pre-build hook runs before
// every build of every user, so a hostile .drv must cost it nothing. A
// file larger than MaxSize is an error naming it.
func ReadFeatures(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > MaxSize {
		return nil, fmt.Errorf("derivation %s: %d bytes, larger than the %d a derivation may have", path, fi.Size(), MaxSize)
	}
	fs, err := Features(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("derivation %s: %w", path, err)
	}
	return fs, nil
}

// Features reads a .drv's text from r and returns its
// requiredSystemFeatures, like Parse followed by RequiredSystemFeatures but
// without keeping the derivation (see ReadFeatures). Input past MaxSize
// bytes is an error.
//
// It is long because it is a scanner of the derivation format with one case
// per token.
func Features(r io.Reader) ([]string, error) {
	s := &scanner{r: bufio.NewReaderSize(r, 64<<10)}
	name, err := s.ident()
	if err != nil {
		return nil, err
	}
	env := 6
	switch name {
	case "Derive":
	case "DrvWithVersion":
		env = 7
	default:
		return nil, s.errorf("unknown derivation constructor %q", name)
	}
	if err := s.expect('('); err != nil {
		return nil, err
	}
	var plain []byte
	var structured []string
	var hasPlain, hasJSON bool
	fields := 0
	err = s.seq(')', func(i int) error {
		fields++
		if i != env {
			return s.skip(1)
		}
		if err := s.expect('['); err != nil {
			return err
		}
		return s.seq(']', func(int) error {
			if err := s.expect('('); err != nil {
				return err
			}
			var key []byte
			long, err := s.str(&key, 64)
			if err != nil {
				return err
			}
			if err := s.expect(','); err != nil {
				return err
			}
			// The first of each counts, as for Derivation.Getenv.
			switch k := string(key); {
			case !long && k == "requiredSystemFeatures" && !hasPlain:
				hasPlain = true
				if long, err := s.str(&plain, maxFeatureValue); err != nil {
					return err
				} else if long {
					return s.errorf("requiredSystemFeatures is longer than %d bytes", maxFeatureValue)
				}
			case !long && k == "__json" && !hasJSON:
				hasJSON = true
				if structured, err = s.structuredFeatures(); err != nil {
					return err
				}
			default:
				if _, err := s.str(nil, 0); err != nil {
					return err
				}
			}
			return s.expect(')')
		})
	})
	if err != nil {
		return nil, err
	}
	if fields != env+1 {
		return nil, s.errorf("%s has %d fields, want %d", name, fields, env+1)
	}
	for {
		c, err := s.r.ReadByte()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if !isSpace(c) {
			return nil, s.errorf("trailing data after the derivation")
		}
		s.off++
	}
	if s.off > MaxSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxSize)
	}
	if hasJSON {
		return structured, nil
	}
	return strings.FieldsFunc(string(plain), func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}), nil
}

// scanner walks a .drv's terms from a stream without keeping them.
type scanner struct {
	r   *bufio.Reader
	off int
}

func (s *scanner) errorf(format string, args ...any) error {
	return &FormatError{Off: s.off, Msg: fmt.Sprintf(format, args...)}
}

// peek returns the next byte without consuming it.
func (s *scanner) peek() (byte, error) {
	if s.off > MaxSize {
		return 0, fmt.Errorf("larger than %d bytes", MaxSize)
	}
	b, err := s.r.Peek(1)
	if errors.Is(err, io.EOF) {
		return 0, s.errorf("unexpected end of file")
	}
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// next consumes and returns the next byte.
func (s *scanner) next() (byte, error) {
	if s.off > MaxSize {
		return 0, fmt.Errorf("larger than %d bytes", MaxSize)
	}
	c, err := s.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, s.errorf("unexpected end of file")
		}
		return 0, err
	}
	s.off++
	return c, nil
}

func (s *scanner) expect(want byte) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	if c != want {
		return s.errorf("expected %q, found %q", want, c)
	}
	s.next()
	return nil
}

// ident reads a constructor name (at most 64 bytes).
func (s *scanner) ident() (string, error) {
	var b []byte
	for {
		c, err := s.peek()
		if err != nil {
			return "", err
		}
		if !isIdent(c) {
			break
		}
		if len(b) == 64 {
			return "", s.errorf("constructor name longer than 64 bytes")
		}
		b = append(b, c)
		s.next()
	}
	if len(b) == 0 {
		c, _ := s.peek()
		return "", s.errorf("unexpected %q", c)
	}
	return string(b), nil
}

// seq reads terms separated by commas up to close (the opening byte was
// consumed), calling item with each one's index to consume it.
func (s *scanner) seq(close byte, item func(i int) error) error {
	if c, err := s.peek(); err != nil {
		return err
	} else if c == close {
		s.next()
		return nil
	}
	for i := 0; ; i++ {
		if err := item(i); err != nil {
			return err
		}
		c, err := s.peek()
		if err != nil {
			return s.errorf("unexpected end of file, expected ',' or %q", close)
		}
		switch c {
		case ',':
			s.next()
		case close:
			s.next()
			return nil
		default:
			return s.errorf("expected ',' or %q, found %q", close, c)
		}
	}
}

// skip checks and consumes one term.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return s.errorf("nested deeper than %d", maxDepth)
	}
	c, err := s.peek()
	if err != nil {
		return err
	}
	each := func(int) error { return s.skip(depth + 1) }
	switch {
	case c == '"':
		_, err := s.str(nil, 0)
		return err
	case c == '[':
		s.next()
		return s.seq(']', each)
	case c == '(':
		s.next()
		return s.seq(')', each)
	case isIdent(c):
		if _, err := s.ident(); err != nil {
			return err
		}
		if err := s.expect('('); err != nil {
			return err
		}
		return s.seq(')', each)
	default:
		return s.errorf("unexpected %q", c)
	}
}

// str consumes a quoted string, decoding it as Parse does into *keep (when
// keep is not nil) up to max bytes; long reports that it held more.
//
// It is long because it is a JSON string decoder with one case per escape.
func (s *scanner) str(keep *[]byte, max int) (long bool, err error) {
	start := s.off
	if err := s.expect('"'); err != nil {
		return false, err
	}
	for {
		if keep == nil || long {
			s.skipPlain(&plainATerm)
		}
		c, ok, err := s.strByte(start)
		if err != nil || !ok {
			return long, err
		}
		if keep != nil {
			if len(*keep) < max {
				*keep = append(*keep, c)
			} else {
				long = true
			}
		}
	}
}

// strByte consumes and returns the next byte of the quoted string that
// began at start, decoded as Parse does: a backslash makes the next byte
// literal, except that \n, \r and \t are control characters. ok is false
// at the closing quote, which it consumes.
func (s *scanner) strByte(start int) (c byte, ok bool, err error) {
	c, err = s.next()
	if err != nil {
		return 0, false, unterminated(start, err)
	}
	switch c {
	case '"':
		return 0, false, nil
	case '\\':
		e, err := s.next()
		if err != nil {
			return 0, false, unterminated(start, err)
		}
		switch e {
		case 'n':
			return '\n', true, nil
		case 'r':
			return '\r', true, nil
		case 't':
			return '\t', true, nil
		}
		return e, true, nil
	}
	return c, true, nil
}

// unterminated turns a format error met inside the string that began at
// start (the end of the file) into "unterminated string" there.
func unterminated(start int, err error) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		return &FormatError{Off: start, Msg: "unterminated string"}
	}
	return err
}

// plainATerm and plainJSON mark the bytes that stand for themselves in a
// .drv string, and in a JSON string inside one: all but the quote and the
// backslash, and for JSON the control characters too.
var plainATerm, plainJSON = func() (a, j [256]bool) {
	for c := range 256 {
		a[c] = c != '"' && c != '\\'
		j[c] = a[c] && c >= 0x20
	}
	return a, j
}()

// skipPlain consumes the buffered bytes before the first that plain does
// not mark, without looking at them one call at a time: the bulk of a
// long string. The read buffer bounds each call, and next checks MaxSize
// before reading more.
func (s *scanner) skipPlain(plain *[256]bool) {
	buf, _ := s.r.Peek(s.r.Buffered())
	n := 0
	for n < len(buf) && plain[buf[n]] {
		n++
	}
	s.r.Discard(n)
	s.off += n
}
