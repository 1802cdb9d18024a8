package drv

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// maxJSONDepth is encoding/json's nesting limit, so that the streaming
// reader accepts what RequiredSystemFeatures accepts.
const maxJSONDepth = 10000

// featuresKey is the member of the __json object that Features reads.
const featuresKey = "requiredSystemFeatures"

// jsonReader checks the JSON text of a __json value while the scanner
// decodes it from the .drv string that holds it, and keeps only the
// requiredSystemFeatures member's value: the rest passes through a few
// bytes at a time, however long it is. It accepts exactly the JSON that
// encoding/json accepts.
type jsonReader struct {
	s *scanner
	// start is the file offset of the .drv string's opening quote.
	start int
	// at is the file offset of the byte read last.
	at int
	// end: the .drv string's closing quote was read.
	end bool
	// back: c is to be read again.
	back bool
	c    byte
	// raw, when not nil, receives the bytes read, up to maxFeatureValue;
	// long says there were more.
	raw  *[]byte
	long bool
	// stack holds the open '[' and '{' below the top-level object.
	stack []byte
	key   []byte
}

// structuredFeatures reads the __json value, a quoted string, and returns
// the requiredSystemFeatures list of the JSON object it holds (none for a
// JSON null, as encoding/json gives), keeping only that list.
func (s *scanner) structuredFeatures() ([]string, error) {
	start := s.off
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	j := &jsonReader{s: s, start: start}
	var raw []byte
	found, long, err := j.object(&raw)
	if err != nil {
		return nil, fmt.Errorf("structured attributes (__json): %w", err)
	}
	if !found {
		return nil, nil
	}
	if long {
		return nil, fmt.Errorf("structured attributes (__json): %s is longer than %d bytes", featuresKey, maxFeatureValue)
	}
	var fs []string
	if err := json.Unmarshal(raw, &fs); err != nil {
		return nil, fmt.Errorf("structured attributes (__json): %s is not a list of strings: %w", featuresKey, err)
	}
	return fs, nil
}

// errorf returns a FormatError at the byte read last.
func (j *jsonReader) errorf(format string, args ...any) error {
	return &FormatError{Off: j.at, Msg: fmt.Sprintf(format, args...)}
}

// read returns the next byte of the JSON text; ok is false at its end (the
// .drv string's closing quote).
func (j *jsonReader) read() (c byte, ok bool, err error) {
	if j.back {
		j.back = false
		c, ok = j.c, true
	} else {
		if j.end {
			return 0, false, nil
		}
		j.at = j.s.off
		c, ok, err = j.s.strByte(j.start)
		if err != nil {
			return 0, false, err
		}
		if !ok {
			j.end = true
			return 0, false, nil
		}
		j.c = c
	}
	if j.raw != nil {
		if len(*j.raw) < maxFeatureValue {
			*j.raw = append(*j.raw, c)
		} else {
			j.long = true
		}
	}
	return c, true, nil
}

// unread puts back the byte read last, which was not the end.
func (j *jsonReader) unread() {
	j.back = true
	if j.raw != nil && !j.long && len(*j.raw) > 0 {
		*j.raw = (*j.raw)[:len(*j.raw)-1]
	}
}

// next returns the next byte that is not JSON whitespace; the end of the
// text is an error.
func (j *jsonReader) next(what string) (byte, error) {
	for {
		c, ok, err := j.read()
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, j.errorf("unexpected end of JSON input, expected %s", what)
		}
		if !isSpace(c) {
			return c, nil
		}
	}
}

// object reads the whole JSON text: an object, whose last
// requiredSystemFeatures member's value goes to *raw (found), or null.
func (j *jsonReader) object(raw *[]byte) (found, long bool, err error) {
	c, err := j.next("a JSON object")
	if err != nil {
		return false, false, err
	}
	switch c {
	case 'n':
		if err := j.literal("null"); err != nil {
			return false, false, err
		}
	case '{':
		c, err := j.next("a member name or '}'")
		if err != nil {
			return false, false, err
		}
		for c != '}' {
			if c != '"' {
				return false, false, j.errorf("invalid character %q looking for the beginning of a member name", c)
			}
			j.key = j.key[:0]
			keyLong, err := j.str(&j.key, len(featuresKey))
			if err != nil {
				return false, false, err
			}
			if c, err = j.next("':'"); err != nil {
				return false, false, err
			} else if c != ':' {
				return false, false, j.errorf("invalid character %q after a member name", c)
			}
			if c, err = j.next("a value"); err != nil {
				return false, false, err
			}
			if !keyLong && string(j.key) == featuresKey {
				// The last one counts, as for encoding/json.
				found = true
				*raw = append((*raw)[:0], c)
				j.raw, j.long = raw, false
				err = j.value(c)
				j.raw, long = nil, j.long
			} else {
				err = j.value(c)
			}
			if err != nil {
				return false, false, err
			}
			if c, err = j.next("',' or '}'"); err != nil {
				return false, false, err
			}
			switch c {
			case ',':
				if c, err = j.next("a member name"); err != nil {
					return false, false, err
				}
				if c == '}' {
					return false, false, j.errorf("invalid character '}' looking for the beginning of a member name")
				}
			case '}':
			default:
				return false, false, j.errorf("invalid character %q after an object member", c)
			}
		}
	default:
		return false, false, j.errorf("not a JSON object: it begins with %q", c)
	}
	for {
		c, ok, err := j.read()
		if err != nil {
			return false, false, err
		}
		if !ok {
			return found, long, nil
		}
		if !isSpace(c) {
			return false, false, j.errorf("invalid character %q after the top-level value", c)
		}
	}
}

// value checks one JSON value whose first byte, c, was read, nested in
// the top-level object. It recurses through an explicit stack of open
// containers, at most maxJSONDepth deep with the top-level object.
func (j *jsonReader) value(c byte) error {
	j.stack = j.stack[:0]
	for {
		// c begins a value.
		var err error
		switch {
		case c == '{' || c == '[':
			if len(j.stack)+2 > maxJSONDepth {
				return j.errorf("nested deeper than %d", maxJSONDepth)
			}
			j.stack = append(j.stack, c)
			open := c
			if c, err = j.next("a value"); err != nil {
				return err
			}
			if open == '[' && c != ']' {
				continue
			}
			if open == '{' && c != '}' {
				if c, err = j.member(c); err != nil {
					return err
				}
				continue
			}
			j.stack = j.stack[:len(j.stack)-1]
		case c == '"':
			_, err = j.str(nil, 0)
		case c == 't':
			err = j.literal("true")
		case c == 'f':
			err = j.literal("false")
		case c == 'n':
			err = j.literal("null")
		case c == '-' || c >= '0' && c <= '9':
			err = j.number(c)
		default:
			err = j.errorf("invalid character %q looking for the beginning of a value", c)
		}
		if err != nil {
			return err
		}
		if c, err = j.following(); err != nil || len(j.stack) == 0 {
			return err
		}
	}
}

// following reads on after a value: past the ends of the containers it
// closes, and the ',' and member name before the next value, whose first
// byte it returns. With no container left open it reads nothing.
func (j *jsonReader) following() (byte, error) {
	for len(j.stack) > 0 {
		top := j.stack[len(j.stack)-1]
		c, err := j.next("',' or a closing bracket")
		if err != nil {
			return 0, err
		}
		switch {
		case c == ',':
			if c, err = j.next("a value"); err != nil {
				return 0, err
			}
			if top == '{' {
				return j.member(c)
			}
			return c, nil
		case top == '{' && c == '}', top == '[' && c == ']':
			j.stack = j.stack[:len(j.stack)-1]
		case top == '{':
			return 0, j.errorf("invalid character %q after an object member", c)
		default:
			return 0, j.errorf("invalid character %q after an array element", c)
		}
	}
	return 0, nil
}

// member reads a member name, which c begins, and its ':', and returns
// the first byte of its value.
func (j *jsonReader) member(c byte) (byte, error) {
	if c != '"' {
		return 0, j.errorf("invalid character %q looking for the beginning of a member name", c)
	}
	if _, err := j.str(nil, 0); err != nil {
		return 0, err
	}
	c, err := j.next("':'")
	if err != nil {
		return 0, err
	}
	if c != ':' {
		return 0, j.errorf("invalid character %q after a member name", c)
	}
	return j.next("a value")
}

// literal reads the rest of word, whose first byte was read.
func (j *jsonReader) literal(word string) error {
	for i := 1; i < len(word); i++ {
		c, ok, err := j.read()
		if err != nil {
			return err
		}
		if !ok {
			return j.errorf("unexpected end of JSON input in literal %s", word)
		}
		if c != word[i] {
			return j.errorf("invalid character %q in literal %s", c, word)
		}
	}
	return nil
}

// number reads a JSON number whose first byte, c, was read, and puts back
// the byte after it.
func (j *jsonReader) number(c byte) error {
	digits := func(atLeastOne bool) (byte, bool, error) {
		n := 0
		for {
			c, ok, err := j.read()
			if err != nil || !ok {
				if err == nil && atLeastOne && n == 0 {
					err = j.errorf("unexpected end of JSON input in a number")
				}
				return 0, false, err
			}
			if c < '0' || c > '9' {
				if atLeastOne && n == 0 {
					return 0, false, j.errorf("invalid character %q in a number", c)
				}
				return c, true, nil
			}
			n++
		}
	}
	var ok bool
	var err error
	if c == '-' {
		if c, ok, err = j.read(); err != nil {
			return err
		} else if !ok {
			return j.errorf("unexpected end of JSON input in a number")
		} else if c < '0' || c > '9' {
			return j.errorf("invalid character %q in a number", c)
		}
	}
	if c == '0' {
		c, ok, err = j.read()
	} else {
		c, ok, err = digits(false)
	}
	if err != nil || !ok {
		return err
	}
	if c == '.' {
		if c, ok, err = digits(true); err != nil || !ok {
			return err
		}
	}
	if c == 'e' || c == 'E' {
		if c, ok, err = j.read(); err != nil {
			return err
		} else if !ok {
			return j.errorf("unexpected end of JSON input in a number")
		}
		if c != '+' && c != '-' {
			j.unread()
		}
		if c, ok, err = digits(true); err != nil || !ok {
			return err
		}
	}
	j.unread()
	return nil
}

// str reads a JSON string whose opening quote was read, decoding it into
// *keep (when keep is not nil) up to max bytes; long reports that it held
// more. Escapes and control characters are checked as encoding/json
// checks them. What is kept is only ever compared with an ASCII name, so
// it is exact for ASCII only: a \u escape of any other rune is kept as
// the one byte 0x80, and other bytes, valid UTF-8 or not, as they are
// (encoding/json would give U+FFFD or the rune, unequal to any ASCII name
// all the same).
func (j *jsonReader) str(keep *[]byte, max int) (long bool, err error) {
	add := func(b byte) {
		if keep == nil {
			return
		}
		if len(*keep) < max {
			*keep = append(*keep, b)
		} else {
			long = true
		}
	}
	for {
		if (keep == nil || long) && j.raw == nil && !j.back && !j.end {
			j.s.skipPlain(&plainJSON)
		}
		c, ok, err := j.read()
		if err != nil {
			return false, err
		}
		if !ok {
			return false, j.errorf("unexpected end of JSON input in a string")
		}
		switch {
		case c == '"':
			return long, nil
		case c < 0x20:
			return false, j.errorf("invalid character %q in a string", c)
		case c == '\\':
			e, ok, err := j.read()
			if err != nil {
				return false, err
			}
			if !ok {
				return false, j.errorf("unexpected end of JSON input in a string escape")
			}
			switch e {
			case '"', '\\', '/':
				add(e)
			case 'b':
				add('\b')
			case 'f':
				add('\f')
			case 'n':
				add('\n')
			case 'r':
				add('\r')
			case 't':
				add('\t')
			case 'u':
				var r rune
				for range 4 {
					h, ok, err := j.read()
					if err != nil {
						return false, err
					}
					if !ok {
						return false, j.errorf("unexpected end of JSON input in a \\u escape")
					}
					switch {
					case h >= '0' && h <= '9':
						r = r<<4 | rune(h-'0')
					case h >= 'a' && h <= 'f':
						r = r<<4 | rune(h-'a'+10)
					case h >= 'A' && h <= 'F':
						r = r<<4 | rune(h-'A'+10)
					default:
						return false, j.errorf("invalid character %q in a \\u escape", h)
					}
				}
				if r < utf8.RuneSelf {
					add(byte(r))
				} else {
					// Not ASCII, so not a name we look for: one byte
					// that is not ASCII either stands for it.
					add(utf8.RuneSelf)
				}
			default:
				return false, j.errorf("invalid character %q in a string escape", e)
			}
		default:
			add(c)
		}
	}
}
