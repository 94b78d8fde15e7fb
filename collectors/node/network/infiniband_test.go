package network

import (
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (a RoCE ConnectX-5 with hw_counters and an InfiniBand
// ConnectX-3 with one port down, include and exclude filters, none, one
// malformed device beside a good one) are golden cases in
// testdata/infiniband.

// TestInfiniBandExcludedDeviceIsNotRead: node_exporter reads every device
// and filters afterwards, so a broken device fails its scrape even when
// excluded; here an excluded device is never read.
func TestInfiniBandExcludedDeviceIsNotRead(t *testing.T) {
	t.Parallel()
	c := collectortest.MustBuildFixture(t, "infiniband", "infiniband/malformed", "--collector.infiniband.device-exclude=^mlx5")
	out, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if !strings.Contains(string(out), `node_infiniband_state_id{device="mlx4_0",port="1"} 4`) {
		t.Errorf("mlx4_0 not served:\n%s", out)
	}
}

func TestInfiniBandBadPatternIsAStartupError(t *testing.T) {
	t.Parallel()
	_, err := collectortest.BuildFixture(t, "infiniband", "infiniband/good", "--collector.infiniband.device-include=(mlx")
	if err == nil || !strings.Contains(err.Error(), "--collector.infiniband.device-include") {
		t.Fatalf("want an error naming the flag, got %v", err)
	}
}
