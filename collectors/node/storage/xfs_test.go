package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (two filesystems on a 6.x kernel, a 4.x kernel, no XFS,
// one malformed file beside a good one) are golden cases in testdata/xfs.

// TestXFSUnmount: a filesystem unmounted between scrapes disappears from the
// next one, and one that goes away during a scrape (listed, then gone before
// it is read) is skipped without an error.
func TestXFSUnmount(t *testing.T) {
	t.Parallel()
	dir := collectortest.CopyTree(t, "xfs/good")
	c := collectortest.MustBuildFixture(t, "xfs", dir)
	devices := func() map[string]bool {
		t.Helper()
		out, err := collectortest.Exposition(t, c)
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		got := map[string]bool{}
		for _, d := range []string{"sda1", "nvme0n1p1"} {
			got[d] = strings.Contains(string(out), `device="`+d+`"`)
		}
		return got
	}
	if got := devices(); !got["sda1"] || !got["nvme0n1p1"] {
		t.Fatalf("first scrape: devices %v, want both", got)
	}

	collectortest.RemoveFile(t, dir, "sys/fs/xfs/nvme0n1p1")
	if got := devices(); !got["sda1"] || got["nvme0n1p1"] {
		t.Errorf("after unmount: devices %v, want sda1 only", got)
	}

	// A stats file that the listing finds but that cannot be opened any
	// more: what an unmount racing the scrape looks like.
	gone := filepath.Join(dir, "sys/fs/xfs/sdc1/stats")
	if err := os.MkdirAll(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("vanished", filepath.Join(gone, "stats")); err != nil {
		t.Fatal(err)
	}
	if got := devices(); !got["sda1"] {
		t.Errorf("during unmount: devices %v, want sda1", got)
	}
}
