package collectortest

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/collectors"
)

// BenchGoldenCases measures one Update of each collector over its
// "good" golden case (fixture files in the page cache), draining the
// metrics as the Scraper does. It is the per-collector cost of a scrape
// without the registry's merge.
func BenchGoldenCases(b *testing.B) {
	for _, c := range Cases(b) {
		if !strings.HasSuffix(c.Name, "/good") {
			continue
		}
		b.Run(c.Collector, func(b *testing.B) {
			env := Env(b, c.Dir)
			env.Logger = slog.New(slog.DiscardHandler) // b.Log would keep every line
			col, err := Build(b, c.Collector, env, c.Args...)
			if err != nil {
				b.Fatal(err)
			}
			BenchUpdate(b, col)
		})
	}
}

// BenchUpdate runs c as the Scraper does: UpdateCompact for a
// CompactCollector, UpdateFamilies for a FamilyCollector, else Update with
// the metrics drained from the channel.
func BenchUpdate(b *testing.B, c collectors.Collector) {
	b.ReportAllocs()
	series := 0
	if cc, ok := c.(collectors.CompactCollector); ok {
		for b.Loop() {
			fs, err := cc.UpdateCompact(context.Background())
			if err != nil && !errors.Is(err, collectors.ErrNoData) {
				b.Fatal(err)
			}
			series = 0
			for _, f := range fs {
				series += f.Len()
			}
		}
		b.ReportMetric(float64(series), "series/op")
		return
	}
	if fc, ok := c.(collectors.FamilyCollector); ok {
		for b.Loop() {
			mfs, err := fc.UpdateFamilies(context.Background())
			if err != nil && !errors.Is(err, collectors.ErrNoData) {
				b.Fatal(err)
			}
			series = 0
			for _, mf := range mfs {
				series += len(mf.GetMetric())
			}
		}
		b.ReportMetric(float64(series), "series/op")
		return
	}
	for b.Loop() {
		ch := make(chan prometheus.Metric, 256)
		done := make(chan int)
		go func() {
			n := 0
			for range ch {
				n++
			}
			done <- n
		}()
		if err := c.Update(context.Background(), ch); err != nil && !errors.Is(err, collectors.ErrNoData) {
			b.Fatal(err)
		}
		close(ch)
		series = <-done
	}
	b.ReportMetric(float64(series), "series/op")
}
