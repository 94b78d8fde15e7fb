package collectors

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/internal/exposition"
)

// CompactBuilder keeps every family's series apart however they are
// interleaved, across the chunks its families are carved from, and sorts
// each family's series by label values as the registry does.
func TestCompactBuilder(t *testing.T) {
	type series struct {
		Labels string
		Value  float64
	}
	render := func(ls *exposition.LabelSet) string {
		s := ""
		for i := range ls.Len() {
			s += ls.Name(i) + "=" + ls.Value(i) + ","
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		families int
		order    func(i int) int // the family of the i-th series added
		series   int
	}{
		{"one series each", 70, func(i int) int { return i }, 70},
		{"together", 40, func(i int) int { return i / 3 }, 120},
		{"round robin", 37, func(i int) int { return i % 37 }, 37 * 4},
		{"second series after the chunk filled", 45, func(i int) int { return (i * 7) % 45 }, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b CompactBuilder
			want := map[string][]series{}
			for i := range tc.series {
				f := tc.order(i)
				name := fmt.Sprintf("family_%02d", f)
				// Label values descending within a family, so that the
				// builder has to sort them.
				ls := LabelSet("device", fmt.Sprintf("dev%05d", tc.series-i))
				b.Add(name, "help of "+name, dto.MetricType_GAUGE, ls, float64(i))
				want[name] = append([]series{{render(ls), float64(i)}}, want[name]...)
			}
			got := map[string][]series{}
			for _, f := range b.Families() {
				if f.Help != "help of "+f.Name || len(f.Labels) != len(f.Values) {
					t.Fatalf("family %s: help %q, %d label sets, %d values", f.Name, f.Help, len(f.Labels), len(f.Values))
				}
				if _, dup := got[f.Name]; dup {
					t.Fatalf("family %s returned twice", f.Name)
				}
				got[f.Name] = []series{}
				for i := range f.Values {
					got[f.Name] = append(got[f.Name], series{render(f.Labels[i]), f.Values[i]})
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// AddValues takes label values in the order of the desc's label names, as
// prometheus.MustNewConstMetric does, and gives label sets sorted by name,
// a missing value empty and a value beyond the names dropped.
func TestCompactBuilderAddValues(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels []string
		values []string
		want   string
	}{
		{"no labels", nil, nil, ""},
		{"sorted already", []string{"cpu", "mode"}, []string{"0", "idle"}, "cpu=0,mode=idle,"},
		{"names out of order", []string{"vector", "cpu"}, []string{"NET_RX", "1"}, "cpu=1,vector=NET_RX,"},
		{"a missing value", []string{"z", "a", "m"}, []string{"zv"}, "a=,m=,z=zv,"},
		{"a value too many", []string{"b", "a"}, []string{"bv", "av", "extra"}, "a=av,b=bv,"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b CompactBuilder
			d := NewCompactDesc("node_test", "Help.", dto.MetricType_GAUGE, tc.labels...)
			b.AddValues(d, 1, tc.values...)
			fams := b.Families()
			if len(fams) != 1 || fams[0].Len() != 1 {
				t.Fatalf("got %d families", len(fams))
			}
			got := ""
			ls := fams[0].Labels[0]
			for i := range ls.Len() {
				got += ls.Name(i) + "=" + ls.Value(i) + ","
			}
			if got != tc.want {
				t.Errorf("labels %q, want %q", got, tc.want)
			}
		})
	}
}
