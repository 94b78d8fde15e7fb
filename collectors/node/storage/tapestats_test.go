package storage

import (
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (two drives beside their nst/mode aliases, an ignored
// drive, none, a non-numeric counter) are golden cases in
// testdata/tapestats. The malformed case would crash procfs v0.23.0; the
// collector turns that into an error.

func TestTapestatsBadPatternIsAStartupError(t *testing.T) {
	t.Parallel()
	_, err := collectortest.BuildFixture(t, "tapestats", "tapestats/good", "--collector.tapestats.ignored-devices=st[")
	if err == nil || !strings.Contains(err.Error(), "--collector.tapestats.ignored-devices") {
		t.Fatalf("want an error naming the flag, got %v", err)
	}
}
