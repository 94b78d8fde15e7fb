package node

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The good and malformed cases are golden cases in testdata/loadavg.

func TestLoadavgMissing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	proc, err := procfs.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collectortest.Exposition(t, newLoadavgCollector(proc, dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want a not-exist error when loadavg is missing, got %v", err)
	}
}
