package exposition

import (
	"slices"
	"strings"
	"sync/atomic"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

// LabelSet is the labels of a series of a CompactFamily: names, sorted,
// each with its value. A collector builds one for what it labels (a
// cgroup, a device, an interface) and shares it between the series of
// all its families, and across answers for as long as that thing lasts.
// A series then costs a pointer, where a []*dto.LabelPair cost a slice
// header and each pair ~100 bytes, and the set's text is rendered once
// and kept with it rather than in a map of each answer: at 1,000
// containers the 10,800 sets of 64,000 series are ~2 MB less of the live
// heap (docs/performance.md).
//
// Neither names nor values may change once the set is built; concurrent
// answers share it.
type LabelSet struct {
	names, values []string

	// text is the set's `{name="value",…}` once kept: when a second series
	// of one answer has it. Sets that serve one series an answer (a
	// cgroup's memory failures by type and scope) are rendered each time
	// rather than kept, as most of their text would be held for nothing.
	text atomic.Pointer[[]byte]
	// seen is the last answer that rendered the set without keeping it.
	seen atomic.Uint64
	// legacy is 0 until the names are checked, then legacyNames or
	// otherNames.
	legacy atomic.Int32
	// pairs is the client_model form, built for the first answer that
	// needs it (protobuf, or a family left to expfmt) and kept.
	pairs atomic.Pointer[[]*dto.LabelPair]
}

const (
	legacyNames = 1 // legacy Prometheus names, none __name__: the text writer's
	otherNames  = 2 // left to expfmt
)

// NewLabelSet returns the label set of names and values, taken as they
// are: names sorted and unique, values in the same order (a missing value
// is empty, a value beyond the names ignored). The set keeps both slices.
func NewLabelSet(names, values []string) *LabelSet {
	if len(values) < len(names) {
		values = append(slices.Clip(values), make([]string, len(names)-len(values))...)
	}
	return &LabelSet{names: names, values: values[:len(names):len(names)]}
}

// NewLabelSetPairs returns the label set of name, value pairs, sorted by
// name.
func NewLabelSetPairs(nameValues ...string) *LabelSet {
	n := len(nameValues) / 2
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(nameValues[2*a], nameValues[2*b]) })
	names, values := make([]string, n), make([]string, n)
	for k, i := range idx {
		names[k], values[k] = nameValues[2*i], nameValues[2*i+1]
	}
	return &LabelSet{names: names, values: values}
}

// Len is the number of labels; a nil set has none.
func (s *LabelSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.names)
}

// Name is the i-th label's name.
func (s *LabelSet) Name(i int) string { return s.names[i] }

// Value is the i-th label's value.
func (s *LabelSet) Value(i int) string { return s.values[i] }

// Get returns the value of the label named name, and whether there is one.
func (s *LabelSet) Get(name string) (string, bool) {
	for i := range s.Len() {
		if s.names[i] == name {
			return s.values[i], true
		}
	}
	return "", false
}

// Compare orders label sets by their values, label by label, then by
// length, as client_golang's registry orders a family's metrics.
func (s *LabelSet) Compare(o *LabelSet) int {
	n, m := s.Len(), o.Len()
	for i := range min(n, m) {
		if c := strings.Compare(s.values[i], o.values[i]); c != 0 {
			return c
		}
	}
	return n - m
}

// Pairs returns the set in client_model form, built once and shared by
// every caller: it must not be modified.
func (s *LabelSet) Pairs() []*dto.LabelPair {
	if s.Len() == 0 {
		return nil
	}
	if p := s.pairs.Load(); p != nil {
		return *p
	}
	pairs := make([]dto.LabelPair, len(s.names))
	ptrs := make([]*dto.LabelPair, len(s.names))
	for i := range pairs {
		pairs[i].Name, pairs[i].Value = &s.names[i], &s.values[i]
		ptrs[i] = &pairs[i]
	}
	s.pairs.Store(&ptrs)
	return ptrs
}

// writable says whether the text writer writes the set: legacy label
// names, none of them __name__ (others depend on the escaping scheme).
func (s *LabelSet) writable() bool {
	switch s.legacy.Load() {
	case legacyNames:
		return true
	case otherNames:
		return false
	}
	state := int32(legacyNames)
	for _, n := range s.names {
		if n == model.MetricNameLabel || !model.LegacyValidation.IsValidMetricName(n) {
			state = otherNames
			break
		}
	}
	s.legacy.Store(state)
	return state == legacyNames
}

// appendText appends the set's text, whose names were checked, as expfmt
// writes it.
func (s *LabelSet) appendText(b []byte) []byte {
	sep := byte('{')
	for i, n := range s.names {
		b = append(b, sep)
		b = append(b, n...)
		b = appendValue(append(b, '=', '"'), s.values[i])
		b = append(b, '"')
		sep = ','
	}
	return append(b, '}')
}
