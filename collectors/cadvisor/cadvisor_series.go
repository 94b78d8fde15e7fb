package cadvisor

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/cgroup"
)

// containerFamily is one container_* family: name, help and type exactly
// as the kubelet's /metrics/cadvisor has them, the cgroup files it needs
// (which decide what a scrape reads), and how one cgroup becomes series.
type containerFamily struct {
	name  string
	help  string
	typ   dto.MetricType
	files cgroup.FileSet
	emit  func(b *seriesBuf, s *cgState, env *buildEnv)
}

var (
	counter = dto.MetricType_COUNTER
	gauge   = dto.MetricType_GAUGE
)

// buildEnv is what every family sees besides the cgroup.
type buildEnv struct {
	now                 float64 // unix seconds
	memTotal, swapTotal float64 // bytes; -1 when unknown
	pairs               *constPairs
}

// allContainerFamilies lists every family the container collector can
// serve, from the container_*.go files.
func allContainerFamilies() []containerFamily {
	var all []containerFamily
	for _, fs := range [][]containerFamily{
		cpuFamilies(), memoryFamilies(), specFamilies(), pressureFamilies(),
		ioFamilies(), networkFamilies(), processFamilies(),
	} {
		all = append(all, fs...)
	}
	return all
}

// seriesBuf collects one family's series before they are laid out as
// client_model metrics in a few large allocations.
type seriesBuf struct {
	labels [][]*dto.LabelPair
	values []float64
}

func (b *seriesBuf) reset() {
	clear(b.labels) // drop label sets of cgroups that may be gone
	b.labels, b.values = b.labels[:0], b.values[:0]
}

func (b *seriesBuf) add(labels []*dto.LabelPair, v float64) {
	b.labels = append(b.labels, labels)
	b.values = append(b.values, v)
}

// family returns the collected series as f's family, or nil if there are
// none. Metrics, values and the value array are allocated once per family.
func (b *seriesBuf) family(f *containerFamily) *dto.MetricFamily {
	n := len(b.values)
	if n == 0 {
		return nil
	}
	ms := make([]dto.Metric, n)
	ptrs := make([]*dto.Metric, n)
	vals := make([]float64, n)
	copy(vals, b.values)
	switch f.typ {
	case dto.MetricType_COUNTER:
		cs := make([]dto.Counter, n)
		for i := range ms {
			cs[i].Value = &vals[i]
			ms[i].Counter = &cs[i]
		}
	default:
		gs := make([]dto.Gauge, n)
		for i := range ms {
			gs[i].Value = &vals[i]
			ms[i].Gauge = &gs[i]
		}
	}
	for i := range ms {
		ms[i].Label = b.labels[i]
		ptrs[i] = &ms[i]
	}
	name, help, typ := f.name, f.help, f.typ
	return &dto.MetricFamily{Name: &name, Help: &help, Type: &typ, Metric: ptrs}
}

// usec converts microseconds to seconds.
func usec(v uint64) float64 { return float64(v) / 1e6 }

// statFamily is a family of one series per cgroup with the base labels,
// served where file was read.
func statFamily(name, help string, typ dto.MetricType, file cgroup.File, value func(st *cgroup.Stats) float64) containerFamily {
	return containerFamily{name: name, help: help, typ: typ, files: cgroup.Files(file),
		emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
			if s.stats.Present.Has(file) {
				b.add(s.labels.base, value(&s.stats))
			}
		}}
}

// limit is a limit file's value as cAdvisor serves it: "max" (no limit)
// is 0.
func limit(v cgroup.Value) float64 {
	if v.Max {
		return 0
	}
	return float64(v.V)
}
