package drv

import (
	"strings"
)

// Format returns d in the ATerm text Nix writes: Format(Parse(b)) is b for
// every .drv file Nix wrote (Derive form; a DrvWithVersion input derivation
// loses its dynamic outputs).
func (d *Derivation) Format() []byte {
	var b strings.Builder
	if d.Version != "" {
		b.WriteString("DrvWithVersion(")
		quote(&b, d.Version)
		b.WriteByte(',')
	} else {
		b.WriteString("Derive(")
	}
	b.WriteByte('[')
	for i, o := range d.Outputs {
		comma(&b, i)
		b.WriteByte('(')
		quoteList(&b, o.Name, o.Path, o.HashAlgo, o.Hash)
		b.WriteByte(')')
	}
	b.WriteString("],[")
	for i, in := range d.InputDrvs {
		comma(&b, i)
		b.WriteByte('(')
		quote(&b, in.Path)
		b.WriteString(",[")
		quoteList(&b, in.Outputs...)
		b.WriteString("])")
	}
	b.WriteString("],[")
	quoteList(&b, d.InputSrcs...)
	b.WriteString("],")
	quote(&b, d.System)
	b.WriteByte(',')
	quote(&b, d.Builder)
	b.WriteString(",[")
	quoteList(&b, d.Args...)
	b.WriteString("],[")
	for i, e := range d.Env {
		comma(&b, i)
		b.WriteByte('(')
		quoteList(&b, e.Name, e.Value)
		b.WriteByte(')')
	}
	b.WriteString("])")
	return []byte(b.String())
}

func comma(b *strings.Builder, i int) {
	if i > 0 {
		b.WriteByte(',')
	}
}

func quoteList(b *strings.Builder, ss ...string) {
	for i, s := range ss {
		comma(b, i)
		quote(b, s)
	}
}

// quote writes s as Nix does: in double quotes, with ", \, newline, CR and
// tab escaped.
func quote(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}
