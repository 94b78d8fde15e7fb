package cadvisor

import (
	"slices"
	"sync"

	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/cgroup"
	"github.com/nodeagent/nodeagent/internal/exposition"
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
	// cpuV1: CFS throttling is read from a hybrid host's v1 cpu hierarchy
	// (cgroup.FileCPUStatV1), not from the v2 cpu.stat.
	cpuV1 bool
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

// seriesBuf collects one family's series; the family is then copied out
// at its exact size.
type seriesBuf struct {
	labels []*exposition.LabelSet
	values []float64
}

func (b *seriesBuf) reset() {
	clear(b.labels) // drop label sets of cgroups that may be gone
	b.labels, b.values = b.labels[:0], b.values[:0]
}

func (b *seriesBuf) add(labels *exposition.LabelSet, v float64) {
	b.labels = append(b.labels, labels)
	b.values = append(b.values, v)
}

// family returns the collected series as f's family in compact form (a
// label set shared with the cgroup's other families and a value per
// series: 16 bytes, where client_model's objects took ~200), or nil if
// there are none. Families whose series have the same label sets in the
// same order (most: one series per cgroup with its base labels) share
// one slice of them through same.
func (b *seriesBuf) family(f *containerFamily, same *sameLabels) *exposition.CompactFamily {
	if len(b.values) == 0 {
		return nil
	}
	return &exposition.CompactFamily{
		Name: f.name, Help: f.help, Type: f.typ,
		Labels: same.get(b.labels),
		Values: slices.Clone(b.values),
	}
}

// sameLabels hands out one copy of each distinct list of label sets that
// a scrape's families have, so that the ~25 families with a series per
// cgroup hold one slice instead of 25 (12 KB each at 1,500 cgroups).
type sameLabels struct {
	mu    sync.Mutex
	lists [][]*exposition.LabelSet
}

// get returns a kept list equal to labels, or keeps a copy of labels.
func (s *sameLabels) get(labels []*exposition.LabelSet) []*exposition.LabelSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lists {
		if slices.Equal(l, labels) {
			return l
		}
	}
	l := slices.Clone(labels)
	s.lists = append(s.lists, l)
	return l
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
