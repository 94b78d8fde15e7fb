package cadvisor

import (
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// TestGoldenCases builds the machine collector over every golden case in
// testdata/machine exactly as the binary does and compares its exposition
// (the container collector's own cases are in cadvisor_fixture_test.go).
func TestGoldenCases(t *testing.T) {
	t.Parallel()
	collectortest.RunGoldenCases(t)
}

// TestGoldenCasesLint runs promlint over every golden exposition.
func TestGoldenCasesLint(t *testing.T) {
	t.Parallel()
	collectortest.LintGoldenCases(t)
}
