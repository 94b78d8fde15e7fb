package storage

import (
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases are golden cases in testdata/nvme.

// TestNVMeWithoutNuse: kernels without the nuse attribute (or a value that
// does not parse) lose node_nvme_namespace_used_bytes only; node_exporter
// 1.12 fails the whole collector there, so this is not a golden case it
// could be compared on.
func TestNVMeWithoutNuse(t *testing.T) {
	t.Parallel()
	root := collectortest.WriteTree(t, map[string]string{
		"sys/class/nvme/nvme0/firmware_rev":                     "1.0\n",
		"sys/class/nvme/nvme0/model":                            "QEMU NVMe Ctrl\n",
		"sys/class/nvme/nvme0/serial":                           "deadbeef\n",
		"sys/class/nvme/nvme0/state":                            "live\n",
		"sys/class/nvme/nvme0/cntlid":                           "0\n",
		"sys/class/nvme/nvme0/nvme0n1/nsid":                     "1\n",
		"sys/class/nvme/nvme0/nvme0n1/size":                     "2048\n",
		"sys/class/nvme/nvme0/nvme0n1/queue/logical_block_size": "512\n",
		"sys/class/nvme/nvme0/nvme0n2/nsid":                     "2\n",
		"sys/class/nvme/nvme0/nvme0n2/size":                     "4096\n",
		"sys/class/nvme/nvme0/nvme0n2/nuse":                     "lots\n",
		"sys/class/nvme/nvme0/nvme0n2/queue/logical_block_size": "512\n",
	})
	c, err := collectortest.Build(t, "nvme", collectortest.TempEnv(t, root))
	if err != nil {
		t.Fatal(err)
	}
	out, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	if strings.Contains(got, "node_nvme_namespace_used_bytes") {
		t.Errorf("used bytes served without a usable nuse:\n%s", got)
	}
	for _, want := range []string{
		`node_nvme_namespace_size_bytes{device="nvme0",nsid="1"} 1.048576e+06`,
		`node_nvme_namespace_size_bytes{device="nvme0",nsid="2"} 2.097152e+06`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s:\n%s", want, got)
		}
	}
}
