package node

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases are golden cases in testdata/os.

func TestParseOSRelease(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     map[string]string
		wantErr  string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "comments and blank lines", in: "# c\n\n   # indented\nID=x\n", want: map[string]string{"ID": "x"}},
		{name: "double quotes", in: `NAME="Debian GNU/Linux"`, want: map[string]string{"NAME": "Debian GNU/Linux"}},
		{name: "single quotes keep backslashes", in: `NAME='a\"b $c'`, want: map[string]string{"NAME": `a\"b $c`}},
		{name: "double-quote escapes", in: `V="\"q\" \\ \$ \` + "`" + ` \n"`, want: map[string]string{"V": `"q" \ $ ` + "` \\n"}},
		{name: "unquoted escape", in: `V=a\ b`, want: map[string]string{"V": "a b"}},
		{name: "comment after value", in: "ID=debian   # the id", want: map[string]string{"ID": "debian"}},
		{name: "hash inside quotes", in: `ID="a # b"`, want: map[string]string{"ID": "a # b"}},
		{name: "quoted trailing space kept", in: `ID="a " # c`, want: map[string]string{"ID": "a "}},
		{name: "export prefix", in: "export ID=x", want: map[string]string{"ID": "x"}},
		{name: "empty value", in: "VERSION_CODENAME=", want: map[string]string{"VERSION_CODENAME": ""}},
		{name: "concatenated parts", in: `V="a"'b'c`, want: map[string]string{"V": "abc"}},
		{name: "later assignment wins", in: "ID=a\nID=b", want: map[string]string{"ID": "b"}},
		{name: "missing equals", in: "ID=a\nnonsense", wantErr: "line 2: no '='"},
		{name: "bad key", in: "1ID=a", wantErr: `line 1: invalid key "1ID"`},
		{name: "empty key", in: "=a", wantErr: `line 1: invalid key ""`},
		{name: "unterminated double", in: `NAME="x`, wantErr: "line 1: NAME: unterminated double quote"},
		{name: "unterminated single", in: `NAME='x`, wantErr: "line 1: NAME: unterminated single quote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseOSRelease(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseOSRelease: never panics, accepts only valid keys, and what it
// parses survives being written back double-quoted and parsed again.
func FuzzParseOSRelease(f *testing.F) {
	for _, s := range []string{
		"NAME=\"Debian GNU/Linux\"\nID=debian\n",
		"export A='x y'\n# c\nB=\"\\$\\`\\\\\\\"\" # d\n",
		"V=a\\ b\nW=\"x\"'y'z\n",
		"broken",
		"A=\"unterminated",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		env, err := parseOSRelease(strings.NewReader(in))
		if err != nil {
			return
		}
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(env)) {
			if !validOSReleaseKey(k) {
				t.Fatalf("invalid key %q accepted", k)
			}
			v := env[k]
			if strings.ContainsAny(v, "\n") {
				t.Fatalf("value of %s spans lines: %q", k, v)
			}
			r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`")
			b.WriteString(k + `="` + r.Replace(v) + "\"\n")
		}
		again, err := parseOSRelease(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", b.String(), err)
		}
		if diff := cmp.Diff(env, again); diff != "" {
			t.Fatalf("round trip of %q via %q (-first +second):\n%s", in, b.String(), diff)
		}
	})
}

// TestOSReleaseChangeSeen: the parsed os-release is kept between scrapes,
// and an upgrade that rewrites the file (in place or by rename), or one
// that removes /etc/os-release so that /usr/lib/os-release wins, is served
// by the next scrape.
func TestOSReleaseChangeSeen(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	env := collectortest.TempEnv(t, root)
	for _, d := range []string{"etc", "usr/lib"} {
		if err := os.MkdirAll(filepath.Join(root, "root", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	etc := filepath.Join(root, "root", "etc", "os-release")
	write := func(path, content string) {
		t.Helper()
		tmp := path + ".new"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "root", "usr", "lib", "os-release"), "ID=usrlib\nVERSION_ID=9\n")
	write(etc, "ID=debian\nVERSION_ID=12\n")
	c := collectortest.MustBuild(t, "os", env)
	expect := func(step, want string) {
		t.Helper()
		got, err := collectortest.Exposition(t, c)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if !strings.Contains(string(got), want) {
			t.Errorf("%s: no %s in\n%s", step, want, got)
		}
	}
	expect("first scrape", `id="debian"`)
	expect("unchanged", `id="debian"`)
	write(etc, "ID=debian\nVERSION_ID=13\n")
	expect("replaced by rename", `version_id="13"`)
	f, err := os.OpenFile(etc, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("VERSION_CODENAME=trixie\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	expect("appended in place", `version_codename="trixie"`)
	if err := os.Remove(etc); err != nil {
		t.Fatal(err)
	}
	expect("/etc/os-release removed", `id="usrlib"`)
}
