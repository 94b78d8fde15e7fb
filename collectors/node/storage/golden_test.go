package storage

import (
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// TestGoldenCases builds every golden case's collector in testdata/ through
// its registration and flags, exactly as the binary does, and compares its
// exposition with the case's .prom file (go test -update rewrites them).
func TestGoldenCases(t *testing.T) {
	t.Parallel()
	collectortest.RunGoldenCases(t)
}

// TestGoldenCasesLint runs promlint over every golden exposition.
func TestGoldenCasesLint(t *testing.T) {
	t.Parallel()
	collectortest.LintGoldenCases(t)
}

// TestNodeExporterConformance runs node_exporter over the same fixture trees
// with the same flags and compares (make node-conformance).
func TestNodeExporterConformance(t *testing.T) {
	collectortest.NodeExporterConformance(t)
}

// BenchmarkGoldenCases measures one Update of each collector over its
// "good" golden case.
func BenchmarkGoldenCases(b *testing.B) {
	collectortest.BenchGoldenCases(b)
}
