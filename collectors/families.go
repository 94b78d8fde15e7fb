package collectors

import (
	"context"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/nodeagent/nodeagent/internal/exposition"
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

// SendCompact sends a CompactCollector's families on ch as
// prometheus.Metrics, as SendFamilies does for a FamilyCollector:
//
//	func (c *x) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
//		return SendCompact(ctx, ch, c.UpdateCompact)
//	}
func SendCompact(ctx context.Context, ch chan<- prometheus.Metric, update func(context.Context) ([]*exposition.CompactFamily, error)) error {
	return SendFamilies(ctx, ch, func(ctx context.Context) ([]*dto.MetricFamily, error) {
		compact, err := update(ctx)
		mfs := make([]*dto.MetricFamily, len(compact))
		for i, f := range compact {
			mfs[i] = f.MetricFamily()
		}
		return mfs, err
	})
}

// CompactBuilder gathers a host collector's series into compact families
// in whatever order it reads them, and returns each family's series in the
// order the registry sorts the Update path's output (by label values), so
// that a collector can move from Update to UpdateCompact without changing
// a byte of what it serves. The zero value is ready; a builder is for one
// Update.
type CompactBuilder struct {
	families []*exposition.CompactFamily
	byName   map[string]int
	last     int // the family added to last: series of one family mostly come together
	// Families, and the first label set and value of each, are carved
	// from chunks: most host families have one series, and three
	// allocations for each showed in profiles. A family with more series
	// grows its own slices from there.
	slab   []exposition.CompactFamily
	labels []*exposition.LabelSet
	values []float64
}

// builderChunk bounds how many families a CompactBuilder allocates at
// once: chunks double from 4, so that a collector of few families does
// not carry room for many.
const builderChunk = 32

// Add adds one series. labels may be shared between series of different
// families, and kept from one Update to the next while what they label
// lasts; name's help and type are those of its first series.
func (b *CompactBuilder) Add(name, help string, typ dto.MetricType, labels *exposition.LabelSet, v float64) {
	i := b.last
	if i >= len(b.families) || b.families[i].Name != name {
		var ok bool
		if i, ok = b.byName[name]; !ok {
			i = b.newFamily(name, help, typ)
		}
		b.last = i
	}
	f := b.families[i]
	f.Labels = append(f.Labels, labels)
	f.Values = append(f.Values, v)
}

// newFamily adds an empty family and returns its index.
func (b *CompactBuilder) newFamily(name, help string, typ dto.MetricType) int {
	if b.byName == nil {
		b.byName = map[string]int{}
	}
	if len(b.slab) == cap(b.slab) {
		n := min(builderChunk, max(4, 2*cap(b.slab)))
		b.slab = make([]exposition.CompactFamily, 0, n)
		b.labels = make([]*exposition.LabelSet, n)
		b.values = make([]float64, n)
	}
	k := len(b.slab)
	b.slab = append(b.slab, exposition.CompactFamily{Name: name, Help: help, Type: typ,
		// Room for one series: a second append moves the family's
		// series to slices of its own.
		Labels: b.labels[k : k : k+1], Values: b.values[k : k : k+1]})
	i := len(b.families)
	b.byName[name] = i
	b.families = append(b.families, &b.slab[k])
	return i
}

// Families returns the families built, each family's series sorted by
// their label values.
func (b *CompactBuilder) Families() []*exposition.CompactFamily {
	for _, f := range b.families {
		sortSeries(f)
	}
	return b.families
}

// sortSeries sorts f's series by label values, label by label, as
// client_golang's registry sorts a family's metrics.
func sortSeries(f *exposition.CompactFamily) {
	less := func(i, j int) int { return f.Labels[i].Compare(f.Labels[j]) }
	sorted := true
	for i := 1; i < len(f.Values) && sorted; i++ {
		sorted = less(i-1, i) <= 0
	}
	if sorted {
		return
	}
	idx := make([]int, len(f.Values))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, less)
	labels := make([]*exposition.LabelSet, len(idx))
	values := make([]float64, len(idx))
	for k, i := range idx {
		labels[k], values[k] = f.Labels[i], f.Values[i]
	}
	f.Labels, f.Values = labels, values
}

// LabelSet returns a label set for CompactBuilder.Add from name, value
// pairs, sorted by name.
func LabelSet(nameValues ...string) *exposition.LabelSet {
	return exposition.NewLabelSetPairs(nameValues...)
}

// CompactDesc describes a family for CompactBuilder.AddValues, as a
// prometheus.Desc does for prometheus.MustNewConstMetric.
type CompactDesc struct {
	name, help string
	typ        dto.MetricType
	sorted     *exposition.LabelNames // the variable label names sorted, shared by the label sets of AddValues
	order      []int                  // the sorted k-th name is the order[k]-th given
}

// NewCompactDesc returns a family's description: its full name, help,
// type and variable label names.
func NewCompactDesc(name, help string, typ dto.MetricType, labelNames ...string) *CompactDesc {
	order := make([]int, len(labelNames))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(labelNames[a], labelNames[b]) })
	sorted := make([]string, len(order))
	for k, i := range order {
		sorted[k] = labelNames[i]
	}
	return &CompactDesc{name: name, help: help, typ: typ, sorted: exposition.NewLabelNames(sorted...), order: order}
}

// AddValues adds one series of d with these label values, in the order of
// d's label names, as prometheus.MustNewConstMetric takes them; a missing
// value is empty. For series whose label sets stay the same from scrape to
// scrape, AddLabels with a kept LabelSet saves building them.
func (b *CompactBuilder) AddValues(d *CompactDesc, v float64, labelValues ...string) {
	var labels *exposition.LabelSet
	if n := len(d.order); n > 0 {
		values := make([]string, n)
		for k, i := range d.order {
			if i < len(labelValues) {
				values[k] = labelValues[i]
			}
		}
		labels = d.sorted.Set(values...)
	}
	b.Add(d.name, d.help, d.typ, labels, v)
}

// AddLabels adds one series of d with a label set made by LabelSet, kept
// by the collector while it holds (a device's, an interface's).
func (b *CompactBuilder) AddLabels(d *CompactDesc, v float64, labels *exposition.LabelSet) {
	b.Add(d.name, d.help, d.typ, labels, v)
}
