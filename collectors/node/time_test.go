package node

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases are golden cases in testdata/time (read by path, as
// procfs reads them: a fixture is not sysfs).

// TestClockSourcesKeptMatchProcfsOnHost: on this machine's sysfs the
// clocksource attributes are read through kept descriptors, and give what
// procfs' ClockSources gives, scrape after scrape.
func TestClockSourcesKeptMatchProcfsOnHost(t *testing.T) {
	t.Parallel()
	c := collectortest.MustBuild(t, "time", collectortest.HostEnv(t)).(*timeCollector)
	if !c.onSysfs {
		t.Skip("no sysfs clocksource directory on this machine")
	}
	want, err := c.sys.ClockSources()
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Skip("no clocksource on this machine")
	}
	for scrape := 1; scrape <= 2; scrape++ {
		got, err := c.keptClockSources()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("scrape %d (-procfs +kept):\n%s", scrape, diff)
		}
		if c.kept.Len() != len(want) {
			t.Errorf("scrape %d: %d directories kept, want %d", scrape, c.kept.Len(), len(want))
		}
	}
}
