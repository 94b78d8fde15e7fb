package collectortest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	ch <- prometheus.MustNewConstMetric(
		prometheus.NewDesc("test_"+f.Name+"_value", "A test value.", nil, nil),
		prometheus.GaugeValue, f.Value)
	for _, m := range f.Extra {
		ch <- m
	}
	return f.Err
}
