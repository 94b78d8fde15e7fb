package exposition

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/testing/protocmp"
)

func TestNewLabelSet(t *testing.T) {
	for _, tc := range []struct {
		name   string
		set    *LabelSet
		names  []string
		values []string
	}{
		{"as given", NewLabelSet([]string{"a", "b"}, []string{"1", "2"}), []string{"a", "b"}, []string{"1", "2"}},
		{"missing values are empty", NewLabelSet([]string{"a", "b", "c"}, []string{"1"}), []string{"a", "b", "c"}, []string{"1", "", ""}},
		{"values beyond the names ignored", NewLabelSet([]string{"a"}, []string{"1", "2"}), []string{"a"}, []string{"1"}},
		{"pairs sorted by name", NewLabelSetPairs("pod", "p", "container", "c", "id", "/"), []string{"container", "id", "pod"}, []string{"c", "/", "p"}},
		{"odd pair count drops the last name", NewLabelSetPairs("b", "2", "a", "1", "z"), []string{"a", "b"}, []string{"1", "2"}},
		{"empty", NewLabelSet(nil, nil), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var names, values []string
			for i := range tc.set.Len() {
				names, values = append(names, tc.set.Name(i)), append(values, tc.set.Value(i))
			}
			if !cmp.Equal(names, tc.names) || !cmp.Equal(values, tc.values) {
				t.Errorf("got %q=%q, want %q=%q", names, values, tc.names, tc.values)
			}
			var want []*dto.LabelPair
			for i := range tc.names {
				want = append(want, &dto.LabelPair{Name: &tc.names[i], Value: &tc.values[i]})
			}
			if diff := cmp.Diff(want, tc.set.Pairs(), protocmp.Transform()); diff != "" {
				t.Errorf("Pairs (-want +got):\n%s", diff)
			}
		})
	}
	// The slices a set was given stay untouched when values are padded.
	values := make([]string, 1, 4)
	values[0] = "1"
	NewLabelSet([]string{"a", "b"}, values)
	if got := values[:2]; got[1] != "" || len(values) != 1 {
		t.Errorf("NewLabelSet wrote into the caller's values: %q", got)
	}
}

func TestLabelSetAccessors(t *testing.T) {
	s := NewLabelSetPairs("id", "/a", "container", "app")
	if v, ok := s.Get("id"); !ok || v != "/a" {
		t.Errorf(`Get("id") = %q, %v`, v, ok)
	}
	if _, ok := s.Get("pod"); ok {
		t.Error(`Get("pod") found a label the set lacks`)
	}
	var none *LabelSet
	if none.Len() != 0 || none.Pairs() != nil {
		t.Error("a nil set has labels")
	}
	if _, ok := none.Get("id"); ok {
		t.Error("a nil set has a label")
	}
	if p, q := s.Pairs(), s.Pairs(); &p[0] != &q[0] {
		t.Error("Pairs built the client_model form twice")
	}
	for _, tc := range []struct {
		a, b *LabelSet
		sign int
	}{
		{NewLabelSetPairs("a", "1"), NewLabelSetPairs("a", "2"), -1},
		{NewLabelSetPairs("a", "2", "b", "0"), NewLabelSetPairs("a", "1", "b", "9"), 1},
		{NewLabelSetPairs("a", "1"), NewLabelSetPairs("a", "1", "b", ""), -1},
		{NewLabelSetPairs("a", "1"), NewLabelSetPairs("a", "1"), 0},
		{nil, NewLabelSetPairs("a", ""), -1},
	} {
		if got := tc.a.Compare(tc.b); sign(got) != tc.sign {
			t.Errorf("%v.Compare(%v) = %d, want sign %d", tc.a.Pairs(), tc.b.Pairs(), got, tc.sign)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// TestLabelSetKeepsSharedText: a set that serves two series of one answer
// keeps its text from then on; a set that serves one series an answer is
// rendered each time and keeps nothing; answers are the same bytes either
// way, and answers written at once share the sets safely (under -race).
func TestLabelSetKeepsSharedText(t *testing.T) {
	shared := NewLabelSetPairs("container", "app", "id", `/a"b`)
	once := NewLabelSetPairs("container", "app", "id", `/a"b`, "scope", "hierarchy")
	odd := NewLabelSetPairs("a.b", "x")
	fams := []*CompactFamily{
		{Name: "container_a_total", Help: "a", Type: dto.MetricType_COUNTER, Labels: []*LabelSet{shared, nil}, Values: []float64{1, 2}},
		{Name: "container_b", Help: "b", Type: dto.MetricType_GAUGE, Labels: []*LabelSet{shared}, Values: []float64{3}},
		{Name: "container_c_total", Help: "c", Type: dto.MetricType_COUNTER, Labels: []*LabelSet{once}, Values: []float64{4}},
		{Name: "container_d", Help: "d: a label name left to expfmt", Type: dto.MetricType_GAUGE, Labels: []*LabelSet{odd}, Values: []float64{5}},
	}
	answer := func() string {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		rec := httptest.NewRecorder()
		Write(rec, req, nil, fams, nil, func(msg string, err error) { t.Errorf("%s: %v", msg, err) })
		return rec.Body.String()
	}
	const want = `# HELP container_a_total a
# TYPE container_a_total counter
container_a_total{container="app",id="/a\"b"} 1
container_a_total 2
# HELP container_b b
# TYPE container_b gauge
container_b{container="app",id="/a\"b"} 3
# HELP container_c_total c
# TYPE container_c_total counter
container_c_total{container="app",id="/a\"b",scope="hierarchy"} 4
`
	first := answer()
	if !strings.HasPrefix(first, want) || !strings.Contains(first, "container_d") {
		t.Fatalf("first answer:\n%s\nwant it to start with:\n%s", first, want)
	}
	if shared.text.Load() == nil {
		t.Error("a set of two series in one answer did not keep its text")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if got := answer(); got != first {
					t.Errorf("a later answer differs from the first:\n%s", cmp.Diff(first, got))
					return
				}
			}
		})
	}
	wg.Wait()
	if once.text.Load() != nil {
		t.Error("a set of one series an answer kept its text")
	}
	if odd.text.Load() != nil || odd.writable() {
		t.Error("a set with a label name that is not a legacy name was taken by the text writer")
	}
}

// TestLabelNamesDerive: a set derived from another has the other's labels
// and its own merged in name order, whether it refers to the base set
// (names extended from the base's) or copies from it (any other names, or
// more than 64), and its client_model form and text are those of the
// same set built whole.
func TestLabelNamesDerive(t *testing.T) {
	base := NewLabelNames("container", "id", "pod").Set("app", "/a", "web-0")
	many := make([]string, 70)
	manyValues := make([]string, 70)
	for i := range many {
		many[i], manyValues[i] = fmt.Sprintf("l%03d", i), fmt.Sprint(i)
	}
	wide := NewLabelNames(many...).Set(manyValues...)
	device := base.names.Extend("device")
	for _, tc := range []struct {
		name   string
		set    *LabelSet
		refers bool
		want   []string // name, value, …
	}{
		{"one added inside", base.names.Extend("device").Derive(base, "sda"), true,
			[]string{"container", "app", "device", "sda", "id", "/a", "pod", "web-0"}},
		{"added first, inside and last", base.names.Extend("a", "interface", "zone").Derive(base, "1", "eth0", "z"), true,
			[]string{"a", "1", "container", "app", "id", "/a", "interface", "eth0", "pod", "web-0", "zone", "z"}},
		{"a missing added value is empty", base.names.Extend("cpu", "scope").Derive(base, "total"), true,
			[]string{"container", "app", "cpu", "total", "id", "/a", "pod", "web-0", "scope", ""}},
		{"names not extended from the base's copy", NewLabelNames("cpu", "id", "pod").Extend("mode").Derive(base, "idle"), false,
			[]string{"cpu", "", "id", "/a", "mode", "idle", "pod", "web-0"}},
		{"derived from a derived set", device.Extend("major").Derive(device.Derive(base, "sda"), "8"), true,
			[]string{"container", "app", "device", "sda", "id", "/a", "major", "8", "pod", "web-0"}},
		{"derived from a set of other names of the same", base.names.Extend("device").Extend("major").Derive(device.Derive(base, "sda"), "8"), false,
			[]string{"container", "app", "device", "sda", "id", "/a", "major", "8", "pod", "web-0"}},
		{"more than 64 names copy", wide.names.Extend("m").Derive(wide, "x"), false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if refers := tc.set.base != nil; refers != tc.refers {
				t.Errorf("refers to its base: %v, want %v", refers, tc.refers)
			}
			want := tc.want
			if want == nil { // the wide case: l000…l069 with m between l069 and the end
				for i := range many {
					want = append(want, many[i], manyValues[i])
				}
				want = append(want, "m", "x")
			}
			var got []string
			for i := range tc.set.Len() {
				got = append(got, tc.set.Name(i), tc.set.Value(i))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("labels (-want +got):\n%s", diff)
			}
			whole := NewLabelSetPairs(want...)
			if diff := cmp.Diff(whole.Pairs(), tc.set.Pairs(), protocmp.Transform()); diff != "" {
				t.Errorf("Pairs (-whole +derived):\n%s", diff)
			}
			if a, b := string(whole.appendText(nil)), string(tc.set.appendText(nil)); a != b {
				t.Errorf("text %s, the whole set's %s", b, a)
			}
			if tc.refers {
				// The derived set's client_model form shares its base's pairs.
				bp, dp := tc.set.base.Pairs(), tc.set.Pairs()
				shared := 0
				for _, p := range dp {
					if slices.Contains(bp, p) {
						shared++
					}
				}
				if shared != len(bp) {
					t.Errorf("%d of the base's %d pairs shared", shared, len(bp))
				}
			}
			if tc.set.Compare(whole) != 0 {
				t.Error("Compare: differs from the whole set")
			}
		})
	}
}
