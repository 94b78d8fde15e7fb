package exposition

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// splitCompact returns mfs sorted by name and split into the families a
// collector could hold in compact form (counters and gauges with help,
// every series with its value alone: no timestamp, created timestamp or
// exemplar) and the rest, each list
// sorted by name.
func splitCompact(mfs []*dto.MetricFamily) (sorted, rest []*dto.MetricFamily, compact []*CompactFamily) {
	sorted = slices.Clone(mfs)
	slices.SortFunc(sorted, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
families:
	for _, mf := range sorted {
		typ := mf.GetType()
		if mf.Help == nil || typ != dto.MetricType_COUNTER && typ != dto.MetricType_GAUGE {
			rest = append(rest, mf)
			continue
		}
		c := &CompactFamily{Name: mf.GetName(), Help: mf.GetHelp(), Type: typ}
		for _, m := range mf.Metric {
			if m.TimestampMs != nil || typ == dto.MetricType_COUNTER && (m.Counter == nil || m.Counter.CreatedTimestamp != nil || m.Counter.Exemplar != nil) || typ == dto.MetricType_GAUGE && m.Gauge == nil {
				rest = append(rest, mf)
				continue families
			}
			v := m.GetGauge().GetValue()
			if typ == dto.MetricType_COUNTER {
				v = m.GetCounter().GetValue()
			}
			c.Labels = append(c.Labels, m.Label)
			c.Values = append(c.Values, v)
		}
		compact = append(compact, c)
	}
	return sorted, rest, compact
}

// TestCompactLikeExpfmt: families given in compact form are answered, in
// every text format and escaping scheme, byte for byte as expfmt writes
// their client_model form, merged by name with the client_model families
// of the same answer.
func TestCompactLikeExpfmt(t *testing.T) {
	sets := map[string][]*dto.MetricFamily{
		"e2e golden":              parsedFamilies(t, "../../cmd/nodeagent/testdata/e2e/metrics.prom"),
		"kubelet 1.35 capture":    parsedFamilies(t, "../fakekubelet/testdata/k8s-1.35_metrics-cadvisor.txt"),
		"shared label slices etc": sharedFamilies(),
	}
	for name, mfs := range sets {
		sorted, rest, compact := splitCompact(mfs)
		if len(compact) == 0 || len(rest) == 0 {
			t.Fatalf("%s: %d compact and %d other families; want both", name, len(compact), len(rest))
		}
		for _, accept := range []string{
			"",
			"text/plain;version=0.0.4;escaping=dots",
			"text/plain;version=1.0.0;escaping=allow-utf-8",
			"text/plain;version=1.0.0;escaping=underscores",
		} {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			var want bytes.Buffer
			enc := expfmt.NewEncoder(&want, expfmt.NegotiateAccept(req.Header, expfmt.DefaultAcceptedFormats()...))
			var wantErrs int
			for _, mf := range sorted {
				if enc.Encode(mf) != nil {
					wantErrs++
				}
			}
			rec := httptest.NewRecorder()
			var gotErrs int
			Write(rec, req, rest, compact, nil, func(string, error) { gotErrs++ })
			if diff := cmp.Diff(want.String(), rec.Body.String()); diff != "" {
				t.Errorf("%s, Accept %q: differs from expfmt (-expfmt +nodeagent):\n%s", name, accept, diff)
			}
			if gotErrs != wantErrs {
				t.Errorf("%s, Accept %q: %d encoding errors logged, expfmt had %d", name, accept, gotErrs, wantErrs)
			}
		}
	}
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
	bad := &CompactFamily{Name: "x", Help: "h", Type: dto.MetricType_GAUGE, Values: []float64{1, 2}, Labels: [][]*dto.LabelPair{nil}}
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
