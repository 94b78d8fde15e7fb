package storage

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (a cache set with two backing devices and one cache,
// with and without --collector.bcache.priorityStats; none; an empty
// attribute, which crashes procfs v0.23.0 and is an error here) are golden
// cases in testdata/bcache.

// TestNodeExporterConformanceBcacheReadDuration pins down the one
// deliberate difference of testdata/bcache/good.conformance:
// node_exporter's node_bcache_btree_read_average_duration_seconds is ours
// divided by 1000, because it scales the kernel's microseconds as
// nanoseconds.
func TestNodeExporterConformanceBcacheReadDuration(t *testing.T) {
	bin := os.Getenv("NODE_EXPORTER_BIN")
	if bin == "" {
		t.Skip("NODE_EXPORTER_BIN is not set; make node-conformance sets it")
	}
	t.Parallel()
	dir, err := filepath.Abs("testdata/bcache/good")
	if err != nil {
		t.Fatal(err)
	}
	theirs := collectortest.ScrapeNodeExporter(t, bin, []string{
		"--web.listen-address=127.0.0.1:0", "--collector.disable-defaults", "--collector.bcache",
		"--path.sysfs=" + filepath.Join(dir, "sys"),
	})
	ours := collectortest.Parse(t, collectortest.ReadFile(t, "testdata/bcache/good.prom"))
	const name = "node_bcache_btree_read_average_duration_seconds"
	if theirs[name] == nil || ours[name] == nil {
		t.Fatalf("%s missing: node_exporter %v, nodeagent %v", name, theirs[name] != nil, ours[name] != nil)
	}
	got := ours[name].GetMetric()[0].GetGauge().GetValue()
	ne := theirs[name].GetMetric()[0].GetGauge().GetValue()
	if got != 0.001305 { // btree_read_average_duration_us is 1305
		t.Errorf("nodeagent serves %g s, want 0.001305", got)
	}
	if math.Abs(ne*1000-got) > 1e-15 {
		t.Errorf("node_exporter serves %g, not nodeagent's value / 1000 (%g)", ne, got/1000)
	}
}
