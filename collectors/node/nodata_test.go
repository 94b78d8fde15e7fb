package node

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// TestEmptyClassIsNoData: a sysfs class directory without devices (most
// servers and VMs have no power supply or watchdog device) is nothing to
// serve, which the Scraper then looks at again only after
// --scrape.no-data-recheck. (A golden case cannot hold an empty
// directory, and these readers take any entry for a device.)
func TestEmptyClassIsNoData(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ collector, dir string }{
		{"powersupplyclass", "sys/class/power_supply"},
		{"watchdog", "sys/class/watchdog"},
	} {
		t.Run(tc.collector, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, tc.dir), 0o755); err != nil {
				t.Fatal(err)
			}
			c := collectortest.MustBuild(t, tc.collector, collectortest.TempEnv(t, root))
			out, err := collectortest.Exposition(t, c)
			if !errors.Is(err, collectors.ErrNoData) || len(out) != 0 {
				t.Errorf("got %q, %v; want nothing and ErrNoData", out, err)
			}
		})
	}
}
