package collectors

import (
	"errors"
	"strings"
	"testing"
)

// writeTree writes files (path relative to a new temporary directory →
// content) and returns the directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, files)
	return root
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// TestHostCollectorsWithoutSubsystem: on a host that lacks the subsystem
// (an empty /proc, /sys and rootfs), each collector serves nothing and
// reports no data or plain success, never a failure.
func TestHostCollectorsWithoutSubsystem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		noData bool // ErrNoData, as node_exporter; else plain success
	}{
		{"bonding", true}, {"conntrack", true}, {"edac", false}, {"hwmon", true},
		{"mdadm", true}, {"netclass", true}, {"nvme", true}, {"os", true},
		{"powersupplyclass", true}, {"rapl", true}, {"schedstat", true},
		{"softnet", true}, {"thermal_zone", false}, {"udp_queues", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := buildCollectorEnv(t, tc.name, tempEnv(t, t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			out, err := exposition(t, c)
			if len(out) != 0 {
				t.Errorf("served %q", out)
			}
			if gotNoData := errors.Is(err, ErrNoData); gotNoData != tc.noData || (err != nil && !gotNoData) {
				t.Errorf("Update error %v; want ErrNoData: %v", err, tc.noData)
			}
		})
	}
}
