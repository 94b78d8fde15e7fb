package storage

import (
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (iSCSI and NVMe multipath devices with failed paths, a
// suspended one, LVM and plain dm devices that are not multipath; no
// device-mapper; a malformed dm/suspended) are golden cases in
// testdata/dmmultipath.

// TestDMMultipathPathFails: a path that fails between scrapes moves from
// active to failed, and its state series changes label.
func TestDMMultipathPathFails(t *testing.T) {
	t.Parallel()
	dir := collectortest.CopyTree(t, "dmmultipath/good")
	c := collectortest.MustBuildFixture(t, "dmmultipath", dir)
	if _, err := collectortest.Exposition(t, c); err != nil {
		t.Fatal(err)
	}
	collectortest.WriteFile(t, dir, "sys/devices/platform/host3/session1/target3:0:0/3:0:0:2/block/sdc/device/state", "transport-offline\n")
	out, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`node_dmmultipath_device_paths_active{device="mpatha",sysfs_name="dm-0"} 2`,
		`node_dmmultipath_device_paths_failed{device="mpatha",sysfs_name="dm-0"} 2`,
		`node_dmmultipath_path_state{device="mpatha",path="sdc",state="transport-offline"} 1`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(string(out), `path="sdc",state="running"`) {
		t.Error("the old state is still served")
	}
}
