package collectortest

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/collectors"
)

// A golden case is a fixture tree plus files beside it, all under the
// collector package's testdata/<collector>/ (see collectors/README.md):
//
//	<case>/              proc/, sys/, root/, udev/, cgroup/ as the collector needs
//	<case>.prom          the exact exposition the collector must produce
//	<case>.args          optional: the collector's flags, one per line;
//	                     {case} stands for the case directory's absolute path
//	<case>.err           optional: Update must fail with an error containing this
//	                     text (the .prom then holds what was still served)
//	<case>.conformance   optional, node layer only: deliberate differences from
//	                     node_exporter (see ReadRules)
type Case struct {
	Collector string
	Name      string // <collector>/<case>
	Dir       string // absolute path of the fixture tree
	rel       string // the same, relative to the package: error texts in goldens show it
	Golden    string // path of <case>.prom
	Args      []string
	WantErr   string
}

// Cases lists the golden cases of the calling package: every
// testdata/<collector>/<case>.prom with a <case> directory beside it. It
// fails the test when there are none.
func Cases(t testing.TB) []Case {
	t.Helper()
	files, err := filepath.Glob("testdata/*/*.prom")
	if err != nil {
		t.Fatal(err)
	}
	var out []Case
	for _, golden := range files {
		dir := strings.TrimSuffix(golden, ".prom")
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue // the golden file of a hand-written test
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatal(err)
		}
		collector := filepath.Base(filepath.Dir(dir))
		c := Case{Collector: collector, Name: collector + "/" + filepath.Base(dir), Dir: abs, rel: dir, Golden: golden}
		if b, err := os.ReadFile(dir + ".args"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					c.Args = append(c.Args, strings.ReplaceAll(line, "{case}", abs))
				}
			}
		}
		if b, err := os.ReadFile(dir + ".err"); err == nil {
			c.WantErr = strings.TrimSpace(string(b))
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("no golden cases in testdata/")
	}
	return out
}

// Build builds the case's collector through its registration with the
// case's flags, over its fixture tree.
func (c Case) Build(t testing.TB) collectors.Collector {
	t.Helper()
	col, err := Build(t, c.Collector, Env(t, c.rel), c.Args...)
	if err != nil {
		t.Fatalf("building %s: %v", c.Collector, err)
	}
	return col
}

// RunGoldenCases builds each golden case's collector exactly as the binary
// does and compares its exposition and error with the case's files.
func RunGoldenCases(t *testing.T) {
	for _, c := range Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			got, err := Exposition(t, c.Build(t))
			switch {
			case c.WantErr == "" && err != nil:
				t.Fatalf("Update: %v", err)
			case c.WantErr != "" && err == nil:
				t.Fatalf("Update succeeded; want an error containing %q", c.WantErr)
			case c.WantErr != "" && !strings.Contains(err.Error(), c.WantErr):
				t.Fatalf("Update error %q does not contain %q", err, c.WantErr)
			}
			CompareGolden(t, got, c.Golden)
		})
	}
}

// LintGoldenCases runs promlint over every golden exposition of the
// package: a problem is a bug unless the collector declares it in
// KnownLintProblems as inherited from node_exporter, cAdvisor or the
// kubelet. Golden cases show families the end-to-end lint never sees (its
// fixture node has no ZFS, no IPVS, ...).
func LintGoldenCases(t *testing.T) {
	for _, c := range Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			mfs := Parse(t, ReadFile(t, c.Golden))
			problems, err := collectors.Lint(slices.Collect(maps.Values(mfs)), false)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("%s: %s", p.Metric, p.Text)
			}
		})
	}
}
