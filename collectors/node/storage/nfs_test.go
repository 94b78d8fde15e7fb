package storage

import (
	"errors"
	"testing"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases of nfs and nfsd (modern and legacy kernels, absent,
// malformed) are golden cases in testdata/nfs and testdata/nfsd.

// TestNFSModuleUnloaded: when the module goes away between scrapes (the last
// NFS volume unmounted, nfsd stopped), the next scrape reports no data, not a
// failure and not stale series.
func TestNFSModuleUnloaded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ collector, file string }{
		{"nfs", "proc/net/rpc/nfs"},
		{"nfsd", "proc/net/rpc/nfsd"},
	} {
		t.Run(tc.collector, func(t *testing.T) {
			t.Parallel()
			dir := collectortest.CopyTree(t, tc.collector+"/good")
			c := collectortest.MustBuildFixture(t, tc.collector, dir)
			if out, err := collectortest.Exposition(t, c); err != nil || len(out) == 0 {
				t.Fatalf("first scrape: %d bytes, error %v", len(out), err)
			}
			collectortest.RemoveFile(t, dir, tc.file)
			out, err := collectortest.Exposition(t, c)
			if !errors.Is(err, collectors.ErrNoData) {
				t.Errorf("second scrape: want ErrNoData, got %v", err)
			}
			if len(out) != 0 {
				t.Errorf("second scrape served metrics:\n%s", out)
			}
		})
	}
}
