package network

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases are golden cases in testdata/netclass.

// TestNetclassKubernetesDefault checks that without flags the CNI
// interfaces are skipped: the output equals the kubernetes case, whose
// .args spell the same pattern out for node_exporter.
func TestNetclassKubernetesDefault(t *testing.T) {
	t.Parallel()
	args := strings.TrimSpace(string(collectortest.ReadFile(t, "testdata/netclass/kubernetes.args")))
	if want := "--collector.netclass.ignored-devices=" + defaultNetDeviceExclude; args != want {
		t.Fatalf("kubernetes.args = %q, want %q", args, want)
	}
	c, err := collectortest.Build(t, "netclass", collectortest.Env(t, filepath.Join("testdata", "netclass/kubernetes")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(collectortest.ReadFile(t, "testdata/netclass/kubernetes.prom")), string(got)); diff != "" {
		t.Errorf("default flags (-want +got):\n%s", diff)
	}
	for _, dev := range []string{"veth", "cali", "cilium", "lxc", "flannel", "cni0", "tunl0"} {
		if strings.Contains(string(got), `device="`+dev) {
			t.Errorf("device %s is served; the default exclude should skip it", dev)
		}
	}
}

func TestNetclassFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--collector.netclass.netlink"}, "--collector.netclass.netlink is not supported"},
		{[]string{"--collector.netclass.ignored-devices=("}, "--collector.netclass.ignored-devices"},
	} {
		_, err := collectortest.Build(t, "netclass", collectortest.TempEnv(t, t.TempDir()), tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want an error containing %q, got %v", tc.args, tc.want, err)
		}
	}
}

// TestNetclassKeptMatchesProcfsOnHost reads this host's /sys/class/net
// through kept descriptors (twice, so that the second read is a pread of
// descriptors kept from the first) and through procfs' parser by path:
// every served attribute must be equal. Counters that move between the
// reads (carrier changes) would make it flaky; they do not move on a
// test machine's links within milliseconds.
func TestNetclassKeptMatchesProcfsOnHost(t *testing.T) {
	env := collectortest.HostEnv(t)
	c, err := newNetclassCollector(env, netclassConfig{ignoredDevices: "^$"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.onSysfs {
		t.Skipf("%s is not on sysfs", c.netDir)
	}
	devices, err := c.sys.NetClassDevices()
	if err != nil || len(devices) == 0 {
		t.Skipf("no network devices: %v", err)
	}
	for round := range 2 {
		for _, dev := range devices {
			kept, err := c.readKept(dev)
			if err != nil {
				t.Fatalf("round %d: %s through kept descriptors: %v", round, dev, err)
			}
			byPath, err := c.readIface(dev)
			if err != nil {
				t.Fatalf("%s through procfs: %v", dev, err)
			}
			if diff := cmp.Diff(byPath, kept); diff != "" {
				t.Errorf("round %d: %s differs (-procfs +kept):\n%s", round, dev, diff)
			}
		}
	}
	if c.kept.Len() != len(devices) {
		t.Errorf("%d devices kept, want %d", c.kept.Len(), len(devices))
	}
	c.closeGone(map[string]bool{})
	if c.kept.Len() != 0 {
		t.Errorf("%d devices still kept after closeGone", c.kept.Len())
	}

	// Past maxKept devices, the rest are read by path: the same
	// exposition, one device kept.
	all, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	one, err := newNetclassCollector(env, netclassConfig{ignoredDevices: "^$"})
	if err != nil {
		t.Fatal(err)
	}
	one.maxKept = 1
	for range 2 {
		got, err := collectortest.Exposition(t, one)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(all), string(got)); diff != "" {
			t.Errorf("with one device kept (-all kept +one kept):\n%s", diff)
		}
	}
	if one.kept.Len() != 1 {
		t.Errorf("%d devices kept, want 1", one.kept.Len())
	}
}
