package kubeletclient

import (
	"context"
	"log/slog"
	"time"

	"github.com/nodeagent/nodeagent/internal/podmeta"
	"github.com/nodeagent/nodeagent/internal/refresh"
)

// unknownGap is the least time between two refreshes that a miss (a cgroup
// of a pod or container the snapshot lacks) triggers: a new pod shows up
// within seconds, and a node full of pods the kubelet does not know (static
// pods being torn down) costs one /pods request per gap, not per scrape.
const unknownGap = 5 * time.Second

// podLister is what PodSource needs from the client.
type podLister interface {
	Pods(ctx context.Context) (*podmeta.Snapshot, error)
}

// PodSource implements podmeta.Source over the kubelet's /pods. It holds the
// newest snapshot and refreshes it only on demand: when a reader finds it
// older than the refresh interval, or a collector reports an unknown pod or
// container (rate-limited). Readers never wait for the network.
type PodSource struct {
	lister podLister
	logger *slog.Logger
	value  *refresh.Value[*podmeta.Snapshot]
	gap    time.Duration

	// Written only by fetch, which never runs concurrently with itself.
	last    *podmeta.Snapshot
	lastErr string
}

var _ podmeta.Source = (*PodSource)(nil)

// NewPodSource returns a source over c's /pods, refreshed when older than
// interval; now is the clock.
func NewPodSource(c podLister, interval time.Duration, now func() time.Time, logger *slog.Logger) *PodSource {
	s := &PodSource{lister: c, logger: logger, gap: min(unknownGap, interval)}
	s.value = refresh.New(s.fetch, interval, now)
	return s
}

// Snapshot returns the newest pod metadata, nil before the first successful
// fetch. It never blocks; a stale snapshot triggers a refresh behind it.
func (s *PodSource) Snapshot() *podmeta.Snapshot {
	snap, _ := s.value.Peek()
	return snap
}

// Unknown asks for an early refresh, at most one per few seconds.
func (s *PodSource) Unknown() { s.value.Poke(s.gap) }

// WaitFirst fetches the first snapshot and waits for it until ctx is done,
// so the first collection already has pod names (cmd/nodeagent calls it
// before the warm-up scrape).
func (s *PodSource) WaitFirst(ctx context.Context) { s.value.Get(ctx) }

// fetch gets /pods. On failure it keeps the previous snapshot: labels a
// minute old beat none. Failures and recoveries are logged once per change.
func (s *PodSource) fetch(ctx context.Context) *podmeta.Snapshot {
	snap, err := s.lister.Pods(ctx)
	switch {
	case err != nil:
		if msg := err.Error(); msg != s.lastErr {
			s.logger.Error("cannot refresh pod metadata from the kubelet; container series keep the last known pod labels", "err", err)
			s.lastErr = msg
		}
		return s.last
	case s.lastErr != "":
		s.logger.Info("pod metadata from the kubelet refreshed again", "pods", len(snap.Pods))
		s.lastErr = ""
	case s.last == nil:
		s.logger.Info("pod metadata from the kubelet", "pods", len(snap.Pods), "containers", len(snap.Containers))
	}
	s.last = snap
	return snap
}
