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
