package main

import (
	"slices"
	"testing"
	"time"
)

// TestPerfPodCommand: the perf pods sleep by default and burn the CPU
// asked for with -busy, in the pod program's own flag syntax.
func TestPerfPodCommand(t *testing.T) {
	for _, tc := range []struct {
		busy time.Duration
		want []string
	}{
		{0, []string{"/pause"}},
		{2 * time.Millisecond, []string{"/pause", "-busy=2ms"}},
		{1500 * time.Microsecond, []string{"/pause", "-busy=1.5ms"}},
	} {
		if got := perfPodCommand(tc.busy); !slices.Equal(got, tc.want) {
			t.Errorf("perfPodCommand(%v) = %q, want %q", tc.busy, got, tc.want)
		}
	}
}
