package collectors

import "testing"

// The fixture cases (a count, a kernel without the file, a malformed file)
// are golden cases in testdata/kernel_hung.

// TestNodeExporterConformanceHostKernelHung compares with node_exporter on
// this machine's kernel, which may or may not have the file.
func TestNodeExporterConformanceHostKernelHung(t *testing.T) {
	t.Parallel()
	compareWithNodeExporterOnHost(t, "kernel_hung")
}
