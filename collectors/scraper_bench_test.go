package collectors_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/collectors"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// constCollector emits n gauges with one label; descriptors and label values
// are built once, as real collectors do.
type constCollector struct {
	desc   *prometheus.Desc
	labels []string
}

func newConstCollector(name string, n int) *constCollector {
	c := &constCollector{desc: prometheus.NewDesc(name, "A benchmark gauge.", []string{"id"}, nil)}
	for i := range n {
		c.labels = append(c.labels, fmt.Sprintf("series-%d", i))
	}
	return c
}

func (c *constCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	for i, l := range c.labels {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(i), l)
	}
	return nil
}

// BenchmarkScraperGather measures the framework's own cost per scrape:
// running collectors concurrently under a deadline, merging, checking and
// sorting their output. Collectors here do no I/O.
func BenchmarkScraperGather(b *testing.B) {
	for _, bc := range []struct{ collectors, series int }{{10, 10}, {1, 10000}} {
		b.Run(fmt.Sprintf("collectors=%d/series=%d", bc.collectors, bc.series), func(b *testing.B) {
			var ins []collectors.Instance
			var names []string
			for i := range bc.collectors {
				name := fmt.Sprintf("c%02d", i)
				ins = append(ins, collectors.Instance{Name: name, Layer: collectors.LayerNode, Collector: newConstCollector("bench_"+name, bc.series)})
				names = append(names, name)
			}
			s, err := collectors.NewScraper(ins, collectors.ScraperOptions{Timeout: time.Minute, MaxConcurrency: 8})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Gather(time.Now().Add(time.Minute), names); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// constFamilyCollector builds n gauge series as client_model families on
// every call, the FamilyCollector path.
type constFamilyCollector struct {
	name   string
	labels []*dto.LabelPair
}

func newConstFamilyCollector(name string, n int) *constFamilyCollector {
	c := &constFamilyCollector{name: name}
	for i := range n {
		c.labels = append(c.labels, &dto.LabelPair{Name: proto.String("id"), Value: proto.String(fmt.Sprintf("series-%d", i))})
	}
	return c
}

func (c *constFamilyCollector) UpdateFamilies(context.Context) ([]*dto.MetricFamily, error) {
	mf := &dto.MetricFamily{Name: proto.String(c.name), Help: proto.String("A benchmark gauge."), Type: dto.MetricType_GAUGE.Enum()}
	ms := make([]dto.Metric, len(c.labels))
	gs := make([]dto.Gauge, len(c.labels))
	mf.Metric = make([]*dto.Metric, len(c.labels))
	for i, l := range c.labels {
		gs[i].Value = proto.Float64(float64(i))
		ms[i].Label = []*dto.LabelPair{l}
		ms[i].Gauge = &gs[i]
		mf.Metric[i] = &ms[i]
	}
	return []*dto.MetricFamily{mf}, nil
}

func (c *constFamilyCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendFamilies(ctx, ch, c.UpdateFamilies)
}

// BenchmarkScraperGatherFamilies is BenchmarkScraperGather's 10,000-series
// case through the FamilyCollector path.
func BenchmarkScraperGatherFamilies(b *testing.B) {
	s, err := collectors.NewScraper([]collectors.Instance{{Name: "fam", Layer: collectors.LayerCadvisor, Collector: newConstFamilyCollector("bench_fam", 10000)}},
		collectors.ScraperOptions{Timeout: time.Minute, MaxConcurrency: 8})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Gather(time.Now().Add(time.Minute), []string{"fam"}); err != nil {
			b.Fatal(err)
		}
	}
}
