package collectors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// fakeCollector is a collector whose behaviour each test sets.
type fakeCollector struct {
	name    string
	value   float64
	err     error
	panics  bool
	gate    chan struct{} // when set, Update waits until it is closed
	forever bool          // when set, Update blocks and ignores ctx
	calls   atomic.Int32
	active  *atomic.Int32 // shared between collectors to observe concurrency
	maxSeen *atomic.Int32
	extra   []prometheus.Metric
}

func (f *fakeCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	f.calls.Add(1)
	if f.active != nil {
		n := f.active.Add(1)
		defer f.active.Add(-1)
		for {
			m := f.maxSeen.Load()
			if n <= m || f.maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if f.forever {
		select {} // a statfs on a dead NFS server, say
	}
	if f.gate != nil {
		<-f.gate
	}
	if f.panics {
		panic("boom")
	}
	ch <- prometheus.MustNewConstMetric(
		prometheus.NewDesc("test_"+f.name+"_value", "A test value.", nil, nil),
		prometheus.GaugeValue, f.value)
	for _, m := range f.extra {
		ch <- m
	}
	return f.err
}

func newTestScraper(t *testing.T, timeout time.Duration, cs ...*fakeCollector) *Scraper {
	t.Helper()
	var ins []Instance
	for _, c := range cs {
		ins = append(ins, Instance{Name: c.name, Layer: LayerNode, Collector: c})
	}
	s, err := NewScraper(ins, ScraperOptions{Timeout: timeout, MaxConcurrency: 4, Logger: testLogger(t), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// values flattens families to "name{labels} value" strings for comparison.
func values(mfs []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

func TestScraperBlockingCollectorDoesNotBlockScrape(t *testing.T) {
	t.Parallel()
	stuck := &fakeCollector{name: "stuck", forever: true}
	good := &fakeCollector{name: "good", value: 42}
	s := newTestScraper(t, 200*time.Millisecond, stuck, good)

	for scrape := 1; scrape <= 3; scrape++ {
		done := make(chan []*dto.MetricFamily)
		go func() {
			mfs, err := s.Gather(time.Now().Add(200*time.Millisecond), []string{"good", "stuck"})
			if err != nil {
				t.Errorf("Gather: %v", err)
			}
			done <- mfs
		}()
		var mfs []*dto.MetricFamily
		select {
		case mfs = <-done:
		case <-time.After(30 * time.Second): // a hang, not a timing assertion
			t.Fatal("scrape did not return although a deadline was set")
		}
		got := values(mfs)
		want := map[string]float64{
			`test_good_value{}`: 42,
			`nodeagent_scrape_collector_success{collector=good}`:  1,
			`nodeagent_scrape_collector_success{collector=stuck}`: 0,
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("scrape %d: %s = %v (present %v), want %v", scrape, k, g, ok, v)
			}
		}
		if _, ok := got["test_stuck_value{}"]; ok {
			t.Errorf("scrape %d: the stuck collector's output was served", scrape)
		}
	}
	// Later scrapes skip the stuck collector instead of blocking a new goroutine each time.
	if n := stuck.calls.Load(); n != 1 {
		t.Errorf("stuck collector was invoked %d times, want 1 (one blocked goroutine at most)", n)
	}
	if n := good.calls.Load(); n != 3 {
		t.Errorf("good collector was invoked %d times, want 3", n)
	}
}

func TestScraperLateOutputDropped(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	slow := &fakeCollector{name: "slow", gate: gate}
	s := newTestScraper(t, 50*time.Millisecond, slow)
	mfs, err := s.Gather(time.Now().Add(50*time.Millisecond), []string{"slow"})
	if err != nil {
		t.Fatal(err)
	}
	close(gate) // the collector finishes after the deadline
	got := values(mfs)
	if _, ok := got["test_slow_value{}"]; ok {
		t.Error("late output was served")
	}
	if got["nodeagent_scrape_collector_success{collector=slow}"] != 0 {
		t.Error("late collector reported success")
	}
	// Once it has returned, the collector runs normally again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs, _ = s.Gather(time.Now().Add(time.Second), []string{"slow"})
		if values(mfs)["nodeagent_scrape_collector_success{collector=slow}"] == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if values(mfs)["test_slow_value{}"] != 0 || values(mfs)["nodeagent_scrape_collector_success{collector=slow}"] != 1 {
		t.Errorf("collector did not recover after its blocked run returned: %v", values(mfs))
	}
}

func TestScraperOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		c           *fakeCollector
		wantSuccess float64
		wantValue   bool
	}{
		{"ok", &fakeCollector{name: "ok", value: 1}, 1, true},
		{"no data is success", &fakeCollector{name: "nodata", err: fmt.Errorf("no nfs here: %w", ErrNoData)}, 1, true},
		{"error keeps partial output", &fakeCollector{name: "failing", err: errors.New("bad file")}, 0, true},
		{"panic", &fakeCollector{name: "panicky", panics: true}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestScraper(t, time.Second, tc.c)
			mfs, err := s.Gather(time.Now().Add(time.Second), []string{tc.c.name})
			if err != nil {
				t.Fatal(err)
			}
			got := values(mfs)
			if s := got["nodeagent_scrape_collector_success{collector="+tc.c.name+"}"]; s != tc.wantSuccess {
				t.Errorf("success = %v, want %v", s, tc.wantSuccess)
			}
			if _, ok := got["test_"+tc.c.name+"_value{}"]; ok != tc.wantValue {
				t.Errorf("value present = %v, want %v", ok, tc.wantValue)
			}
			if _, ok := got["nodeagent_scrape_collector_duration_seconds{collector="+tc.c.name+"}"]; !ok {
				t.Error("no duration reported")
			}
		})
	}
}

func TestScraperCoalescesConcurrentScrapes(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	a := &fakeCollector{name: "a", value: 1, gate: gate}
	b := &fakeCollector{name: "b", value: 2, gate: gate}
	s := newTestScraper(t, 10*time.Second, a, b)

	const scrapes = 50
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range scrapes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half ask for both collectors, half for one: different
			// Gathers still share the collector runs in flight.
			names := []string{"a", "b"}
			if i%2 == 1 {
				names = []string{"a"}
			}
			mfs, err := s.Gather(time.Now().Add(10*time.Second), names)
			if err == nil && values(mfs)["test_a_value{}"] == 1 {
				ok.Add(1)
			}
		}()
	}
	// Let every scrape join before the collectors may finish.
	waitFor(t, func() bool { return s.gathers.Load() == scrapes && a.calls.Load() == 1 && b.calls.Load() == 1 })
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	if ok.Load() != scrapes {
		t.Errorf("%d of %d scrapes succeeded", ok.Load(), scrapes)
	}
	if a.calls.Load() != 1 || b.calls.Load() != 1 {
		t.Errorf("collectors ran a=%d b=%d times for one coalesced group, want 1 each", a.calls.Load(), b.calls.Load())
	}
}

func TestScraperBoundsConcurrency(t *testing.T) {
	t.Parallel()
	var active, maxSeen atomic.Int32
	var ins []Instance
	for i := range 10 {
		c := &fakeCollector{name: fmt.Sprintf("c%d", i), active: &active, maxSeen: &maxSeen}
		ins = append(ins, Instance{Name: c.name, Layer: LayerNode, Collector: c})
	}
	s, err := NewScraper(ins, ScraperOptions{Timeout: 10 * time.Second, MaxConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range ins {
		names = append(names, in.Name)
	}
	if _, err := s.Gather(time.Now().Add(10*time.Second), names); err != nil {
		t.Fatal(err)
	}
	if m := maxSeen.Load(); m > 2 || m < 1 {
		t.Errorf("up to %d collectors ran at once, want at most 2", m)
	}
}

func TestScraperInconsistentOutput(t *testing.T) {
	t.Parallel()
	dupDesc := prometheus.NewDesc("test_dup", "Twice.", nil, nil)
	c := &fakeCollector{name: "dup", extra: []prometheus.Metric{
		prometheus.MustNewConstMetric(dupDesc, prometheus.GaugeValue, 1),
		prometheus.MustNewConstMetric(dupDesc, prometheus.GaugeValue, 2),
	}}
	s := newTestScraper(t, time.Second, c)
	mfs, err := s.Gather(time.Now().Add(time.Second), []string{"dup"})
	if err == nil {
		t.Fatal("want an error for a duplicate series")
	}
	if got := values(mfs); got["test_dup_value{}"] != 0 || got["nodeagent_scrape_collector_success{collector=dup}"] != 1 {
		t.Errorf("the consistent part was not served: %v", got)
	}
	if n := testutil.ToFloat64(s.invalid); n != 1 {
		t.Errorf("nodeagent_exposition_errors_total = %v, want 1", n)
	}
}

func TestScraperStripsTimestamps(t *testing.T) {
	t.Parallel()
	desc := prometheus.NewDesc("test_stamped", "Has a timestamp.", nil, nil)
	c := &fakeCollector{name: "ts", extra: []prometheus.Metric{
		prometheus.NewMetricWithTimestamp(time.Unix(1, 0), prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, 1)),
	}}
	s := newTestScraper(t, time.Second, c)
	mfs, err := s.Gather(time.Now().Add(time.Second), []string{"ts"})
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.TimestampMs != nil {
				t.Errorf("%s has a timestamp", mf.GetName())
			}
		}
	}
}

func TestScraperReadiness(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	node := &fakeCollector{name: "n", gate: gate}
	cad := &fakeCollector{name: "c"}
	s, err := NewScraper([]Instance{
		{Name: "n", Layer: LayerNode, Collector: node},
		{Name: "c", Layer: LayerCadvisor, Collector: cad},
	}, ScraperOptions{Timeout: 10 * time.Second, MaxConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.NotReady(); !slices.Equal(got, []Layer{LayerCadvisor, LayerNode}) {
		t.Errorf("before any scrape NotReady = %v", got)
	}
	if _, err := s.Gather(time.Now().Add(time.Second), []string{"c"}); err != nil {
		t.Fatal(err)
	}
	if got := s.NotReady(); !slices.Equal(got, []Layer{LayerNode}) {
		t.Errorf("after the cadvisor layer ran NotReady = %v", got)
	}
	close(gate)
	if _, err := s.Gather(time.Now().Add(time.Second), []string{"n"}); err != nil {
		t.Fatal(err)
	}
	if got := s.NotReady(); len(got) != 0 {
		t.Errorf("after every layer ran NotReady = %v", got)
	}
}

func TestScraperUnknownCollector(t *testing.T) {
	t.Parallel()
	s := newTestScraper(t, time.Second, &fakeCollector{name: "a"})
	if _, err := s.Gather(time.Now().Add(time.Second), []string{"nope"}); err == nil {
		t.Error("want an error for a collector that is not enabled")
	}
}

func TestNewScraperRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []ScraperOptions{{Timeout: 0, MaxConcurrency: 1}, {Timeout: time.Second, MaxConcurrency: 0}} {
		if _, err := NewScraper(nil, o); err == nil {
			t.Errorf("NewScraper(%+v) accepted", o)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// familyCollector returns prebuilt families, as the container layer does.
type familyCollector struct {
	families func() []*dto.MetricFamily
	calls    atomic.Int32
}

func (f *familyCollector) UpdateFamilies(context.Context) ([]*dto.MetricFamily, error) {
	f.calls.Add(1)
	return f.families(), nil
}

func (f *familyCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return SendFamilies(ctx, ch, f.UpdateFamilies)
}

func gaugeFamily(name string, ts bool, pairs ...[2]string) *dto.MetricFamily {
	mf := &dto.MetricFamily{Name: proto.String(name), Help: proto.String("A family."), Type: dto.MetricType_GAUGE.Enum()}
	for i, p := range pairs {
		m := &dto.Metric{
			Label: []*dto.LabelPair{{Name: proto.String(p[0]), Value: proto.String(p[1])}},
			Gauge: &dto.Gauge{Value: proto.Float64(float64(i + 1))},
		}
		if ts {
			m.TimestampMs = proto.Int64(1000)
		}
		mf.Metric = append(mf.Metric, m)
	}
	return mf
}

func TestScraperFamilyCollector(t *testing.T) {
	t.Parallel()
	fam := &familyCollector{families: func() []*dto.MetricFamily {
		return []*dto.MetricFamily{
			gaugeFamily("test_zz_last", true, [2]string{"id", "/a"}, [2]string{"id", "/b"}),
			gaugeFamily("test_a_value", false, [2]string{"id", "/dup"}), // also emitted by the fake collector "a"
			gaugeFamily("aaa_first", false, [2]string{"id", "/"}),
		}
	}}
	plain := &fakeCollector{name: "a", value: 5}
	s, err := NewScraper([]Instance{
		{Name: "fam", Layer: LayerCadvisor, Collector: fam},
		{Name: "a", Layer: LayerNode, Collector: plain},
	}, ScraperOptions{Timeout: time.Second, MaxConcurrency: 2, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := s.Gather(time.Now().Add(time.Second), []string{"a", "fam"})
	if err == nil || !strings.Contains(err.Error(), "test_a_value is already served") {
		t.Errorf("want the duplicate family reported, got %v", err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		for _, m := range mf.GetMetric() {
			if m.TimestampMs != nil {
				t.Errorf("%s kept a timestamp", mf.GetName())
			}
		}
	}
	want := []string{"aaa_first", "nodeagent_scrape_collector_duration_seconds", "nodeagent_scrape_collector_success", "test_a_value", "test_zz_last"}
	if !slices.Equal(names, want) {
		t.Errorf("families %v, want %v (sorted, duplicate dropped once)", names, want)
	}
	got := values(mfs)
	if got["test_a_value{}"] != 5 || got["test_zz_last{id=/b}"] != 2 {
		t.Errorf("values: %v", got)
	}
	if _, ok := got["test_a_value{id=/dup}"]; ok {
		t.Error("the duplicate family's series were served")
	}
	if testutil.ToFloat64(s.invalid) != 1 {
		t.Errorf("nodeagent_exposition_errors_total = %v, want 1", testutil.ToFloat64(s.invalid))
	}
}

// TestSendFamilies: the Update path of a FamilyCollector serves the same
// exposition as its families.
func TestSendFamilies(t *testing.T) {
	t.Parallel()
	fam := &familyCollector{families: func() []*dto.MetricFamily {
		return []*dto.MetricFamily{gaugeFamily("test_fam", false, [2]string{"id", "/a"}, [2]string{"id", "/b"})}
	}}
	out, err := exposition(t, fam)
	if err != nil {
		t.Fatal(err)
	}
	want := "# HELP test_fam A family.\n# TYPE test_fam gauge\ntest_fam{id=\"/a\"} 1\ntest_fam{id=\"/b\"} 2\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}
