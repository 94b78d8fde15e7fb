package node

import (
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (an armed iTCO_wdt beside softdog, an IPMI watchdog
// with a pretimeout, none, a malformed timeout) are golden cases in
// testdata/watchdog.

// TestNodeExporterConformanceHostWatchdog compares with node_exporter on
// this machine's watchdog devices, if it has any.
func TestNodeExporterConformanceHostWatchdog(t *testing.T) {
	t.Parallel()
	collectortest.CompareOnHost(t, "watchdog", collectortest.HostComparison{})
}
