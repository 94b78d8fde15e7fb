package node

import (
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (a count, a kernel without the file, a malformed file)
// are golden cases in testdata/kernel_hung.

// TestNodeExporterConformanceHostKernelHung compares with node_exporter on
// this machine's kernel, which may or may not have the file.
func TestNodeExporterConformanceHostKernelHung(t *testing.T) {
	t.Parallel()
	collectortest.CompareOnHost(t, "kernel_hung", collectortest.HostComparison{})
}
