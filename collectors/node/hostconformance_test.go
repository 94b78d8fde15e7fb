package node

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// Collectors whose values come from system calls (uname, time, timex)
// cannot be compared with node_exporter over fixture trees: their golden
// tests use fake system calls. The tests here run both on this host
// instead, comparing every series, and the values of what does not change
// from one moment to the next.

func TestNodeExporterConformanceHostUname(t *testing.T) {
	t.Parallel()
	// uname does not change while the test runs: every value is compared.
	collectortest.CompareOnHost(t, "uname", collectortest.HostComparison{})
}

func TestNodeExporterConformanceHostTime(t *testing.T) {
	t.Parallel()
	// The clock moves between the two scrapes; the zone offset and the
	// clock sources do not.
	collectortest.CompareOnHost(t, "time", collectortest.HostComparison{
		Volatile: regexp.MustCompile(`^node_time_seconds$`),
	})
}

func TestNodeExporterConformanceHostTimex(t *testing.T) {
	t.Parallel()
	// The kernel's clock discipline (offset, frequency, error estimates,
	// tick counts) moves between the two scrapes; the sync status, the
	// loop's time constant and the tick length do not.
	collectortest.CompareOnHost(t, "timex", collectortest.HostComparison{
		Volatile: regexp.MustCompile(`^node_timex_(offset_seconds|frequency_adjustment_ratio|maxerror_seconds|estimated_error_seconds|pps_.*)$`),
	})
}

// liveCases are golden cases whose series carry the fixture's path in a
// label (rapl's path): the golden holds a path relative to the package,
// node_exporter reports the absolute one it was given, so their
// .conformance files excuse that label. Here both run over the same
// absolute paths and must agree on everything.
var liveCases = []string{"rapl/good", "rapl/zone-label"}

func TestNodeExporterConformanceLive(t *testing.T) {
	bin := collectortest.NodeExporterBin(t)
	cases := map[string]collectortest.Case{}
	for _, c := range collectortest.Cases(t) {
		cases[c.Name] = c
	}
	for _, name := range liveCases {
		c, ok := cases[name]
		if !ok {
			t.Fatalf("no golden case %s", name)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			theirs := collectortest.RunNodeExporter(t, bin, c)
			env := collectortest.TempEnv(t, t.TempDir())
			env.Paths.SysFS = filepath.Join(c.Dir, "sys")
			sys, err := sysfs.NewFS(env.Paths.SysFS)
			if err != nil {
				t.Fatal(err)
			}
			env.Sys = sys
			col := collectortest.MustBuild(t, c.Collector, env, c.Args...)
			out, err := collectortest.Exposition(t, col)
			if err != nil {
				t.Fatal(err)
			}
			tally := collectortest.CompareFamilies(t, collectortest.Parse(t, out), theirs, &collectortest.Rules{})
			if tally.Series == 0 {
				t.Fatalf("compared no series: %s", tally)
			}
			t.Log(tally)
		})
	}
}
