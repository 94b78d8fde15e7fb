package cadvisor

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/internal/podmeta"
	"github.com/nodeagent/nodeagent/kubeletclient"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// staticPods is a podmeta.Source serving one snapshot and counting the
// Unknown calls.
type staticPods struct {
	snap    atomic.Pointer[podmeta.Snapshot]
	unknown atomic.Int64
}

func (s *staticPods) Snapshot() *podmeta.Snapshot { return s.snap.Load() }
func (s *staticPods) Unknown()                    { s.unknown.Add(1) }

// loadPods decodes a /pods payload into a static source.
func loadPods(t testing.TB, path string) *staticPods {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return podsFrom(t, path, b)
}

// podsFrom decodes a kubelet /pods body (from what) into a pod source.
func podsFrom(t testing.TB, what string, body []byte) *staticPods {
	t.Helper()
	snap, err := kubeletclient.DecodePods(body)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	src := &staticPods{}
	src.snap.Store(snap)
	return src
}

// writeFile writes content to p, making its directories.
func writeFile(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies files, directories and symlinks from src to dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// prepareCase copies a case's cgroup and proc trees into a temporary
// directory, makes its mkdir directories and applies its mtimes (creation
// times), and returns the copy.
func prepareCase(t testing.TB, caseDir string) string {
	t.Helper()
	tmp := t.TempDir()
	for _, sub := range []string{"cgroup", "proc"} {
		if _, err := os.Stat(filepath.Join(caseDir, sub)); err == nil {
			copyTree(t, filepath.Join(caseDir, sub), filepath.Join(tmp, sub))
		}
	}
	if b, err := os.ReadFile(filepath.Join(caseDir, "mkdir")); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			p, err := strconv.Unquote(line)
			if err != nil {
				t.Fatalf("%s/mkdir: %v", caseDir, err)
			}
			if err := os.MkdirAll(filepath.Join(tmp, "cgroup", p), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	f, err := os.Open(filepath.Join(caseDir, "mtimes"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		secs, path, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseInt(secs, 10, 64)
		if !ok || err != nil {
			t.Fatalf("%s/mtimes: bad line %q", caseDir, sc.Text())
		}
		when := time.Unix(n, 0)
		if err := os.Chtimes(filepath.Join(tmp, "cgroup", filepath.FromSlash(path)), when, when); err != nil {
			t.Fatal(err)
		}
	}
	return tmp
}

// caseEnv is the Env of a prepared case: its trees, a fixed clock, and
// its pods.json as pod metadata when it has one.
func caseEnv(t testing.TB, caseDir, tree string) (collectors.Env, *staticPods) {
	t.Helper()
	env := collectors.Env{
		Logger: collectortest.Logger(t.(*testing.T)),
		Paths: collectors.Paths{
			ProcFS:   filepath.Join(tree, "proc"),
			SysFS:    filepath.Join(tree, "sys"),
			RootFS:   filepath.Join(tree, "root"),
			CgroupFS: filepath.Join(tree, "cgroup"),
		},
		Now:        func() time.Time { return time.Unix(1782468900, 0) },
		Registerer: prometheus.NewRegistry(),
	}
	if _, err := os.Stat(env.Paths.ProcFS); err == nil {
		fs, err := procfs.NewFS(env.Paths.ProcFS)
		if err != nil {
			t.Fatal(err)
		}
		env.Proc = fs
	}
	var src *staticPods
	if _, err := os.Stat(filepath.Join(caseDir, "pods.json")); err == nil {
		src = loadPods(t, filepath.Join(caseDir, "pods.json"))
		env.PodMetadata = src
	}
	return env, src
}

// buildCadvisor builds the container collector through its registration
// with args, as the binary does.
func buildCadvisor(t testing.TB, env collectors.Env, args ...string) *cadvisorCollector {
	t.Helper()
	app := kingpin.New("test", "")
	factory := collectortest.Lookup(t, "cadvisor").Setup(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	c, err := factory(env)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*cadvisorCollector)
}

func readArgs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var args []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			args = append(args, l)
		}
	}
	return args
}

// TestCadvisorGoldenCases runs the container collector over every case in
// testdata/cadvisor and compares its exposition with want.prom exactly; go
// test -run TestCadvisorGoldenCases -update rewrites want.prom.
func TestCadvisorGoldenCases(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob(filepath.Join("testdata", "cadvisor", "*", "mtimes"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, m := range dirs {
		caseDir := filepath.Dir(m)
		t.Run(filepath.Base(caseDir), func(t *testing.T) {
			t.Parallel()
			tree := prepareCase(t, caseDir)
			env, _ := caseEnv(t, caseDir, tree)
			c := buildCadvisor(t, env, readArgs(t, filepath.Join(caseDir, "args"))...)
			got, err := collectortest.Exposition(t, c)
			// want.err: one line per text the error must contain.
			wantErrs := readArgs(t, filepath.Join(caseDir, "want.err"))
			if len(wantErrs) == 0 && err != nil {
				t.Fatalf("Update: %v", err)
			}
			for _, w := range wantErrs {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Update error %v, want one containing %q", err, w)
				}
			}
			golden := filepath.Join(caseDir, "want.prom")
			if collectortest.Updating() {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("exposition differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}
