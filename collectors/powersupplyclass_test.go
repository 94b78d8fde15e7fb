package collectors

import (
	"errors"
	"strings"
	"testing"
)

// The fixture cases are golden cases in testdata/powersupplyclass.

func TestPowerSupplyNoClass(t *testing.T) {
	t.Parallel()
	c, err := buildRegistered(t, "powersupplyclass", treeEnv(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exposition(t, c); !errors.Is(err, ErrNoData) || len(out) != 0 {
		t.Errorf("want ErrNoData and no output without /sys/class/power_supply, got %v and %q", err, out)
	}
}

func TestPowerSupplyBadFlag(t *testing.T) {
	t.Parallel()
	_, err := buildRegistered(t, "powersupplyclass", treeEnv(t, t.TempDir()), "--collector.powersupply.ignored-supplies=(")
	if err == nil || !strings.Contains(err.Error(), "--collector.powersupply.ignored-supplies") {
		t.Errorf("want an error naming the flag, got %v", err)
	}
}
