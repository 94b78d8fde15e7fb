package node

import (
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases are golden cases in testdata/powersupplyclass.

func TestPowerSupplyBadFlag(t *testing.T) {
	t.Parallel()
	_, err := collectortest.Build(t, "powersupplyclass", collectortest.TempEnv(t, t.TempDir()), "--collector.powersupply.ignored-supplies=(")
	if err == nil || !strings.Contains(err.Error(), "--collector.powersupply.ignored-supplies") {
		t.Errorf("want an error naming the flag, got %v", err)
	}
}
