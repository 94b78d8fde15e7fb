package exposition

import (
	"iter"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// CompactFamily is a counter, gauge or untyped family held as the
// container layer builds it: per series, a label set and a value. A label
// set is a LabelSet the collector shares between series of several
// families (the container layer shares one per cgroup across the ~40
// families a cgroup serves), so a series costs a pointer and a float, 16
// bytes, where client_model's objects cost ~200 (dto.Metric, its
// dto.Gauge or dto.Counter, the value and the pointer to it): at 1,000
// containers, 64,198 series are 1 MB instead of 13, which was most of
// what a scrape of the container layer allocated and the GC had to scan
// (docs/performance.md).
//
// The text writer writes it straight out; every other format gets its
// client_model form from MetricFamily. The collector that returns one owns
// its correctness as a FamilyCollector does: a legacy or UTF-8 family
// name, label names consistent across series, label sets unique, and
// neither the family nor any label set modified afterwards. A nil label
// set is a series without labels.
type CompactFamily struct {
	Name, Help string
	Type       dto.MetricType // COUNTER, GAUGE or UNTYPED
	Labels     []*LabelSet
	Values     []float64 // one per label set
}

// Len is the number of series.
func (f *CompactFamily) Len() int { return len(f.Values) }

// MetricFamily returns f as a client_model family, which shares its label
// sets' client_model form (LabelSet.Pairs). Metrics, values and the value array are allocated once per family.
// A family whose label sets and values disagree in number (a collector's
// bug, which the Scraper reports) gives as many series as both have.
func (f *CompactFamily) MetricFamily() *dto.MetricFamily {
	n := min(len(f.Values), len(f.Labels))
	ms := make([]dto.Metric, n)
	ptrs := make([]*dto.Metric, n)
	vals := make([]float64, n)
	copy(vals, f.Values[:n])
	switch f.Type {
	case dto.MetricType_COUNTER:
		cs := make([]dto.Counter, n)
		for i := range ms {
			cs[i].Value = &vals[i]
			ms[i].Counter = &cs[i]
		}
	case dto.MetricType_UNTYPED:
		us := make([]dto.Untyped, n)
		for i := range ms {
			us[i].Value = &vals[i]
			ms[i].Untyped = &us[i]
		}
	default:
		gs := make([]dto.Gauge, n)
		for i := range ms {
			gs[i].Value = &vals[i]
			ms[i].Gauge = &gs[i]
		}
	}
	for i := range ms {
		ms[i].Label = f.Labels[i].Pairs()
		ptrs[i] = &ms[i]
	}
	name, help, typ := f.Name, f.Help, f.Type
	return &dto.MetricFamily{Name: &name, Help: &help, Type: &typ, Metric: ptrs}
}

// answerFamily is one family of an answer in either form.
type answerFamily struct {
	full    *dto.MetricFamily
	compact *CompactFamily
}

func (a answerFamily) name() string {
	if a.compact != nil {
		return a.compact.Name
	}
	return a.full.GetName()
}

// inOrder yields the families of both lists merged by name: each list is
// sorted by name (as a Gatherer's and the Scraper's are), so the answer is
// too. Lists that are not sorted are still yielded whole.
func inOrder(mfs []*dto.MetricFamily, compact []*CompactFamily) iter.Seq[answerFamily] {
	return func(yield func(answerFamily) bool) {
		i, j := 0, 0
		for i < len(mfs) || j < len(compact) {
			var next answerFamily
			if j == len(compact) || i < len(mfs) && strings.Compare(mfs[i].GetName(), compact[j].Name) <= 0 {
				next.full = mfs[i]
				i++
			} else {
				next.compact = compact[j]
				j++
			}
			if !yield(next) {
				return
			}
		}
	}
}
