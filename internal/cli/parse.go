package cli

import (
	"fmt"
	"strconv"
	"strings"
)

// Lookup returns the flag of flags that name (without dashes, "d" or
// "driver-root") names.
func Lookup(flags []Flag, name string) (Flag, bool) {
	for _, f := range flags {
		if name != "" && (name == f.Short || name == f.Long) {
			return f, true
		}
	}
	return Flag{}, false
}

// Display returns the flag's spelling in messages, GNU style: the long name
// with two dashes ("--doctor"), else the short one with one ("-d").
func (f Flag) Display() string {
	if f.Long != "" {
		return "--" + f.Long
	}
	return "-" + f.Short
}

// spell writes a name the user gave as a flag: one dash for one letter,
// two for a longer name.
func spell(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// Check reads args the way cmd/nixglhost's flag parsing (Go's flag package)
// does: flags take one or two dashes, an argument as -name=ARG or -name ARG,
// and end at "--" or at the first word that is not a flag. It returns a
// usage error for what that parsing would refuse, worded for a person: an
// unknown flag with the nearest names ("did you mean --doctor?"), a flag
// missing its argument, a boolean flag given a value that is not one. Flags
// are spelled GNU style in every message (--doctor, -d), however they were
// typed.
func Check(flags []Flag, args []string) error {
	for i := 0; i < len(args); i++ {
		s := args[i]
		if len(s) < 2 || s[0] != '-' {
			return nil
		}
		if s == "--" {
			return nil
		}
		name := strings.TrimPrefix(s[1:], "-")
		if name == "" || name[0] == '-' || name[0] == '=' {
			return fmt.Errorf("%s: not a flag (flags are -x or --name)", s)
		}
		name, value, hasValue := strings.Cut(name, "=")
		f, ok := Lookup(flags, name)
		if !ok {
			return unknown(flags, s, name)
		}
		switch {
		case f.Arg == "" && hasValue:
			if _, err := strconv.ParseBool(value); err != nil {
				return fmt.Errorf("%s takes no argument (got %q)", f.Display(), value)
			}
		case f.Arg != "" && !hasValue:
			if i+1 == len(args) {
				return fmt.Errorf("%s needs an argument: %s %s", f.Display(), f.Display(), f.Arg)
			}
			i++
		}
	}
	return nil
}

// unknown is the error for the flag s (name without dashes) that flags
// lacks: the nearest names, or, for -vp, the hint that short flags are given
// one by one.
func unknown(flags []Flag, s, name string) error {
	msg := "unknown flag " + spell(name)
	if s[1] != '-' && len(name) > 1 {
		var shorts []string
		for _, r := range name {
			f, ok := Lookup(flags, string(r))
			if !ok || f.Short != string(r) {
				shorts = nil
				break
			}
			shorts = append(shorts, "-"+string(r))
		}
		if shorts != nil {
			return fmt.Errorf("%s; give short flags one by one: %s", msg, strings.Join(shorts, " "))
		}
	}
	if near := Suggest(flags, name); len(near) > 0 {
		return fmt.Errorf("%s; did you mean %s?", msg, orList(near))
	}
	return fmt.Errorf("%s (nixglhost --help lists the flags)", msg)
}

// orList joins names as "a", "a or b", "a, b or c".
func orList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Suggest returns the flags of flags nearest to name (a mistyped name
// without dashes), spelled GNU style, nearest first, at most three: those
// within a small edit distance (a letter left out, added, changed, or two
// swapped: one edit each; two edits for a name of five letters or more),
// and those name is the start of.
func Suggest(flags []Flag, name string) []string {
	if name == "" {
		return nil
	}
	limit := 1
	if len(name) >= 5 {
		limit = 2
	}
	type near struct {
		spell string
		dist  int
	}
	var found []near
	for _, f := range flags {
		best := -1
		for _, n := range []string{f.Long, f.Short} {
			if n == "" {
				continue
			}
			d := editDistance(strings.ToLower(name), n)
			if len(n) == 1 && d > 0 {
				// Every letter is one edit from every other.
				continue
			}
			if len(name) >= 2 && len(n) > len(name) && strings.HasPrefix(n, name) {
				d = min(d, 1)
			}
			if d <= limit && (best < 0 || d < best) {
				best = d
			}
		}
		if best >= 0 {
			found = append(found, near{f.Display(), best})
		}
	}
	// Stable by distance, table order within a distance.
	var out []string
	for d := 0; d <= limit && len(out) < 3; d++ {
		for _, n := range found {
			if n.dist == d && len(out) < 3 {
				out = append(out, n.spell)
			}
		}
	}
	return out
}

// editDistance is the optimal string alignment distance of a and b: the
// fewest letters inserted, deleted or changed, or adjacent pairs swapped.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	// d[i][j] is the distance of x[:i] and y[:j].
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}
