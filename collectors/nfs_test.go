package collectors

import (
	"errors"
	"testing"
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
			dir := copyFixture(t, tc.collector+"/good")
			c := mustBuildCollector(t, tc.collector, dir)
			if out, err := exposition(t, c); err != nil || len(out) == 0 {
				t.Fatalf("first scrape: %d bytes, error %v", len(out), err)
			}
			removeFixtureFile(t, dir, tc.file)
			out, err := exposition(t, c)
			if !errors.Is(err, ErrNoData) {
				t.Errorf("second scrape: want ErrNoData, got %v", err)
			}
			if len(out) != 0 {
				t.Errorf("second scrape served metrics:\n%s", out)
			}
		})
	}
}
