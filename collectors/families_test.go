package collectors

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
)

// CompactBuilder keeps every family's series apart however they are
// interleaved, across the chunks its families are carved from, and sorts
// each family's series by label values as the registry does.
func TestCompactBuilder(t *testing.T) {
	type series struct {
		Labels string
		Value  float64
	}
	render := func(ls []*dto.LabelPair) string {
		s := ""
		for _, l := range ls {
			s += l.GetName() + "=" + l.GetValue() + ","
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
