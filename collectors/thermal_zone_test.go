package collectors

import "testing"

// The fixture cases are golden cases in testdata/thermal_zone.

// TestThermalZoneNoThermalClass: machines without thermal zones (most VMs)
// report nothing and succeed, as with node_exporter.
func TestThermalZoneNoThermalClass(t *testing.T) {
	t.Parallel()
	c, err := buildRegistered(t, "thermal_zone", treeEnv(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exposition(t, c); err != nil || len(out) != 0 {
		t.Errorf("want success and no output, got %v and %q", err, out)
	}
}
