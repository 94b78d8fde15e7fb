package node

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases are golden cases in testdata/rapl.

// TestRaplEnergyRootOnly: since Linux 5.10 energy_uj is readable by root
// only; an unprivileged agent reports no data rather than failing.
func TestRaplEnergyRootOnly(t *testing.T) {
	t.Parallel()
	c, err := collectortest.Build(t, "rapl", collectortest.Env(t, filepath.Join("testdata", "rapl/good")))
	if err != nil {
		t.Fatal(err)
	}
	rc := c.(*raplCollector)
	rc.energy = func(z sysfs.RaplZone) (uint64, error) {
		return 0, &fs.PathError{Op: "open", Path: filepath.Join(z.Path, "energy_uj"), Err: syscall.EACCES}
	}
	if _, err := collectortest.Exposition(t, rc); !errors.Is(err, collectors.ErrNoData) {
		t.Errorf("want ErrNoData, got %v", err)
	}
}
