package collectors

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// SendFamilies sends client_model families on ch as prometheus.Metrics, so
// that a FamilyCollector can implement Update in one line:
//
//	func (c *x) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
//		return SendFamilies(ctx, ch, c.UpdateFamilies)
//	}
//
// The Scraper never takes this path for a FamilyCollector; tests and tools
// that speak prometheus.Collector do.
func SendFamilies(ctx context.Context, ch chan<- prometheus.Metric, update func(context.Context) ([]*dto.MetricFamily, error)) error {
	mfs, err := update(ctx)
	for _, mf := range mfs {
		var labelNames []string
		if ms := mf.GetMetric(); len(ms) > 0 {
			for _, lp := range ms[0].GetLabel() {
				labelNames = append(labelNames, lp.GetName())
			}
		}
		desc := prometheus.NewDesc(mf.GetName(), mf.GetHelp(), labelNames, nil)
		for _, m := range mf.GetMetric() {
			ch <- dtoMetric{desc: desc, m: m}
		}
	}
	return err
}

// dtoMetric is one client_model metric as a prometheus.Metric.
type dtoMetric struct {
	desc *prometheus.Desc
	m    *dto.Metric
}

func (d dtoMetric) Desc() *prometheus.Desc { return d.desc }

func (d dtoMetric) Write(out *dto.Metric) error {
	proto.Reset(out)
	proto.Merge(out, d.m)
	return nil
}
