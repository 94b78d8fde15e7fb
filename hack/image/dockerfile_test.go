package main

import (
	"bufio"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
}

func readDockerfile(t *testing.T, p string) []instruction {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var pinnedRE = regexp.MustCompile(`^[a-z0-9./-]+:[\w.-]+@sha256:[0-9a-f]{64}$`)

// TestDockerfile checks what can be checked without Docker: every base is
// pinned by digest, and the final image has make image's user, ports,
// entrypoint and files.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := readDockerfile(t, "../../Dockerfile")
	var stages [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
			var image string
			for _, f := range strings.Fields(in.args) {
				if !strings.HasPrefix(f, "--") {
					image = f
					break
				}
			}
			if image != "scratch" && !pinnedRE.MatchString(image) {
				t.Errorf("FROM %s: want scratch or image:tag@sha256:<digest>", in.args)
			}
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages; want a build stage and the image", len(stages))
	}
	final := map[string][]string{}
	for _, in := range stages[len(stages)-1] {
		final[in.cmd] = append(final[in.cmd], in.args)
	}
	want := map[string][]string{
		"FROM":       {"scratch"},
		"COPY":       {"--from=build /rootfs/ /"},
		"USER":       {strconv.Itoa(uid) + ":" + strconv.Itoa(gid)},
		"EXPOSE":     {strings.ReplaceAll(strings.Join(exposedPorts, " "), "/tcp", "")},
		"ENTRYPOINT": {`["/` + binaryPath + `"]`},
	}
	for cmd, w := range want {
		if diff := cmp.Diff(w, final[cmd]); diff != "" {
			t.Errorf("final stage %s (-want +got):\n%s", cmd, diff)
		}
	}
	if u := strings.Split(final["USER"][0], ":")[0]; u == "0" || u == "root" {
		t.Errorf("USER %s runs as root", final["USER"][0])
	}
	// The build stage installs the files make image puts in.
	var build strings.Builder
	for _, in := range stages[0] {
		build.WriteString(in.args + "\n")
	}
	for _, w := range []string{
		"/rootfs/" + binaryPath,
		"hack/image/rootfs/etc/passwd", "hack/image/rootfs/etc/group",
		"/rootfs/" + path.Dir(caBundlePath) + " /" + caBundlePath,
	} {
		if !strings.Contains(build.String(), w) {
			t.Errorf("the build stage does not install %s:\n%s", w, build.String())
		}
	}
	t.Logf("%d stages, %d instructions checked", len(stages), len(ins))
}

// TestDockerignore checks that the build context keeps every file the
// build reads (go list's view of cmd/nodeagent, with embedded files) and
// leaves out .git and bin.
func TestDockerignore(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	ignored := func(p string) bool {
		for _, pat := range patterns {
			if rest, ok := strings.CutPrefix(pat, "**/"); ok {
				// Any directory or base name.
				for _, part := range strings.Split(p, "/") {
					if m, _ := path.Match(rest, part); m {
						return true
					}
				}
				continue
			}
			if strings.ContainsAny(pat, "*?[!") {
				t.Fatalf(".dockerignore pattern %q: this test knows only plain paths and **/name", pat)
			}
			if p == pat || strings.HasPrefix(p, pat+"/") {
				return true
			}
		}
		return false
	}

	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}|{{join .GoFiles ","}}|{{join .EmbedFiles ","}}{{end}}{{end}}`, "../../cmd/nodeagent").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum", "Makefile", "VERSION", "hack/image/rootfs/etc/passwd", "hack/image/rootfs/etc/group"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		if len(parts) != 3 {
			continue
		}
		rel, err := filepath.Rel(root, parts[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Split(parts[1]+","+parts[2], ",") {
			if f != "" {
				needed = append(needed, path.Join(filepath.ToSlash(rel), f))
			}
		}
	}
	for _, f := range needed {
		if ignored(f) {
			t.Errorf("%s is needed by the build but .dockerignore leaves it out", f)
		}
	}
	if len(needed) < 20 {
		t.Errorf("only %d files needed by the build: %v", len(needed), needed)
	}
	for _, f := range []string{".git", "bin/nodeagent", "bin/image/oci/index.json", "collectors/testdata/host/proc/stat", "cmd/nodeagent/e2e_test.go"} {
		if !ignored(f) {
			t.Errorf("%s is in the build context", f)
		}
	}
	t.Logf("%d files the build needs are in the context", len(needed))
}
