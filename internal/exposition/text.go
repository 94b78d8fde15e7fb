package exposition

import (
	"bufio"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

// The text format for counter and gauge families, written as expfmt's
// MetricFamilyToText writes it, byte for byte, except that the label text
// of a series, `{container="…",id="…",…}`, is not rendered for every
// series. expfmt offers no way to reuse it, and in the container layer
// each cgroup's label set is shared by the ~40 families that cgroup
// serves (collectors/cadvisor's labelSet): rendering those long values
// (the id and name labels) once per label set took a quarter off the
// 1,000-container answer (135 → ~100 ms with gzip,
// BenchmarkCadvisorScrape/default/answer). A compact family's LabelSet
// keeps its text across answers; a client_model family's label slices
// are rendered once per answer, in a map and arena of the answer's
// writer. Every other family, format and corner (histograms, summaries,
// names that are not legacy Prometheus names and so depend on the
// escaping scheme, timestamps) goes to expfmt. TestTextWriterLikeExpfmt
// holds the two to the same bytes.

var (
	// As expfmt escapes: HELP text without, label values with the quote.
	helpEscaper  = strings.NewReplacer("\\", `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer("\\", `\\`, "\n", `\n`, "\"", `\"`)
)

// labelKey identifies a label slice: the same first element and length is
// the same memory, so the same labels (the families of one answer are not
// changed while it is written).
type labelKey struct {
	first **dto.LabelPair
	n     int
}

// span is where a label set's rendered text is in textWriter.arena, or
// one of the marks below.
type span struct{ off, n int32 }

var (
	// validated: the label names were checked, the text not written yet.
	validated = span{-2, 0}
	// writtenOnce: rendered once, straight to the answer. Most label sets
	// with labels of their own (a cgroup's with cpu, device, interface…)
	// appear in one family only: only those seen twice are kept.
	writtenOnce = span{-1, 0}
)

// textWriter writes the families of one answer. Pooled: its map, arena
// and scratch buffer are reused, and dropped rather than pooled when a
// large answer grew them past maxArena or maxLabelSets.
type textWriter struct {
	labels  map[labelKey]span
	arena   []byte
	scratch []byte
	num     []byte
	states  []span // per series of the family being written: its label set's state when checked
	answer  uint64 // this answer's number, for LabelSet.seen
}

const (
	maxArena     = 4 << 20
	maxLabelSets = 1 << 18
)

var textWriters = sync.Pool{New: func() any {
	return &textWriter{labels: make(map[labelKey]span, labelsHint.Load()), num: make([]byte, 0, 32)}
}}

// The sizes the last answer's writer reached: a writer taken from an empty
// pool (a GC empties it, and a large answer makes a GC each time) starts
// at them instead of growing to them by doubling, which allocated twice
// the arena per answer of the container layer.
var arenaHint, labelsHint atomic.Int64

// answers numbers the answers written, so that a LabelSet can tell a
// second series of one answer from the next answer's first.
var answers atomic.Uint64

func getTextWriter() *textWriter {
	t := textWriters.Get().(*textWriter)
	t.answer = answers.Add(1)
	if h := int(arenaHint.Load()); cap(t.arena) < h {
		t.arena = make([]byte, 0, h)
	}
	return t
}

func (t *textWriter) release() {
	if cap(t.arena) > maxArena || cap(t.scratch) > maxArena || len(t.labels) > maxLabelSets || cap(t.states) > maxLabelSets {
		return
	}
	arenaHint.Store(int64(len(t.arena)))
	labelsHint.Store(int64(len(t.labels)))
	clear(t.labels)
	t.arena = t.arena[:0]
	textWriters.Put(t)
}

// writeFamily writes mf if it is a family this writer writes as expfmt
// does, and says whether it did; when it did not, nothing was written.
func (t *textWriter) writeFamily(w *bufio.Writer, mf *dto.MetricFamily) (bool, error) {
	typ := mf.GetType()
	name := mf.GetName()
	if len(mf.Metric) == 0 || !writable(name, typ) {
		return false, nil
	}
	// Check every series, and the label sets not yet seen, before
	// writing anything.
	t.states = t.states[:0]
	for _, m := range mf.Metric {
		if m.TimestampMs != nil || (typ == dto.MetricType_COUNTER && m.Counter == nil) || (typ == dto.MetricType_GAUGE && m.Gauge == nil) || (typ == dto.MetricType_UNTYPED && m.Untyped == nil) {
			return false, nil
		}
		st, ok := t.check(m.Label)
		if !ok {
			return false, nil
		}
		t.states = append(t.states, st)
	}
	t.writeHeader(w, name, mf.Help, typ)
	for i, m := range mf.Metric {
		var v float64
		switch typ {
		case dto.MetricType_COUNTER:
			v = m.Counter.GetValue()
		case dto.MetricType_GAUGE:
			v = m.Gauge.GetValue()
		default:
			v = m.Untyped.GetValue()
		}
		if err := t.writeSeries(w, name, m.Label, t.states[i], v); err != nil {
			return true, err
		}
	}
	return true, nil
}

// writeCompact is writeFamily for a compact family: the same bytes as
// expfmt writes for f.MetricFamily(). Its label sets keep their own text
// (LabelSet), so no series looks anything up.
func (t *textWriter) writeCompact(w *bufio.Writer, f *CompactFamily) (bool, error) {
	if f.Len() == 0 || len(f.Labels) != f.Len() || !writable(f.Name, f.Type) {
		return false, nil
	}
	for _, l := range f.Labels {
		if l.Len() > 0 && !l.writable() {
			return false, nil
		}
	}
	t.writeHeader(w, f.Name, &f.Help, f.Type)
	for i, l := range f.Labels {
		_, _ = w.WriteString(f.Name)
		if l.Len() > 0 {
			t.writeLabelSet(w, l)
		}
		if err := t.endSeries(w, f.Values[i]); err != nil {
			return true, err
		}
	}
	return true, nil
}

// writeLabelSet writes the text of l, whose names were checked: kept in l
// from its second series in one answer on, rendered again each answer
// until then.
func (t *textWriter) writeLabelSet(w *bufio.Writer, l *LabelSet) {
	if text := l.text.Load(); text != nil {
		_, _ = w.Write(*text)
		return
	}
	t.scratch = l.appendText(t.scratch[:0])
	_, _ = w.Write(t.scratch)
	if l.seen.Swap(t.answer) == t.answer {
		// Two answers written at once may both keep it: the same bytes.
		text := slices.Clone(t.scratch)
		l.text.Store(&text)
	}
}

// writable says whether a family of this name and type is one the writer
// writes: counters, gauges and untyped with legacy Prometheus names (other
// names depend on the escaping scheme: expfmt's).
func writable(name string, typ dto.MetricType) bool {
	return (typ == dto.MetricType_COUNTER || typ == dto.MetricType_GAUGE || typ == dto.MetricType_UNTYPED) &&
		model.LegacyValidation.IsValidMetricName(name)
}

// check says whether labels can be written by this writer (legacy label
// names, no __name__), remembering label sets already checked, and returns
// the label set's state for writeSeries. The state holds until that label
// set's series is written: a family's label sets are unique (a label set
// written twice in one family would still be written right, only rendered
// or kept once more), and so the whole family is checked first and then
// written without a second lookup per series.
func (t *textWriter) check(labels []*dto.LabelPair) (span, bool) {
	if len(labels) == 0 {
		return span{}, true
	}
	k := labelKey{&labels[0], len(labels)}
	if s, ok := t.labels[k]; ok {
		return s, true
	}
	for _, lp := range labels {
		if !writableLabelName(lp.GetName()) {
			return span{}, false
		}
	}
	t.labels[k] = validated
	return validated, true
}

// writeHeader writes a family's HELP (when it has one) and TYPE lines.
func (t *textWriter) writeHeader(w *bufio.Writer, name string, help *string, typ dto.MetricType) {
	if help != nil {
		_, _ = w.WriteString("# HELP ")
		_, _ = w.WriteString(name)
		_ = w.WriteByte(' ')
		_, _ = helpEscaper.WriteString(w, *help)
		_ = w.WriteByte('\n')
	}
	_, _ = w.WriteString("# TYPE ")
	_, _ = w.WriteString(name)
	switch typ {
	case dto.MetricType_COUNTER:
		_, _ = w.WriteString(" counter\n")
	case dto.MetricType_GAUGE:
		_, _ = w.WriteString(" gauge\n")
	default:
		_, _ = w.WriteString(" untyped\n")
	}
}

// writeSeries writes one series whose labels were checked; s is the state
// check returned for them.
func (t *textWriter) writeSeries(w *bufio.Writer, name string, labels []*dto.LabelPair, s span, v float64) error {
	_, _ = w.WriteString(name)
	if len(labels) > 0 {
		k := labelKey{&labels[0], len(labels)}
		switch s {
		case validated:
			t.scratch = appendLabels(t.scratch[:0], labels)
			_, _ = w.Write(t.scratch)
			t.labels[k] = writtenOnce
		case writtenOnce:
			start := len(t.arena)
			t.arena = appendLabels(t.arena, labels)
			t.labels[k] = span{int32(start), int32(len(t.arena) - start)}
			_, _ = w.Write(t.arena[start:])
		default:
			_, _ = w.Write(t.arena[s.off : s.off+s.n])
		}
	}
	return t.endSeries(w, v)
}

// endSeries writes a series' value and ends its line.
func (t *textWriter) endSeries(w *bufio.Writer, v float64) error {
	_ = w.WriteByte(' ')
	t.writeFloat(w, v)
	// bufio.Writer keeps its first error: checking the last write of each
	// series is enough.
	return w.WriteByte('\n')
}

// writableLabelName says whether the text writer writes a label of this
// name: a legacy Prometheus name (others depend on the escaping scheme),
// not __name__.
func writableLabelName(n string) bool {
	return n != model.MetricNameLabel && model.LegacyValidation.IsValidMetricName(n)
}

// appendLabels appends the text of labels, whose names were checked, as
// expfmt writes it.
func appendLabels(b []byte, labels []*dto.LabelPair) []byte {
	sep := byte('{')
	for _, lp := range labels {
		b = appendLabel(b, sep, lp.GetName(), lp.GetValue())
		sep = ','
	}
	return append(b, '}')
}

// appendLabel appends sep and one label, its value escaped as expfmt
// escapes it.
func appendLabel(b []byte, sep byte, name, value string) []byte {
	b = append(append(b, sep), name...)
	b = append(b, '=', '"')
	if needsEscape(value) {
		b = append(b, valueEscaper.Replace(value)...)
	} else {
		b = append(b, value...)
	}
	return append(b, '"')
}

// needsEscape says whether value has a byte the text format escapes. Three
// IndexByte scans (vectorised) are ~5× faster than strings.ContainsAny over
// a cgroup's id, and the sets rendered anew each answer (a cgroup's memory
// failures by type and scope) check tens of thousands of values an answer
// at 1,000 containers.
func needsEscape(value string) bool {
	return strings.IndexByte(value, '"') >= 0 || strings.IndexByte(value, '\\') >= 0 || strings.IndexByte(value, '\n') >= 0
}

// writeFloat writes f as expfmt's writeFloat does.
func (t *textWriter) writeFloat(w *bufio.Writer, f float64) {
	switch {
	case f == 1:
		_ = w.WriteByte('1')
	case f == 0:
		_ = w.WriteByte('0')
	case f == -1:
		_, _ = w.WriteString("-1")
	case math.IsNaN(f):
		_, _ = w.WriteString("NaN")
	case math.IsInf(f, +1):
		_, _ = w.WriteString("+Inf")
	case math.IsInf(f, -1):
		_, _ = w.WriteString("-Inf")
	case f > -1e6 && f < 1e6 && f == math.Trunc(f):
		// An integer below a million in magnitude: 'g' writes it as its
		// digits, which AppendInt gives without the shortest-decimal
		// search (a third of the container layer's values are such).
		t.num = strconv.AppendInt(t.num[:0], int64(f), 10)
		_, _ = w.Write(t.num)
	default:
		t.num = strconv.AppendFloat(t.num[:0], f, 'g', -1, 64)
		_, _ = w.Write(t.num)
	}
}
