package ldpath

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixglhost/nixglhost/internal/fixtures"
)

func TestParseConf(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  []string
	}{
		{
			name:  "missing top file",
			files: nil,
			want:  nil,
		},
		{
			name: "comments anywhere and blank lines",
			files: []string{"etc/ld.so.conf=" +
				"# leading comment\n" +
				"\n" +
				"   \t\n" +
				"/usr/local/lib # trailing comment\n" +
				"  /opt/a/lib/  \n" +
				"/opt/b#glued comment\n" +
				"#/commented/out\n"},
			want: []string{"/usr/local/lib", "/opt/a/lib", "/opt/b"},
		},
		{
			name: "one directory per line, separators are not split (ldconfig 2.36)",
			files: []string{"etc/ld.so.conf=" +
				"/a /b\n" +
				"/c:/d\n" +
				"/e,/f\n"},
			want: []string{"/a /b", "/c:/d", "/e,/f"},
		},
		{
			name:  "type suffix, relative dir, CRLF, duplicates",
			files: []string{"etc/ld.so.conf=/g=libc6\nrel\n/h\r\n/g\n/h/\n//h\n"},
			want:  []string{"/g", "/rel", "/h"},
		},
		{
			name: "include with several patterns, sorted glob, relative and nested",
			files: []string{
				"etc/ld.so.conf=/first\ninclude ld.so.conf.d/*.conf\t /etc/extra.conf other/x?.conf\n/last\n",
				"etc/ld.so.conf.d/b.conf=/b # b\ninclude ../nested/*.conf\n",
				"etc/ld.so.conf.d/a.conf=/a\n",
				"etc/ld.so.conf.d/c.txt=/not-a-conf\n",
				"etc/ld.so.conf.d/.hidden.conf=/hidden\n",
				"etc/nested/n.conf=/nested\n",
				"etc/extra.conf=/extra\n",
				"etc/other/x1.conf=/x1\n",
				"etc/other/x22.conf=/x22\n",
			},
			want: []string{"/first", "/a", "/b", "/nested", "/extra", "/x1", "/last"},
		},
		{
			name: "include loop read once",
			files: []string{
				"etc/ld.so.conf=/top\ninclude /etc/loop.conf\ninclude /etc/ld.so.conf\n",
				"etc/loop.conf=/loop\ninclude loop.conf\ninclude ld.so.conf\n",
			},
			want: []string{"/top", "/loop"},
		},
		{
			name: "missing include, no match, directory match",
			files: []string{
				"etc/ld.so.conf=include /etc/missing.conf /etc/none.d/*.conf /etc/d.d/*\n/after\n",
				"etc/d.d/sub.conf/",
				"etc/d.d/z.conf=/z\n",
			},
			want: []string{"/z", "/after"},
		},
		{
			name: "hwcap lines ignored, include keyword needs a blank",
			files: []string{
				"etc/ld.so.conf=hwcap 1 nosegneg\nHWCAP\t0 foo\ninclude\n/includes\nhwcapdir\n",
			},
			want: []string{"/include", "/includes", "/hwcapdir"},
		},
		{
			name: "includes followed through links inside root",
			files: []string{
				"etc/ld.so.conf=include /etc/ld.so.conf.d/*.conf\n",
				"etc/ld.so.conf.d->/opt/conf",
				"opt/conf/nvidia.conf=/usr/local/nvidia/lib64\n",
			},
			want: []string{"/usr/local/nvidia/lib64"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tree(t, tt.files...)
			got, err := ParseConf(root, DefaultConf)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseConf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseConfTopIsDirectory(t *testing.T) {
	root := tree(t, "etc/ld.so.conf/")
	got, err := ParseConf(root, DefaultConf)
	if err != nil || len(got) != 0 {
		t.Fatalf("ParseConf = %q, %v; want nothing", got, err)
	}
}

// TestParseConfUnreadable runs as an unprivileged user (root reads every
// file): an ld.so.conf it cannot read is an error naming the file.
func TestParseConfUnreadable(t *testing.T) {
	if !fixtures.AsNonRoot(t) {
		return
	}
	root := tree(t, "etc/ld.so.conf=/a\n")
	if err := os.Chmod(filepath.Join(root, "etc/ld.so.conf"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConf(root, DefaultConf); err == nil || !strings.Contains(err.Error(), "ld.so.conf") {
		t.Fatalf("ParseConf of an unreadable file: %v; want an error naming it", err)
	}
}

// TestParseConfMatchesLdconfig gives the same tree to the real ldconfig and
// compares the directories it reports reading (ldconfig -v) with ParseConf.
func TestParseConfMatchesLdconfig(t *testing.T) {
	ldconfig := needLdconfigRoot(t)
	root := tree(t,
		"etc/ld.so.conf=# top\n/opt/one # c\ninclude ld.so.conf.d/*.conf\n/opt/two=libc6\n  /opt/three/ \n/opt/c1:/opt/c2\n/opt/sp ace\n",
		"etc/ld.so.conf.d/10-a.conf=/opt/a\ninclude /etc/more/*.conf /etc/extra.conf\n",
		"etc/ld.so.conf.d/20-b.conf=hwcap 1 foo\n/opt/b\n/opt/one\n",
		"etc/more/m1.conf=/opt/m1\n",
		"etc/extra.conf=/opt/extra\n",
	)
	lib := realLib(t)
	// "/opt/c1:/opt/c2" and "/opt/sp ace" are one directory each to ldconfig.
	for _, d := range []string{"opt/one", "opt/two", "opt/three", "opt/a", "opt/b", "opt/m1", "opt/extra", "opt/c1:/opt/c2", "opt/sp ace"} {
		copyFile(t, lib, filepath.Join(root, d, filepath.Base(lib)))
	}
	out, _ := exec.Command(ldconfig, "-r", root, "-v", "-N", "-X").CombinedOutput()
	var want []string
	re := regexp.MustCompile(`(?m)^(/.*): \(from (\S+):\d+\)$`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		want = append(want, m[1])
	}
	if len(want) != 9 {
		t.Fatalf("ldconfig -v reported %d directories, want 9:\n%s", len(want), out)
	}
	got, err := ParseConf(root, DefaultConf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseConf vs ldconfig -v (-ldconfig +ours):\n%s\nldconfig said:\n%s", diff, out)
	}
}
