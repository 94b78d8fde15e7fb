package node

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (a server, an unprivileged VM without the root-only
// files, invalid UTF-8, no fields, no DMI, an unreadable directory) are
// golden cases in testdata/dmi.

// TestDMIReadOnce: DMI changes only across reboots, so the first complete
// reading is served from then on; until there is one, every scrape tries.
func TestDMIReadOnce(t *testing.T) {
	t.Parallel()
	dir := collectortest.CopyTree(t, "dmi/absent")
	c := collectortest.MustBuildFixture(t, "dmi", dir)
	if _, err := collectortest.Exposition(t, c); !errors.Is(err, collectors.ErrNoData) {
		t.Fatalf("without DMI: want ErrNoData, got %v", err)
	}

	collectortest.WriteFile(t, dir, "sys/class/dmi/id/sys_vendor", "QEMU\n")
	collectortest.WriteFile(t, dir, "sys/class/dmi/id/product_name", "Standard PC (Q35 + ICH9, 2009)\n")
	first, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatalf("once DMI appears: %v", err)
	}
	want := `# HELP node_dmi_info A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, bios_version, board_asset_tag, board_name, board_serial, board_vendor, board_version, chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, product_family, product_name, product_serial, product_sku, product_uuid, product_version, system_vendor if provided by DMI.
# TYPE node_dmi_info gauge
node_dmi_info{product_name="Standard PC (Q35 + ICH9, 2009)",system_vendor="QEMU"} 1
`
	if diff := cmp.Diff(want, string(first)); diff != "" {
		t.Fatalf("-want +got:\n%s", diff)
	}

	collectortest.WriteFile(t, dir, "sys/class/dmi/id/product_name", "changed\n")
	collectortest.RemoveFile(t, dir, "sys/class/dmi/id/sys_vendor")
	again, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(first), string(again)); diff != "" {
		t.Errorf("the reading was not kept (-first +again):\n%s", diff)
	}
}
