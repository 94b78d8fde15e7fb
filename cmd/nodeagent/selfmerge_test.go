package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

// TestWithOwn: /metrics merges the collection with the agent's own
// families and answers exactly what a prometheus.Gatherers over the
// collection's client_model form and the agent's registry answered
// before (the series here are in label order, which the Gatherers sorted
// them into), the compact families staying compact unless one shares its
// name with an own family.
func TestWithOwn(t *testing.T) {
	label := func(kv ...string) []*dto.LabelPair {
		var ls []*dto.LabelPair
		for i := 0; i < len(kv); i += 2 {
			ls = append(ls, &dto.LabelPair{Name: proto.String(kv[i]), Value: proto.String(kv[i+1])})
		}
		return ls
	}
	compact := func(name string, labels ...[]*dto.LabelPair) *exposition.CompactFamily {
		f := &exposition.CompactFamily{Name: name, Help: name + " help.", Type: dto.MetricType_GAUGE}
		for i, pairs := range labels {
			var kv []string
			for _, p := range pairs {
				kv = append(kv, p.GetName(), p.GetValue())
			}
			f.Labels = append(f.Labels, exposition.NewLabelSetPairs(kv...))
			f.Values = append(f.Values, float64(i+1))
		}
		return f
	}
	family := func(name string) *dto.MetricFamily {
		return &dto.MetricFamily{Name: proto.String(name), Help: proto.String(name + " help."), Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Label: label("collector", "x"), Counter: &dto.Counter{Value: proto.Float64(7)}}}}
	}
	own := func(t *testing.T, series map[string]string) prometheus.Gatherers {
		reg := prometheus.NewRegistry()
		for name, dev := range series {
			g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: name + " help."}, []string{"device"})
			g.WithLabelValues(dev).Set(42)
			reg.MustRegister(g)
		}
		return prometheus.Gatherers{reg}
	}
	write := func(t *testing.T, mfs []*dto.MetricFamily, compact []*exposition.CompactFamily, err error) string {
		t.Helper()
		rec := httptest.NewRecorder()
		exposition.Write(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil), mfs, compact, err, func(string, error) {})
		return rec.Body.String()
	}
	collectErr := errors.New("collector b failed")
	for _, tc := range []struct {
		name        string
		res         collectors.Result
		gatherErr   error
		own         map[string]string
		wantCompact int    // compact families left compact
		wantErr     string // in the merged error
	}{
		{
			name: "no clash",
			res: collectors.Result{
				Families: []*dto.MetricFamily{family("nodeagent_scrape_collector_success")},
				Compact:  []*exposition.CompactFamily{compact("node_a", label("device", "sda"), label("device", "sdb")), compact("node_z", label("cpu", "0"))},
			},
			own:         map[string]string{"go_things": "x", "nodeagent_build_info": "y"},
			wantCompact: 2,
		},
		{
			name:        "the collection failed in part",
			res:         collectors.Result{Compact: []*exposition.CompactFamily{compact("node_a", label("device", "sda"))}},
			gatherErr:   collectErr,
			own:         map[string]string{"go_things": "x"},
			wantCompact: 1,
			wantErr:     collectErr.Error(),
		},
		{
			name:        "a compact family named as an own family is merged with it",
			res:         collectors.Result{Compact: []*exposition.CompactFamily{compact("node_a", label("device", "sda")), compact("shared_gauge", label("device", "sdb"))}},
			own:         map[string]string{"shared_gauge": "own"},
			wantCompact: 1,
		},
		{
			name:        "a series in both is reported and served once",
			res:         collectors.Result{Compact: []*exposition.CompactFamily{compact("shared_gauge", label("device", "own"))}},
			own:         map[string]string{"shared_gauge": "own"},
			wantCompact: 0,
			wantErr:     "collected before with the same name and label values",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			others := own(t, tc.own)
			got, err := withOwn(tc.res, tc.gatherErr, others)
			if len(got.Compact) != tc.wantCompact {
				t.Errorf("%d compact families left compact, want %d", len(got.Compact), tc.wantCompact)
			}
			if tc.wantErr == "" && err != nil {
				t.Errorf("error %v, want none", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want one with %q", err, tc.wantErr)
			}
			// As /metrics answered before: the Gatherers over everything in
			// client_model form.
			before, beforeErr := prometheus.Gatherers{prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
				return tc.res.All(), tc.gatherErr
			}), others}.Gather()
			if (err == nil) != (beforeErr == nil) {
				t.Errorf("error %v, the Gatherers' %v", err, beforeErr)
			}
			if diff := cmp.Diff(write(t, before, nil, beforeErr), write(t, got.Families, got.Compact, err)); diff != "" {
				t.Errorf("answer differs from the Gatherers' (-before +now):\n%s", diff)
			}
		})
	}
}
