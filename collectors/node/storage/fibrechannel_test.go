package storage

import (
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (an online and a link-down port with unimplemented
// counters, none, a non-numeric counter) are golden cases in
// testdata/fibrechannel, which node_exporter reads identically.

// TestFibreChannelMissingCounters: drivers need not provide every
// statistics file, and some HBAs have no statistics directory at all.
// node_exporter 1.12.1 dereferences the missing counters and crashes, so
// this is no golden case: the counters are left out, the rest is served.
func TestFibreChannelMissingCounters(t *testing.T) {
	t.Parallel()
	dir := collectortest.CopyTree(t, "fibrechannel/good")
	stats := "sys/devices/pci0000:00/0000:00:03.0/0000:03:00.0/host0/fc_host/host0/statistics/"
	collectortest.RemoveFile(t, dir, stats+"nos_count")
	collectortest.RemoveFile(t, dir, stats+"fcp_packet_aborts")
	collectortest.RemoveFile(t, dir, "sys/devices/pci0000:00/0000:00:03.0/0000:03:00.1/host1/fc_host/host1/statistics")
	out, err := collectortest.Exposition(t, collectortest.MustBuildFixture(t, "fibrechannel", dir))
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		`node_fibrechannel_rx_frames_total{fc_host="host0"} 1.063070225e+09`,
		`node_fibrechannel_info{dev_loss_tmo="30",fabric_name="0",fc_host="host1"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{
		`node_fibrechannel_fcp_packet_aborts_total{fc_host="host0"}`,
		`node_fibrechannel_rx_frames_total{fc_host="host1"}`,
	} {
		if strings.Contains(got, unwanted) {
			t.Errorf("served %s for a missing file:\n%s", unwanted, got)
		}
	}
}
