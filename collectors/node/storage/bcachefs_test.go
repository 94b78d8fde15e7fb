package storage

import (
	"errors"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (two devices with IO and error counters, counters,
// compression and btree write statistics; none; a malformed errors file)
// are golden cases in testdata/bcachefs.

// TestBcachefsCounterNames: counter families are named after the kernel's
// counter files as node_exporter names them, and a name that would clash
// with a fixed family is skipped rather than breaking it.
func TestBcachefsCounterNames(t *testing.T) {
	t.Parallel()
	dir := collectortest.CopyTree(t, "bcachefs/good")
	counters := "sys/fs/bcachefs/5b2d7cfa-9e3b-4a1f-8d6c-2f0a9b4e1c77/counters/"
	const counter = "since mount:                  1\nsince filesystem creation:    7\n"
	collectortest.WriteFile(t, dir, counters+"btree-node.split", counter)
	collectortest.WriteFile(t, dir, counters+"errors", counter)
	c := collectortest.MustBuildFixture(t, "bcachefs", dir)
	for range 2 { // the second scrape uses the cached Descs
		out, err := collectortest.Exposition(t, c)
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		got := string(out)
		if !strings.Contains(got, `node_bcachefs_btree_node_split_total{uuid="5b2d7cfa-9e3b-4a1f-8d6c-2f0a9b4e1c77"} 7`) {
			t.Errorf("sanitized counter missing:\n%s", got)
		}
		if strings.Contains(got, "Bcachefs counter errors") {
			t.Errorf("a counter named errors was served into node_bcachefs_errors_total:\n%s", got)
		}
	}
}

// TestBcachefsUnmounted: when the last filesystem is unmounted,
// /sys/fs/bcachefs stays (the module is loaded) and the scrape is no data.
func TestBcachefsUnmounted(t *testing.T) {
	t.Parallel()
	dir := collectortest.CopyTree(t, "bcachefs/good")
	c := collectortest.MustBuildFixture(t, "bcachefs", dir)
	collectortest.RemoveFile(t, dir, "sys/fs/bcachefs/5b2d7cfa-9e3b-4a1f-8d6c-2f0a9b4e1c77")
	if _, err := collectortest.Exposition(t, c); !errors.Is(err, collectors.ErrNoData) {
		t.Errorf("want ErrNoData, got %v", err)
	}
}
