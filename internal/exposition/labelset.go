package exposition

import (
	"math/bits"
	"slices"
	"strings"
	"sync/atomic"

	dto "github.com/prometheus/client_model/go"
)

// LabelSet is the labels of a series of a CompactFamily: names, sorted,
// each with its value. A collector builds one for what it labels (a
// cgroup, a device, an interface) and shares it between the series of
// all its families, and across answers for as long as that thing lasts.
// A series then costs a pointer, where a []*dto.LabelPair cost a slice
// header and each pair ~100 bytes, and the set's text is rendered once
// and kept with it rather than in a map of each answer. Sets of one kind
// share their LabelNames, and a set derived from another (a cgroup's
// labels and a device) holds only its own values: at 1,000 containers
// the 10,800 sets of 64,000 series are ~1 MB where their label pairs
// were ~2 (docs/performance.md).
//
// Neither names nor values may change once the set is built; concurrent
// answers share it.
type LabelSet struct {
	names  *LabelNames
	values []string  // all the values; or, with base, those of names.added
	base   *LabelSet // the set this one adds labels to, or nil

	// text is the set's `{name="value",…}` once kept: when a second series
	// of one answer has it. Sets that serve one series an answer (a
	// cgroup's memory failures by type and scope) are rendered each time
	// rather than kept, as most of their text would be held for nothing.
	text atomic.Pointer[[]byte]
	// seen is the last answer that rendered the set without keeping it.
	seen atomic.Uint64
	// pairs is the client_model form, built for the first answer that
	// needs it (protobuf, or a family left to expfmt) and kept.
	pairs atomic.Pointer[[]*dto.LabelPair]
}

// LabelNames is the sorted label names of a kind of label set, shared by
// all its sets.
type LabelNames struct {
	names []string
	// For names made by Extend: the names it added, their positions in
	// names (bit i for names[i]), and the names they were added to.
	added  []string
	mask   uint64
	parent *LabelNames
	// legacy is 0 until the names are checked, then legacyNames or
	// otherNames.
	legacy atomic.Int32
}

const (
	legacyNames = 1 // legacy Prometheus names, none __name__: the text writer's
	otherNames  = 2 // left to expfmt
)

// NewLabelNames returns names, which must be sorted and unique, for
// building label sets; it keeps the slice.
func NewLabelNames(names ...string) *LabelNames {
	return &LabelNames{names: names}
}

// Len is the number of names.
func (n *LabelNames) Len() int { return len(n.names) }

// Name is the i-th name.
func (n *LabelNames) Name(i int) string { return n.names[i] }

// Extend returns n's names and added, which must be sorted, unique and
// none of n's, merged in order: the names of sets that Derive builds
// from sets of n.
func (n *LabelNames) Extend(added ...string) *LabelNames {
	names := make([]string, 0, len(n.names)+len(added))
	var mask uint64
	i := 0
	for _, a := range added {
		for i < len(n.names) && n.names[i] < a {
			names = append(names, n.names[i])
			i++
		}
		mask |= 1 << (len(names) % 64)
		names = append(names, a)
	}
	names = append(names, n.names[i:]...)
	e := &LabelNames{names: names, added: added, parent: n, mask: mask}
	if len(names) > 64 {
		e.mask, e.parent = 0, nil // Derive copies values then
	}
	return e
}

// Set returns the label set of these names and values, in the order of
// the names (a missing value is empty, a value beyond the names
// ignored). The set keeps values.
func (n *LabelNames) Set(values ...string) *LabelSet {
	if len(values) < len(n.names) {
		values = append(slices.Clip(values), make([]string, len(n.names)-len(values))...)
	}
	return &LabelSet{names: n, values: values[:len(n.names):len(n.names)]}
}

// Derive returns base's labels and n's added names with these values (in
// the order of the added names), for names n made by Extend from base's:
// the set keeps added (so constant values can be shared by many sets)
// and refers to base for the rest. Given names that are not base's
// extended, it copies what base has of n's names.
func (n *LabelNames) Derive(base *LabelSet, added ...string) *LabelSet {
	if len(added) < len(n.added) {
		added = append(slices.Clip(added), make([]string, len(n.added)-len(added))...)
	}
	added = added[:len(n.added):len(n.added)]
	if n.parent != nil && base != nil && base.names == n.parent {
		return &LabelSet{names: n, values: added, base: base}
	}
	values := make([]string, len(n.names))
	for k, name := range n.names {
		if i := slices.Index(n.added, name); i >= 0 {
			values[k] = added[i]
		} else {
			values[k], _ = base.Get(name)
		}
	}
	return &LabelSet{names: n, values: values}
}

// NewLabelSet returns the label set of names and values, taken as they
// are: names sorted and unique, values in the same order (a missing value
// is empty, a value beyond the names ignored). The set keeps both slices.
func NewLabelSet(names, values []string) *LabelSet {
	return NewLabelNames(names...).Set(values...)
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
	return NewLabelSet(names, values)
}

// Len is the number of labels; a nil set has none.
func (s *LabelSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.names.names)
}

// Name is the i-th label's name.
func (s *LabelSet) Name(i int) string { return s.names.names[i] }

// Value is the i-th label's value.
func (s *LabelSet) Value(i int) string { return *s.value(i) }

// value is where the i-th label's value is kept.
func (s *LabelSet) value(i int) *string {
	if s.base == nil {
		return &s.values[i]
	}
	below := bits.OnesCount64(s.names.mask & (1<<i - 1))
	if s.names.mask&(1<<i) != 0 {
		return &s.values[below]
	}
	return s.base.value(i - below)
}

// Get returns the value of the label named name, and whether there is one.
func (s *LabelSet) Get(name string) (string, bool) {
	for i := range s.Len() {
		if s.names.names[i] == name {
			return s.Value(i), true
		}
	}
	return "", false
}

// Compare orders label sets by their values, label by label, then by
// length, as client_golang's registry orders a family's metrics.
func (s *LabelSet) Compare(o *LabelSet) int {
	n, m := s.Len(), o.Len()
	for i := range min(n, m) {
		if c := strings.Compare(s.Value(i), o.Value(i)); c != 0 {
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
	// A derived set shares its base's pairs and makes only its own, as
	// it shares the values.
	var base []*dto.LabelPair
	own := s.Len()
	if s.base != nil {
		base, own = s.base.Pairs(), len(s.values)
	}
	pairs := make([]dto.LabelPair, own)
	ptrs := make([]*dto.LabelPair, s.Len())
	for i, b, o := 0, 0, 0; i < len(ptrs); i++ {
		if s.base != nil && s.names.mask&(1<<i) == 0 {
			ptrs[i] = base[b]
			b++
			continue
		}
		pairs[o].Name, pairs[o].Value = &s.names.names[i], s.value(i)
		ptrs[i] = &pairs[o]
		o++
	}
	s.pairs.Store(&ptrs)
	return ptrs
}

// writable says whether the text writer writes the set: legacy label
// names, none of them __name__ (others depend on the escaping scheme).
func (s *LabelSet) writable() bool {
	n := s.names
	switch n.legacy.Load() {
	case legacyNames:
		return true
	case otherNames:
		return false
	}
	state := int32(legacyNames)
	for _, name := range n.names {
		if !writableLabelName(name) {
			state = otherNames
			break
		}
	}
	n.legacy.Store(state)
	return state == legacyNames
}

// appendText appends the set's text, whose names were checked, as expfmt
// writes it.
func (s *LabelSet) appendText(b []byte) []byte {
	sep := byte('{')
	for i, n := range s.names.names {
		b = appendLabel(b, sep, n, s.Value(i))
		sep = ','
	}
	return append(b, '}')
}

// textLen is the length of the set's text, or close to it when the set
// has not kept it (escapes are not counted).
func (s *LabelSet) textLen() int {
	if s.Len() == 0 {
		return 0
	}
	if text := s.text.Load(); text != nil {
		return len(*text)
	}
	n := 1 // the closing brace; each label's separator, `="` and `"` below
	for i, name := range s.names.names {
		n += len(name) + len(s.Value(i)) + 4
	}
	return n
}
