package exposition

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// splitCompact returns mfs sorted by name and split into the families a
// collector could hold in compact form (counters and gauges with help,
// every series with its value alone: no timestamp, created timestamp or
// exemplar) and the rest, each list
// sorted by name.
func splitCompact(mfs []*dto.MetricFamily) (sorted, rest []*dto.MetricFamily, compact []*CompactFamily) {
	sets := map[*dto.LabelPair]*LabelSet{} // label slices shared by series share a LabelSet
	sorted = slices.Clone(mfs)
	slices.SortFunc(sorted, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
families:
	for _, mf := range sorted {
		typ := mf.GetType()
		if mf.Help == nil || typ != dto.MetricType_COUNTER && typ != dto.MetricType_GAUGE && typ != dto.MetricType_UNTYPED {
			rest = append(rest, mf)
			continue
		}
		c := &CompactFamily{Name: mf.GetName(), Help: mf.GetHelp(), Type: typ}
		for _, m := range mf.Metric {
			if m.TimestampMs != nil || typ == dto.MetricType_COUNTER && (m.Counter == nil || m.Counter.CreatedTimestamp != nil || m.Counter.Exemplar != nil) || typ == dto.MetricType_GAUGE && m.Gauge == nil || typ == dto.MetricType_UNTYPED && m.Untyped == nil {
				rest = append(rest, mf)
				continue families
			}
			v := m.GetGauge().GetValue()
			switch typ {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_UNTYPED:
				v = m.GetUntyped().GetValue()
			}
			var ls *LabelSet
			if len(m.Label) > 0 {
				if ls = sets[m.Label[0]]; ls == nil {
					ls = labelSetOf(m.Label)
					sets[m.Label[0]] = ls
				}
			}
			c.Labels = append(c.Labels, ls)
			c.Values = append(c.Values, v)
		}
		compact = append(compact, c)
	}
	return sorted, rest, compact
}

// labelSetOf is pairs as a LabelSet, in their order.
func labelSetOf(pairs []*dto.LabelPair) *LabelSet {
	names, values := make([]string, len(pairs)), make([]string, len(pairs))
	for i, p := range pairs {
		names[i], values[i] = p.GetName(), p.GetValue()
	}
	return NewLabelSet(names, values)
}

// TestCompactMetricFamily: the client_model form of a compact family is
// the family it was taken from.
func TestCompactMetricFamily(t *testing.T) {
	for _, mf := range sharedFamilies() {
		_, _, compact := splitCompact([]*dto.MetricFamily{mf})
		if len(compact) == 0 {
			continue
		}
		if diff := cmp.Diff(mf, compact[0].MetricFamily(), protocmp.Transform()); diff != "" {
			t.Errorf("%s: MetricFamily differs (-original +compact):\n%s", mf.GetName(), diff)
		}
	}
	// A family whose label sets and values disagree in number (a
	// collector's bug) gives the series it can, never a panic.
	bad := &CompactFamily{Name: "x", Help: "h", Type: dto.MetricType_GAUGE, Values: []float64{1, 2}, Labels: []*LabelSet{nil}}
	if got := len(bad.MetricFamily().Metric); got != 1 {
		t.Errorf("mismatched family: %d metrics, want 1", got)
	}
	var b bytes.Buffer
	tw := getTextWriter()
	defer tw.release()
	w := bufioWriter(&b)
	if done, _ := tw.writeCompact(w, bad); done {
		t.Error("the text writer wrote a family whose label sets and values disagree in number")
	}
}

func TestInOrder(t *testing.T) {
	full := func(names ...string) []*dto.MetricFamily {
		var out []*dto.MetricFamily
		for _, n := range names {
			out = append(out, &dto.MetricFamily{Name: proto.String(n)})
		}
		return out
	}
	compact := func(names ...string) []*CompactFamily {
		var out []*CompactFamily
		for _, n := range names {
			out = append(out, &CompactFamily{Name: n})
		}
		return out
	}
	for _, tc := range []struct {
		full    []*dto.MetricFamily
		compact []*CompactFamily
		want    string
	}{
		{nil, nil, ""},
		{full("a", "c"), nil, "a c"},
		{nil, compact("b"), "b*"},
		{full("a", "d", "e"), compact("b", "c", "f"), "a b* c* d e f*"},
		{full("x"), compact("a", "b"), "a* b* x"},
	} {
		var got []string
		for f := range inOrder(tc.full, tc.compact) {
			n := f.name()
			if f.compact != nil {
				n += "*"
			}
			got = append(got, n)
		}
		if s := strings.Join(got, " "); s != tc.want {
			t.Errorf("inOrder: %q, want %q", s, tc.want)
		}
	}
}
