package collectortest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/internal/exposition"
)

// Fake is a collector whose behaviour each test sets: it sends one gauge,
// test_<Name>_value, then Extra, and returns Err.
type Fake struct {
	Name   string
	Value  float64
	Err    error
	Panics bool
	Gate   chan struct{} // when set, Update waits until it is closed
	// FreeCalls is how many first calls do not wait for Gate (a start-up
	// collection that must pass while later scrapes block).
	FreeCalls int32
	Forever   bool                // when set, Update blocks and ignores ctx
	Active    *atomic.Int32       // shared between collectors to observe concurrency
	MaxSeen   *atomic.Int32       // the most Updates seen running at once
	Extra     []prometheus.Metric // sent after the gauge
	calls     atomic.Int32
}

// Calls is how many times Update was called.
func (f *Fake) Calls() int32 { return f.calls.Load() }

// Update implements collectors.Collector.
func (f *Fake) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	f.begin()
	ch <- prometheus.MustNewConstMetric(
		prometheus.NewDesc("test_"+f.Name+"_value", "A test value.", nil, nil),
		prometheus.GaugeValue, f.Value)
	for _, m := range f.Extra {
		ch <- m
	}
	return f.Err
}

// begin is what every call of the fake does before it answers: it counts
// the call, takes part in the concurrency count, blocks or panics as told.
func (f *Fake) begin() {
	n := f.calls.Add(1)
	if f.Active != nil {
		n := f.Active.Add(1)
		defer f.Active.Add(-1)
		for {
			m := f.MaxSeen.Load()
			if n <= m || f.MaxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if f.Forever {
		select {} // a statfs on a dead NFS server, say
	}
	if f.Gate != nil && n > f.FreeCalls {
		<-f.Gate
	}
	if f.Panics {
		panic("boom")
	}
}

// CompactFake is a Fake that is a collectors.CompactCollector, which the
// Scraper calls on another path than Update: its UpdateCompact behaves as
// the Fake's Update (Extra is not served) and returns test_<Name>_value as
// a compact family.
type CompactFake struct{ *Fake }

// UpdateCompact implements collectors.CompactCollector.
func (f CompactFake) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	f.begin()
	return []*exposition.CompactFamily{{
		Name: "test_" + f.Name + "_value", Help: "A test value.", Type: dto.MetricType_GAUGE,
		Labels: []*exposition.LabelSet{nil}, Values: []float64{f.Value},
	}}, f.Err
}
