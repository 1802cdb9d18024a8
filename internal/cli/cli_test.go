package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

// flagToken matches a flag mentioned in prose: a dash or two and a name,
// at the start or after a space, "[", "|" or ",".
var flagToken = regexp.MustCompile(`(?:^|[\s\[|,(])(--?[a-z][a-z0-9-]*)`)

// TestTableMatchesUsage checks that every flag the usage text mentions is in
// Flags and that every Flags entry has a line of its own in the usage's flag
// list, spelled as Spec gives it.
func TestTableMatchesUsage(t *testing.T) {
	usage := Usage()
	var inTable []string
	for _, f := range Flags {
		inTable = append(inTable, f.Names()...)
	}
	var mentioned []string
	for _, m := range flagToken.FindAllStringSubmatch(usage, -1) {
		if !slices.Contains(mentioned, m[1]) {
			mentioned = append(mentioned, m[1])
		}
	}
	for _, n := range mentioned {
		if !slices.Contains(inTable, n) {
			t.Errorf("usage mentions %s, which is not in cli.Flags: add it to internal/cli/flags.go", n)
		}
	}
	// The flag list: lines indented by two spaces that start with a dash.
	var specs []string
	for _, line := range strings.Split(usage, "\n") {
		if rest, ok := strings.CutPrefix(line, "  -"); ok {
			spec, _, _ := strings.Cut("-"+rest, "  ")
			specs = append(specs, strings.TrimSpace(spec))
		}
	}
	var want []string
	for _, f := range Flags {
		want = append(want, f.Spec())
	}
	if diff := cmp.Diff(want, specs); diff != "" {
		t.Errorf("usage flag list vs cli.Flags (-table +usage); Usage lists them as Spec writes them:\n%s", diff)
	}
}

// TestTableWellFormed checks the invariants the generators rely on.
func TestTableWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Flags {
		if f.Short == "" && f.Long == "" {
			t.Errorf("flag with no name: %+v", f)
		}
		if len(f.Short) > 1 {
			t.Errorf("Short %q is more than one letter", f.Short)
		}
		if f.Help == "" || strings.ContainsAny(f.Help, "\n\t") {
			t.Errorf("%s: Help must be one non-empty line", f.Spec())
		}
		if f.Arg == "" && f.Complete != None {
			t.Errorf("%s: Complete set on a boolean flag", f.Spec())
		}
		for _, n := range f.Names() {
			if seen[n] {
				t.Errorf("%s defined twice", n)
			}
			seen[n] = true
		}
	}
}

// generate writes all four files into a new temporary directory.
func generate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, gen := range map[string]func(*bytes.Buffer) error{
		"nixglhost.bash": func(b *bytes.Buffer) error { return WriteBash(b, Flags) },
		"_nixglhost":     func(b *bytes.Buffer) error { return WriteZsh(b, Flags) },
		"nixglhost.fish": func(b *bytes.Buffer) error { return WriteFish(b, Flags) },
		"nixglhost.1":    func(b *bytes.Buffer) error { return WriteMan(b, Flags, "1.2.3") },
	} {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDeterministic checks that two generations give the same bytes.
func TestDeterministic(t *testing.T) {
	a, b := generate(t), generate(t)
	for _, name := range []string{"nixglhost.bash", "_nixglhost", "nixglhost.fish", "nixglhost.1"} {
		x, _ := os.ReadFile(filepath.Join(a, name))
		y, _ := os.ReadFile(filepath.Join(b, name))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two generations", name)
		}
	}
}

// tool returns the path of a program the test needs, or skips (fails under
// NIXGLHOST_REQUIRE_FIXTURES=1).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		fixtures.Unavailable(t, "%s not installed: %v", name, err)
	}
	return p
}

// completionTree makes a working directory with two subdirectories to
// complete, and returns it.
func completionTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"dirA", "dirB"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// completionCases are command lines and what completing their last word
// must offer (every listed word) and must not offer.
var completionCases = []struct {
	name    string
	line    string
	want    []string
	notWant []string
}{
	{name: "long flag", line: "nixglhost --dr", want: []string{"--driver-root"}},
	{name: "flag list", line: "nixglhost --c", want: []string{"--cache-dir"}, notWant: []string{"--driver-root"}},
	{name: "dir argument", line: "nixglhost -d di", want: []string{"dirA", "dirB"}},
	{name: "dir argument only dirs", line: "nixglhost --cache-dir fi", notWant: []string{"file"}},
	{name: "program after flags", line: "nixglhost -d dirA -v ech", want: []string{"echo"}},
	{name: "program after --", line: "nixglhost -- ech", want: []string{"echo"}},
	{name: "no flags after program", line: "nixglhost echo --dr", notWant: []string{"--driver-root"}},
	{name: "list argument", line: "nixglhost --hook-features cu", want: []string{"cuda"}, notWant: []string{"opengl", "dirA"}},
	{name: "list argument, all values", line: "nixglhost --nix-pre-build-hook --hook-features ", want: []string{"cuda", "opengl", "nvidia-gpu", "rocm"}, notWant: []string{"dirA"}},
	{name: "list argument after a comma", line: "nixglhost --hook-features cuda,op", want: []string{"cuda,opengl"}, notWant: []string{"opengl"}},
}

// TestBashCompletion runs the generated bash completion function on command
// lines, with and without bash-completion's library.
func TestBashCompletion(t *testing.T) {
	bash := tool(t, "bash")
	dir := generate(t)
	work := completionTree(t)
	libs := map[string]string{"plain": ""}
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err == nil {
		libs["bash-completion"] = "source /usr/share/bash-completion/bash_completion"
	}
	for lib, src := range libs {
		for _, tc := range completionCases {
			t.Run(lib+"/"+tc.name, func(t *testing.T) {
				script := src + `
source "$1"
read -ra COMP_WORDS <<<"$2"
[[ $2 == *" " ]] && COMP_WORDS+=("") # the word being completed is empty
COMP_LINE=$2 COMP_POINT=${#2} COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_nixglhost
printf '%s\n' "${COMPREPLY[@]}"
`
				cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script, "bash", filepath.Join(dir, "nixglhost.bash"), tc.line)
				cmd.Dir = work
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				checkOffered(t, strings.Fields(string(out)), tc.want, tc.notWant)
			})
		}
	}
}

// TestFishCompletion asks fish for completions with the generated file
// loaded.
func TestFishCompletion(t *testing.T) {
	fish := tool(t, "fish")
	dir := generate(t)
	if out, err := exec.Command(fish, "--no-execute", filepath.Join(dir, "nixglhost.fish")).CombinedOutput(); err != nil {
		t.Fatalf("fish --no-execute: %v\n%s", err, out)
	}
	work := completionTree(t)
	for _, tc := range completionCases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(fish, "--no-config", "-c", `source $argv[1]; complete -C $argv[2]`, filepath.Join(dir, "nixglhost.fish"), tc.line)
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var got []string
			for _, line := range strings.Split(string(out), "\n") {
				word, _, _ := strings.Cut(line, "\t")
				if word != "" {
					got = append(got, strings.TrimSuffix(word, "/"))
				}
			}
			checkOffered(t, got, tc.want, tc.notWant)
		})
	}
}

func checkOffered(t *testing.T, got, want, notWant []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("offered %q, want it to include %q", got, w)
		}
	}
	for _, w := range notWant {
		if slices.Contains(got, w) {
			t.Errorf("offered %q, want it not to include %q", got, w)
		}
	}
}

// TestZshSyntax checks that zsh parses the generated completion function.
func TestZshSyntax(t *testing.T) {
	zsh := tool(t, "zsh")
	dir := generate(t)
	if out, err := exec.Command(zsh, "-n", filepath.Join(dir, "_nixglhost")).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "_nixglhost"))
	for _, f := range Flags {
		if want := "_values -s , " + strings.ToLower(f.Arg) + " " + strings.Join(f.Values, " ") + "' \\\n"; f.Complete == List && !bytes.Contains(b, []byte(want)) {
			t.Errorf("_nixglhost does not complete %s's values: no %q", f.Spec(), want)
		}
		for _, n := range f.Names() {
			if !bytes.Contains(b, []byte("'"+n)) && !bytes.Contains(b, []byte(")"+n)) && !bytes.Contains(b, []byte("*"+n)) {
				t.Errorf("_nixglhost does not offer %s", n)
			}
		}
	}
}

// TestManPage renders the man page with groff, which must print no warning,
// and checks every flag is documented.
// baselinePage is a minimal valid man page: what groff says about it is
// about the machine's groff set-up, not about a page.
const baselinePage = ".TH BASELINE 1\n.SH NAME\nbaseline \\- a page\n"

// renderMan renders page with groff's man macros, every warning on, in
// env (nil: this process's), and returns the text and the warnings about
// the page: groff's messages that a minimal page does not get too (a
// missing or noisy man.local warns about every page; it once failed CI).
// A failing groff fails t.
func renderMan(t *testing.T, groff, page string, env []string) (text string, warnings []string) {
	t.Helper()
	run := func(p string) (string, []string) {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-rLL=200n", p)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("groff %s: %v\n%s", p, err, stderr.String())
		}
		return string(out), strings.Split(strings.TrimSpace(stderr.String()), "\n")
	}
	_, machine := run(fixtures.Write(t, filepath.Join(t.TempDir(), "baseline.1"), baselinePage))
	out, all := run(page)
	for _, w := range all {
		if w != "" && !slices.Contains(machine, w) {
			warnings = append(warnings, w)
		}
	}
	// Undo the overstrike and escapes of the terminal output.
	return regexp.MustCompile(".\b|\x1b\\[[0-9;]*m").ReplaceAllString(out, ""), warnings
}

// TestRenderManJudgesThePage: warnings from the machine's groff set-up (a
// man.local that warns, on a tmac path of its own) are not the page's;
// the page's own warnings still are, beside them.
func TestRenderManJudgesThePage(t *testing.T) {
	groff := tool(t, "groff")
	tmac := t.TempDir()
	fixtures.Write(t, filepath.Join(tmac, "man.local"), ".\\\" a site set-up that warns\n.nixglhostsetupmacro\n")
	noisy := append(os.Environ(), "GROFF_TMAC_PATH="+tmac)
	dir := t.TempDir()
	tests := []struct {
		name string
		page string
		env  []string
		want []string
	}{
		{"clean page", baselinePage + "text\n", nil, nil},
		{"clean page, noisy set-up", baselinePage + "text\n", noisy, nil},
		{"bad page", baselinePage + ".nixglhostpagemacro\n", nil, []string{"bad.1:4: warning: macro 'nixglhostpagemacro' not defined"}},
		{"bad page, noisy set-up", baselinePage + ".nixglhostpagemacro\n", noisy, []string{"bad.1:4: warning: macro 'nixglhostpagemacro' not defined"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "clean.1"
			if len(tt.want) > 0 {
				name = "bad.1"
			}
			page := fixtures.Write(t, filepath.Join(dir, name), tt.page)
			_, got := renderMan(t, groff, page, tt.env)
			var want []string
			for _, w := range tt.want {
				want = append(want, "troff: "+filepath.Join(dir, w))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
	// The noisy set-up is real: groff does warn about it.
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", fixtures.Write(t, filepath.Join(dir, "probe.1"), baselinePage))
	cmd.Env = noisy
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "nixglhostsetupmacro") {
		t.Errorf("the planted man.local did not warn; the cases above prove nothing:\n%s", out)
	}
}

// TestManPage renders the page: groff has no warning about it, and the
// text holds the sections and every flag.
func TestManPage(t *testing.T) {
	groff := tool(t, "groff")
	dir := generate(t)
	text, warnings := renderMan(t, groff, filepath.Join(dir, "nixglhost.1"), nil)
	if len(warnings) > 0 {
		t.Fatalf("groff warns about the page:\n%s", strings.Join(warnings, "\n"))
	}
	for _, want := range []string{"NIXGLHOST(1)", "nixglhost 1.2.3", "SYNOPSIS", "EXIT STATUS", "$XDG_CACHE_HOME/nixglhost"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	// The synopsis: one line per form, in order, as the usage gives them.
	_, syn, _ := strings.Cut(text, "SYNOPSIS\n")
	syn, _, _ = strings.Cut(syn, "DESCRIPTION")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(syn), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	var want []string
	for _, s := range Synopsis {
		want = append(want, "nixglhost "+s)
	}
	if d := cmp.Diff(want, lines); d != "" {
		t.Errorf("rendered synopsis (-Synopsis +page):\n%s", d)
	}
	if !slices.Contains(lines, "nixglhost [-d DIR]... --cdi-spec [--cdi-dir DIR]") {
		t.Errorf("rendered synopsis lacks the --cdi-spec form:\n%s", syn)
	}
	for _, f := range Flags {
		for _, n := range f.Names() {
			if !strings.Contains(text, n) {
				t.Errorf("rendered page lacks %s", n)
			}
		}
	}
}
