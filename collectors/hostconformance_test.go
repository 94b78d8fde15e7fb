package collectors

import (
	"os"
	"path/filepath"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs/sysfs"
)

// Collectors whose values come from system calls (uname, time, timex)
// cannot be compared with node_exporter over fixture trees: their golden
// tests use fake system calls. Instead, the tests here run both on this
// host and compare what does not change from one moment to the next.

// hostFamilies runs the named collector, ours through its registration and
// node_exporter's alone, both over this host, and returns both outputs.
func hostFamilies(t *testing.T, collector string) (ours, theirs map[string]*dto.MetricFamily) {
	t.Helper()
	bin := os.Getenv("NODE_EXPORTER_BIN")
	if bin == "" {
		t.Skip("NODE_EXPORTER_BIN is not set; make node-conformance sets it")
	}
	// runNodeExporter points the --path flags below the case directory:
	// "/" gives /proc and /sys (and a rootfs these collectors do not read).
	theirs = runNodeExporter(t, bin, goldenCase{collector: collector, dir: "/"})
	c, err := buildCollectorEnv(t, collector, hostEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	return parseExposition(t, out), theirs
}

func TestNodeExporterConformanceHostUname(t *testing.T) {
	t.Parallel()
	ours, theirs := hostFamilies(t, "uname")
	// uname does not change while the test runs: values are compared too.
	compareFamilies(t, ours, theirs, conformanceRules{ignoreFamily: map[string]bool{}, ignoreHelp: map[string]bool{}})
	if len(ours) == 0 {
		t.Error("no families served")
	}
}

func TestNodeExporterConformanceHostShapes(t *testing.T) {
	t.Parallel()
	for _, collector := range []string{"time", "timex"} {
		t.Run(collector, func(t *testing.T) {
			t.Parallel()
			compareWithNodeExporterOnHost(t, collector)
		})
	}
}

// liveCases are golden cases whose series carry the fixture's path in a
// label (rapl's path): the golden holds a path relative to the package,
// node_exporter reports the absolute one it was given, so their
// .conformance files ignore those families. Here both run over the same
// absolute paths and must agree on everything.
var liveCases = []string{"rapl/good", "rapl/zone-label"}

func TestNodeExporterConformanceLive(t *testing.T) {
	bin := os.Getenv("NODE_EXPORTER_BIN")
	if bin == "" {
		t.Skip("NODE_EXPORTER_BIN is not set; make node-conformance sets it")
	}
	cases := map[string]goldenCase{}
	for _, c := range goldenCases(t) {
		cases[c.name] = c
	}
	for _, name := range liveCases {
		c, ok := cases[name]
		if !ok {
			t.Fatalf("no golden case %s", name)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			theirs := runNodeExporter(t, bin, c)
			env := tempEnv(t, t.TempDir())
			env.Paths.SysFS = filepath.Join(c.dir, "sys")
			sys, err := sysfs.NewFS(env.Paths.SysFS)
			if err != nil {
				t.Fatal(err)
			}
			env.Sys = sys
			col, err := buildCollectorEnv(t, c.collector, env, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exposition(t, col)
			if err != nil {
				t.Fatal(err)
			}
			ours := parseExposition(t, out)
			if len(ours) == 0 {
				t.Fatal("no families served")
			}
			compareFamilies(t, ours, theirs, conformanceRules{ignoreFamily: map[string]bool{}, ignoreHelp: map[string]bool{}})
		})
	}
}
