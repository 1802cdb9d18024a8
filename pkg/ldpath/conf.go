package ldpath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// DefaultConf is where the loader's configuration lives inside a root.
const DefaultConf = "/etc/ld.so.conf"

// ParseConf reads the ld.so.conf at confPath (inside root; normally
// DefaultConf) and the files it includes, with the rules of glibc's ldconfig
// (checked against ldconfig 2.36):
//
//   - '#' starts a comment anywhere on a line;
//   - a line "include PAT..." names one or more glob patterns separated by
//     blanks; a relative pattern is taken against the including file's
//     directory; the matches are read in sorted (byte) order, and '*' does not
//     match a leading '.';
//   - a line "hwcap ..." (any case) is ignored, as ldconfig does;
//   - every other non-blank line is one directory: leading and trailing
//     white space and trailing slashes are dropped, and so is a "=TYPE"
//     suffix. White space, commas and colons do not separate directories
//     (ldconfig 2.36 takes "/a /b" as one directory named "/a /b"). A relative
//     directory is taken relative to "/", as "ldconfig -r" does.
//
// Each file is read at most once, which stops include loops (glibc itself
// would recurse until it runs out of files). A top or included file that is
// missing or cannot be read is skipped, as ldconfig does (with a warning),
// except that a permission error is returned.
//
// It returns the directories in order, inside-root, cleaned and absolute,
// with duplicates (same string) removed keeping the first. Use Dedup to
// merge directories that are the same on disk.
func ParseConf(root, confPath string) ([]string, error) {
	p := &confParser{root: root, read: map[string]bool{}, seen: map[string]bool{}}
	if err := p.file(confPath); err != nil {
		return nil, err
	}
	return p.dirs, nil
}

type confParser struct {
	root string
	read map[string]bool // resolved paths of files already read
	seen map[string]bool // directories already returned
	dirs []string
}

func (p *confParser) file(name string) error {
	name = path.Clean("/" + name)
	resolved, err := Resolve(p.root, name)
	if err != nil {
		return skipUnlessDenied(err)
	}
	if p.read[resolved] {
		return nil
	}
	p.read[resolved] = true
	data, err := os.ReadFile(HostPath(p.root, resolved))
	if err != nil {
		return skipUnlessDenied(err) // a directory reads as empty to glibc
	}
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "\x00") // C strings end there
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimLeft(line, cSpace)
		if line == "" {
			continue
		}
		switch {
		case len(line) > 7 && line[:7] == "include" && isBlank(line[7]):
			for _, pat := range strings.FieldsFunc(line[8:], func(r rune) bool { return r == ' ' || r == '\t' }) {
				if !strings.HasPrefix(pat, "/") {
					pat = path.Join(path.Dir(name), pat)
				}
				matches, err := p.glob(pat)
				if err != nil {
					return err
				}
				for _, m := range matches {
					if err := p.file(m); err != nil {
						return err
					}
				}
			}
		case len(line) > 5 && strings.EqualFold(line[:5], "hwcap") && isBlank(line[5]):
			// Ignored: ldconfig warns and ignores it.
		default:
			dir, _, _ := strings.Cut(line, "=")
			dir = strings.TrimRight(dir, cSpace)
			dir = path.Clean("/" + dir)
			if !p.seen[dir] {
				p.seen[dir] = true
				p.dirs = append(p.dirs, dir)
			}
		}
	}
	return nil
}

// skipUnlessDenied returns nil for a file ldconfig would skip (missing,
// a directory, a name too long, a link loop...) and err, wrapped, for a
// permission error, which hides configuration from us but not from root.
func skipUnlessDenied(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("ld.so.conf: %w", err)
	}
	return nil
}

// cSpace is the set of characters C's isspace accepts in the C locale.
const cSpace = " \t\n\v\f\r"

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// glob expands pattern (absolute, inside root) the way glob(3) does with no
// flags, resolving every directory inside root: matches are sorted, and a
// wildcard does not match a leading '.'. A pattern with no wildcard matches
// itself whether or not it exists (the caller ignores missing files).
func (p *confParser) glob(pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, nil // glob(3) reports GLOB_NOMATCH for a bad pattern; ldconfig ignores it
	}
	prefixes := []string{"/"}
	comps := strings.Split(strings.Trim(path.Clean(pattern), "/"), "/")
	for _, comp := range comps {
		if comp == "" {
			continue
		}
		if !hasMeta(comp) {
			for j := range prefixes {
				prefixes[j] = path.Join(prefixes[j], comp)
			}
			continue
		}
		var next []string
		for _, dir := range prefixes {
			rdir, err := Resolve(p.root, dir)
			if err != nil {
				continue
			}
			entries, err := os.ReadDir(HostPath(p.root, rdir))
			if err != nil {
				continue
			}
			for _, e := range entries {
				n := e.Name()
				if strings.HasPrefix(n, ".") && !strings.HasPrefix(comp, ".") {
					continue
				}
				if ok, _ := path.Match(comp, n); ok {
					next = append(next, path.Join(dir, n))
				}
			}
		}
		prefixes = next
	}
	sort.Strings(prefixes)
	return prefixes, nil
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }
