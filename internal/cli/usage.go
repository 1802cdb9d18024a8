package cli

import "strings"

// UsageDescription is the paragraph the usage gives after the synopsis.
const UsageDescription = `Run PROGRAM (a Nix-built program) with the host's NVIDIA driver: the driver's
libraries are put in a private cache entry laid out like /run/opengl-driver,
whose lib/ is appended to the library path; nothing else of the host's is
exposed. Exit status: PROGRAM's own once it runs; 2 for usage errors; 1 for
any other failure before PROGRAM starts.`

// specWidth is the width of the usage's spec column; a longer spec has
// its text on the lines below it.
const specWidth = 18

// Usage returns the text of nixglhost --help: the synopsis, the
// description, and one entry per flag of Flags, in order.
func Usage() string {
	var b strings.Builder
	for i, s := range Synopsis {
		if i == 0 {
			b.WriteString("usage: nixglhost " + s + "\n")
		} else {
			b.WriteString("       nixglhost " + s + "\n")
		}
	}
	b.WriteString("\n" + UsageDescription + "\n\nflags:\n")
	indent := strings.Repeat(" ", 2+specWidth+2)
	for _, f := range Flags {
		text := f.Usage
		if text == "" {
			text = f.Help
		}
		lines := strings.Split(text, "\n")
		spec := f.Spec()
		if len(spec) <= specWidth {
			b.WriteString("  " + spec + strings.Repeat(" ", specWidth-len(spec)+2) + lines[0] + "\n")
			lines = lines[1:]
		} else {
			b.WriteString("  " + spec + "\n")
		}
		for _, l := range lines {
			b.WriteString(indent + l + "\n")
		}
	}
	return b.String()
}
