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
	run := func() (series int, err error) {
		ch := make(chan prometheus.Metric, 256)
		done := make(chan int)
		go func() {
			n := 0
			for range ch {
				n++
			}
			done <- n
		}()
		err = c.Update(context.Background(), ch)
		close(ch)
		return <-done, err
	}
	switch c := c.(type) {
	case collectors.CompactCollector:
		run = func() (series int, err error) {
			fs, err := c.UpdateCompact(context.Background())
			for _, f := range fs {
				series += f.Len()
			}
			return series, err
		}
	case collectors.FamilyCollector:
		run = func() (series int, err error) {
			mfs, err := c.UpdateFamilies(context.Background())
			for _, mf := range mfs {
				series += len(mf.GetMetric())
			}
			return series, err
		}
	}
	series := 0
	for b.Loop() {
		n, err := run()
		if err != nil && !errors.Is(err, collectors.ErrNoData) {
			b.Fatal(err)
		}
		series = n
	}
	b.ReportMetric(float64(series), "series/op")
}
