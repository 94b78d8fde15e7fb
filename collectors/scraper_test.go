package collectors_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/collectors"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/nodeagent/nodeagent/internal/collectortest"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

func newTestScraper(t *testing.T, timeout time.Duration, cs ...*collectortest.Fake) *collectors.Scraper {
	t.Helper()
	return newTestScraperOn(t, prometheus.NewRegistry(), timeout, cs...)
}

// newTestScraperOn is newTestScraper with the Scraper's own metrics
// registered on reg.
func newTestScraperOn(t *testing.T, reg prometheus.Registerer, timeout time.Duration, cs ...*collectortest.Fake) *collectors.Scraper {
	t.Helper()
	var ins []collectors.Instance
	for _, c := range cs {
		ins = append(ins, collectors.Instance{Name: c.Name, Layer: collectors.LayerNode, Collector: c})
	}
	s, err := collectors.NewScraper(ins, collectors.ScraperOptions{Timeout: timeout, MaxConcurrency: 4, Logger: collectortest.Logger(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeKinds are the two paths a Scraper calls a collector on: Update, with
// the metrics collected from a channel while it runs, and one call that
// returns families (CompactCollector; FamilyCollector is called alike).
var fakeKinds = []struct {
	name string
	of   func(*collectortest.Fake) collectors.Collector
}{
	{"Update", func(f *collectortest.Fake) collectors.Collector { return f }},
	{"UpdateCompact", func(f *collectortest.Fake) collectors.Collector { return collectortest.CompactFake{Fake: f} }},
}

// newKindScraper is newTestScraper over fakes of one kind, with at most
// maxConcurrency collectors running at once.
func newKindScraper(t *testing.T, timeout time.Duration, maxConcurrency int, of func(*collectortest.Fake) collectors.Collector, cs ...*collectortest.Fake) *collectors.Scraper {
	t.Helper()
	var ins []collectors.Instance
	for _, c := range cs {
		ins = append(ins, collectors.Instance{Name: c.Name, Layer: collectors.LayerNode, Collector: of(c)})
	}
	s, err := collectors.NewScraper(ins, collectors.ScraperOptions{Timeout: timeout, MaxConcurrency: maxConcurrency, Logger: collectortest.Logger(t), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// gatherOrHang gathers names, failing the test if the Gather does not
// return although a deadline was set.
func gatherOrHang(t *testing.T, s *collectors.Scraper, deadline time.Time, names ...string) []*dto.MetricFamily {
	t.Helper()
	done := make(chan []*dto.MetricFamily)
	go func() {
		mfs, err := s.Gather(deadline, names)
		if err != nil {
			t.Errorf("Gather: %v", err)
		}
		done <- mfs
	}()
	select {
	case mfs := <-done:
		return mfs
	case <-time.After(30 * time.Second): // a hang, not a timing assertion
		t.Fatal("scrape did not return although a deadline was set")
		return nil
	}
}

func TestScraperBlockingCollectorDoesNotBlockScrape(t *testing.T) {
	t.Parallel()
	for _, kind := range fakeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			stuck := &collectortest.Fake{Name: "stuck", Forever: true}
			good := &collectortest.Fake{Name: "good", Value: 42}
			s := newKindScraper(t, 200*time.Millisecond, 4, kind.of, stuck, good)

			for scrape := 1; scrape <= 3; scrape++ {
				got := collectortest.Values(gatherOrHang(t, s, time.Now().Add(200*time.Millisecond), "good", "stuck"))
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
			if n := stuck.Calls(); n != 1 {
				t.Errorf("stuck collector was invoked %d times, want 1 (one blocked goroutine at most)", n)
			}
			if n := good.Calls(); n != 3 {
				t.Errorf("good collector was invoked %d times, want 3", n)
			}
		})
	}
}

// TestScraperStuckCollectorReleasesItsSlot: with one collector at a time,
// a collector blocked for good holds the slot until the deadline: the run
// queued behind it in that scrape is a timeout and is never started, and
// from a later scrape on the others run.
func TestScraperStuckCollectorReleasesItsSlot(t *testing.T) {
	t.Parallel()
	for _, kind := range fakeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			gate := make(chan struct{})
			t.Cleanup(func() { close(gate) })
			stuck := &collectortest.Fake{Name: "a_stuck", Gate: gate} // started first: names are sorted
			queued := &collectortest.Fake{Name: "b_queued", Value: 3}
			s := newKindScraper(t, 100*time.Millisecond, 1, kind.of, stuck, queued)
			got := collectortest.Values(gatherOrHang(t, s, time.Now().Add(100*time.Millisecond), "a_stuck", "b_queued"))
			if v, ok := got[`nodeagent_scrape_collector_success{collector=b_queued}`]; !ok || v != 0 {
				t.Errorf("the queued collector's success = %v (present %v), want 0: %v", v, ok, got)
			}
			if n := queued.Calls(); n != 0 {
				t.Errorf("the queued collector was started %d times after its deadline, want 0", n)
			}
			// A scrape right after the deadline may still join the queued
			// run, which its deadline's callback is finishing: the run
			// must come in a later scrape, and then in every one.
			ran := 0
			for scrape := 2; ran < 2; scrape++ {
				got = collectortest.Values(gatherOrHang(t, s, time.Now().Add(time.Second), "a_stuck", "b_queued"))
				switch {
				case got[`nodeagent_scrape_collector_success{collector=b_queued}`] == 1 && got[`test_b_queued_value{}`] == 3:
					ran++
				case ran > 0:
					t.Fatalf("scrape %d: the slot of the stuck collector was taken again: %v", scrape, got)
				case scrape == 50:
					t.Fatalf("the queued collector did not run in scrapes 2 to 50: %v", got)
				default:
					time.Sleep(10 * time.Millisecond)
				}
			}
			if n := stuck.Calls(); n != 1 {
				t.Errorf("stuck collector was invoked %d times, want 1", n)
			}
		})
	}
}

// TestScraperKeepsFewGoroutines: collectors waiting for a slot wait in a
// queue, not on goroutines of their own, so a scrape of many collectors
// leaves about MaxConcurrency goroutines behind (kept for the next
// scrape), not one per collector. Not parallel: it counts the process's
// goroutines.
func TestScraperKeepsFewGoroutines(t *testing.T) {
	const collectorsN, maxConcurrency = 40, 4
	for _, kind := range fakeKinds {
		t.Run(kind.name, func(t *testing.T) {
			var fakes []*collectortest.Fake
			var names []string
			for i := range collectorsN {
				f := &collectortest.Fake{Name: fmt.Sprintf("c%02d", i), Value: float64(i)}
				fakes = append(fakes, f)
				names = append(names, f.Name)
			}
			s := newKindScraper(t, 10*time.Second, maxConcurrency, kind.of, fakes...)
			before := runtime.NumGoroutine()
			for range 3 {
				got := collectortest.Values(gatherOrHang(t, s, time.Now().Add(10*time.Second), names...))
				if v := got[`test_c39_value{}`]; v != 39 {
					t.Fatalf("test_c39_value = %v, want 39", v)
				}
			}
			// An Update runs on a goroutine of its own beside its run's.
			limit := maxConcurrency
			if kind.name == "Update" {
				limit *= 2
			}
			if kept := runtime.NumGoroutine() - before; kept > limit+2 {
				t.Errorf("%d goroutines left after scrapes of %d collectors, want at most %d (+2)", kept, collectorsN, limit)
			}
		})
	}
}

func TestScraperLateOutputDropped(t *testing.T) {
	t.Parallel()
	for _, kind := range fakeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			gate := make(chan struct{})
			slow := &collectortest.Fake{Name: "slow", Gate: gate}
			s := newKindScraper(t, 50*time.Millisecond, 4, kind.of, slow)
			mfs := gatherOrHang(t, s, time.Now().Add(50*time.Millisecond), "slow")
			close(gate) // the collector finishes after the deadline
			got := collectortest.Values(mfs)
			if _, ok := got["test_slow_value{}"]; ok {
				t.Error("late output was served")
			}
			if got["nodeagent_scrape_collector_success{collector=slow}"] != 0 {
				t.Error("late collector reported success")
			}
			// Once it has returned, the collector runs normally again.
			deadline := time.Now().Add(10 * time.Second)
			for {
				mfs = gatherOrHang(t, s, time.Now().Add(time.Second), "slow")
				if collectortest.Values(mfs)["nodeagent_scrape_collector_success{collector=slow}"] == 1 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if _, ok := collectortest.Values(mfs)["test_slow_value{}"]; !ok || collectortest.Values(mfs)["nodeagent_scrape_collector_success{collector=slow}"] != 1 {
				t.Errorf("collector did not recover after its blocked run returned: %v", collectortest.Values(mfs))
			}
		})
	}
}

func TestScraperOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		c           *collectortest.Fake
		wantSuccess float64
		wantValue   bool
	}{
		{"ok", &collectortest.Fake{Name: "ok", Value: 1}, 1, true},
		{"no data is success", &collectortest.Fake{Name: "nodata", Err: fmt.Errorf("no nfs here: %w", collectors.ErrNoData)}, 1, true},
		{"error keeps partial output", &collectortest.Fake{Name: "failing", Err: errors.New("bad file")}, 0, true},
		{"panic", &collectortest.Fake{Name: "panicky", Panics: true}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestScraper(t, time.Second, tc.c)
			mfs, err := s.Gather(time.Now().Add(time.Second), []string{tc.c.Name})
			if err != nil {
				t.Fatal(err)
			}
			got := collectortest.Values(mfs)
			if s := got["nodeagent_scrape_collector_success{collector="+tc.c.Name+"}"]; s != tc.wantSuccess {
				t.Errorf("success = %v, want %v", s, tc.wantSuccess)
			}
			if _, ok := got["test_"+tc.c.Name+"_value{}"]; ok != tc.wantValue {
				t.Errorf("value present = %v, want %v", ok, tc.wantValue)
			}
			if _, ok := got["nodeagent_scrape_collector_duration_seconds{collector="+tc.c.Name+"}"]; !ok {
				t.Error("no duration reported")
			}
		})
	}
}

func TestScraperCoalescesConcurrentScrapes(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	a := &collectortest.Fake{Name: "a", Value: 1, Gate: gate}
	b := &collectortest.Fake{Name: "b", Value: 2, Gate: gate}
	reg := prometheus.NewRegistry()
	s := newTestScraperOn(t, reg, 10*time.Second, a, b)

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
			if err == nil && collectortest.Values(mfs)["test_a_value{}"] == 1 {
				ok.Add(1)
			}
		}()
	}
	// Let every scrape join before the collectors may finish: two
	// collections (one per collector set) start three runs between them,
	// a and b for one set and a again for the other, which joins a's run.
	collectortest.WaitFor(t, func() bool { return collectortest.Arrived(t, reg, scrapes, 3) })
	close(gate)
	wg.Wait()
	if ok.Load() != scrapes {
		t.Errorf("%d of %d scrapes succeeded", ok.Load(), scrapes)
	}
	if a.Calls() != 1 || b.Calls() != 1 {
		t.Errorf("collectors ran a=%d b=%d times for one coalesced group, want 1 each", a.Calls(), b.Calls())
	}
	v := collectortest.Gathered(t, reg)
	if v["nodeagent_scrape_requests_total{outcome=collected}"] != 2 || v["nodeagent_scrape_collector_runs_total{outcome=joined}"] != 1 {
		t.Errorf("scraper counters %v; want 2 collections, 48 joins, and one run joined", v)
	}
}

func TestScraperBoundsConcurrency(t *testing.T) {
	t.Parallel()
	var active, maxSeen atomic.Int32
	var ins []collectors.Instance
	for i := range 10 {
		c := &collectortest.Fake{Name: fmt.Sprintf("c%d", i), Active: &active, MaxSeen: &maxSeen}
		ins = append(ins, collectors.Instance{Name: c.Name, Layer: collectors.LayerNode, Collector: c})
	}
	s, err := collectors.NewScraper(ins, collectors.ScraperOptions{Timeout: 10 * time.Second, MaxConcurrency: 2})
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
	c := &collectortest.Fake{Name: "dup", Extra: []prometheus.Metric{
		prometheus.MustNewConstMetric(dupDesc, prometheus.GaugeValue, 1),
		prometheus.MustNewConstMetric(dupDesc, prometheus.GaugeValue, 2),
	}}
	reg := prometheus.NewRegistry()
	s := newTestScraperOn(t, reg, time.Second, c)
	mfs, err := s.Gather(time.Now().Add(time.Second), []string{"dup"})
	if err == nil {
		t.Fatal("want an error for a duplicate series")
	}
	if got := collectortest.Values(mfs); got["test_dup_value{}"] != 0 || got["nodeagent_scrape_collector_success{collector=dup}"] != 1 {
		t.Errorf("the consistent part was not served: %v", got)
	}
	own, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if n := collectortest.Values(own)["nodeagent_exposition_errors_total{}"]; n != 1 {
		t.Errorf("nodeagent_exposition_errors_total = %v, want 1", n)
	}
}

func TestScraperStripsTimestamps(t *testing.T) {
	t.Parallel()
	desc := prometheus.NewDesc("test_stamped", "Has a timestamp.", nil, nil)
	c := &collectortest.Fake{Name: "ts", Extra: []prometheus.Metric{
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
	node := &collectortest.Fake{Name: "n", Gate: gate}
	cad := &collectortest.Fake{Name: "c"}
	s, err := collectors.NewScraper([]collectors.Instance{
		{Name: "n", Layer: collectors.LayerNode, Collector: node},
		{Name: "c", Layer: collectors.LayerCadvisor, Collector: cad},
	}, collectors.ScraperOptions{Timeout: 10 * time.Second, MaxConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.NotReady(); !slices.Equal(got, []collectors.Layer{collectors.LayerCadvisor, collectors.LayerNode}) {
		t.Errorf("before any scrape NotReady = %v", got)
	}
	if _, err := s.Gather(time.Now().Add(time.Second), []string{"c"}); err != nil {
		t.Fatal(err)
	}
	if got := s.NotReady(); !slices.Equal(got, []collectors.Layer{collectors.LayerNode}) {
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
	s := newTestScraper(t, time.Second, &collectortest.Fake{Name: "a"})
	if _, err := s.Gather(time.Now().Add(time.Second), []string{"nope"}); err == nil {
		t.Error("want an error for a collector that is not enabled")
	}
}

func TestNewScraperRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []collectors.ScraperOptions{{Timeout: 0, MaxConcurrency: 1}, {Timeout: time.Second, MaxConcurrency: 0}} {
		if _, err := collectors.NewScraper(nil, o); err == nil {
			t.Errorf("NewScraper(%+v) accepted", o)
		}
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
	return collectors.SendFamilies(ctx, ch, f.UpdateFamilies)
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
	plain := &collectortest.Fake{Name: "a", Value: 5}
	reg := prometheus.NewRegistry()
	s, err := collectors.NewScraper([]collectors.Instance{
		{Name: "fam", Layer: collectors.LayerCadvisor, Collector: fam},
		{Name: "a", Layer: collectors.LayerNode, Collector: plain},
	}, collectors.ScraperOptions{Timeout: time.Second, MaxConcurrency: 2, Registerer: reg})
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
	got := collectortest.Values(mfs)
	if got["test_a_value{}"] != 5 || got["test_zz_last{id=/b}"] != 2 {
		t.Errorf("values: %v", got)
	}
	if _, ok := got["test_a_value{id=/dup}"]; ok {
		t.Error("the duplicate family's series were served")
	}
	own, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if n := collectortest.Values(own)["nodeagent_exposition_errors_total{}"]; n != 1 {
		t.Errorf("nodeagent_exposition_errors_total = %v, want 1", n)
	}
}

// compactCollector returns compact families, as the container layer does;
// it is a FamilyCollector too, which the Scraper must not call.
type compactCollector struct {
	familyCollector
	compact func() []*exposition.CompactFamily
}

func (c *compactCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	return c.compact(), nil
}

func compactGauge(name string, ids ...string) *exposition.CompactFamily {
	f := &exposition.CompactFamily{Name: name, Help: "A family.", Type: dto.MetricType_GAUGE}
	for i, id := range ids {
		f.Labels = append(f.Labels, exposition.NewLabelSet([]string{"id"}, []string{id}))
		f.Values = append(f.Values, float64(i+1))
	}
	return f
}

// TestScraperCompactCollector: a CompactCollector's families come back
// apart and sorted from GatherResult, merged by name in their client_model
// form from Gather; one whose name another collector serves, or whose
// label sets and values disagree in number, or that is not a counter,
// gauge or untyped, is dropped and counted.
func TestScraperCompactCollector(t *testing.T) {
	t.Parallel()
	mismatched := compactGauge("test_bad_mismatch", "/a", "/b")
	mismatched.Labels = mismatched.Labels[:1]
	summary := compactGauge("test_bad_summary", "/a")
	summary.Type = dto.MetricType_SUMMARY
	cc := &compactCollector{
		familyCollector: familyCollector{families: func() []*dto.MetricFamily {
			return []*dto.MetricFamily{gaugeFamily("test_from_update_families", false, [2]string{"id", "/"})}
		}},
		compact: func() []*exposition.CompactFamily {
			return []*exposition.CompactFamily{
				compactGauge("test_zz_last", "/a", "/b"),
				compactGauge("test_a_value", "/dup"), // also emitted by the fake collector "a"
				compactGauge("aaa_first", "/"),
				mismatched, summary,
			}
		},
	}
	plain := &collectortest.Fake{Name: "a", Value: 5}
	reg := prometheus.NewRegistry()
	s, err := collectors.NewScraper([]collectors.Instance{
		{Name: "compact", Layer: collectors.LayerCadvisor, Collector: cc},
		{Name: "a", Layer: collectors.LayerNode, Collector: plain},
	}, collectors.ScraperOptions{Timeout: time.Second, MaxConcurrency: 2, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.GatherResult(time.Now().Add(time.Second), []string{"a", "compact"})
	for _, want := range []string{"test_a_value is already served", "test_bad_mismatch has 1 label sets for 2 values", "test_bad_summary is of type SUMMARY"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q reported, got %v", want, err)
		}
	}
	if cc.calls.Load() != 0 {
		t.Error("the Scraper called UpdateFamilies of a CompactCollector")
	}
	var compact []string
	for _, f := range res.Compact {
		compact = append(compact, f.Name)
	}
	// The Scraper's own series are compact too.
	if want := []string{"aaa_first", "nodeagent_scrape_collector_duration_seconds", "nodeagent_scrape_collector_success", "test_zz_last"}; !slices.Equal(compact, want) {
		t.Errorf("compact families %v, want %v", compact, want)
	}
	var names []string
	for _, mf := range res.All() {
		names = append(names, mf.GetName())
	}
	want := []string{"aaa_first", "nodeagent_scrape_collector_duration_seconds", "nodeagent_scrape_collector_success", "test_a_value", "test_zz_last"}
	if !slices.Equal(names, want) {
		t.Errorf("all families %v, want %v", names, want)
	}
	mfs, _ := s.Gather(time.Now().Add(time.Second), []string{"a", "compact"})
	got := collectortest.Values(mfs)
	if got["test_zz_last{id=/b}"] != 2 || got["aaa_first{id=/}"] != 1 || got["test_a_value{}"] != 5 {
		t.Errorf("values from Gather: %v", got)
	}
	own, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// One merge error per scrape, of the two scrapes above.
	if n := collectortest.Values(own)["nodeagent_exposition_errors_total{}"]; n != 2 {
		t.Errorf("nodeagent_exposition_errors_total = %v, want 2", n)
	}
}

// TestSendFamilies: the Update path of a FamilyCollector serves the same
// exposition as its families.
func TestSendFamilies(t *testing.T) {
	t.Parallel()
	fam := &familyCollector{families: func() []*dto.MetricFamily {
		return []*dto.MetricFamily{gaugeFamily("test_fam", false, [2]string{"id", "/a"}, [2]string{"id", "/b"})}
	}}
	out, err := collectortest.Exposition(t, fam)
	if err != nil {
		t.Fatal(err)
	}
	want := "# HELP test_fam A family.\n# TYPE test_fam gauge\ntest_fam{id=\"/a\"} 1\ntest_fam{id=\"/b\"} 2\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

// deadlineCollector records the deadline of the context Update is given.
type deadlineCollector struct {
	got chan time.Time
}

func (d *deadlineCollector) Update(ctx context.Context, _ chan<- prometheus.Metric) error {
	dl, _ := ctx.Deadline()
	d.got <- dl
	return nil
}

// TestScraperDeadlineReachesUpdate: the scrape's deadline, when it is
// shorter than --scrape.timeout (Prometheus' own timeout less the offset),
// is the deadline of the collector's context; a longer one is cut to
// --scrape.timeout.
func TestScraperDeadlineReachesUpdate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		timeout    time.Duration
		scrape     time.Duration
		wantAtMost time.Duration
	}{
		{"Prometheus' deadline is shorter", 10 * time.Second, 2 * time.Second, 2 * time.Second},
		{"--scrape.timeout is shorter", 3 * time.Second, time.Minute, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := &deadlineCollector{got: make(chan time.Time, 1)}
			s, err := collectors.NewScraper([]collectors.Instance{{Name: "d", Layer: collectors.LayerNode, Collector: d}},
				collectors.ScraperOptions{Timeout: tc.timeout, MaxConcurrency: 1})
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			if _, err := s.Gather(before.Add(tc.scrape), []string{"d"}); err != nil {
				t.Fatal(err)
			}
			// The deadline is computed while Gather runs.
			slack := time.Since(before)
			got := (<-d.got).Sub(before)
			if got <= 0 || got > tc.wantAtMost+slack {
				t.Errorf("Update's deadline is %s after the scrape began; want at most %s", got, tc.wantAtMost)
			}
		})
	}
}

// TestScraperResultAndLastSuccess: GatherResult gives each collector's own
// error (nil, ErrNoData, its failure, ErrTimeout), and LastSuccess reports
// the outcome of each collector's last scrape, none before the first.
func TestScraperResultAndLastSuccess(t *testing.T) {
	t.Parallel()
	bad := errors.New("connection refused")
	ok := &collectortest.Fake{Name: "ok", Value: 1}
	nodata := &collectortest.Fake{Name: "nodata", Err: fmt.Errorf("nothing: %w", collectors.ErrNoData)}
	failing := &collectortest.Fake{Name: "failing", Err: bad}
	stuck := &collectortest.Fake{Name: "stuck", Forever: true}
	s := newTestScraper(t, 200*time.Millisecond, ok, nodata, failing, stuck)
	if got := s.LastSuccess([]string{"ok", "failing"}); len(got) != 0 {
		t.Errorf("LastSuccess before any scrape: %d metrics, want none", len(got))
	}
	r, err := s.GatherResult(time.Now().Add(200*time.Millisecond), []string{"failing", "nodata", "ok", "stuck"})
	if err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]func(error) bool{
		"ok":      func(err error) bool { return err == nil },
		"nodata":  func(err error) bool { return errors.Is(err, collectors.ErrNoData) },
		"failing": func(err error) bool { return errors.Is(err, bad) },
		"stuck":   func(err error) bool { return errors.Is(err, collectors.ErrTimeout) },
	} {
		if err, present := r.Errors[name]; !present || !check(err) {
			t.Errorf("Errors[%s] = %v (present %v)", name, err, present)
		}
	}
	if len(r.Errors) != 4 || len(r.Families) == 0 {
		t.Errorf("%d errors, %d families; want 4 and some", len(r.Errors), len(r.Families))
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.MetricSlice(s.LastSuccess([]string{"ok", "nodata", "failing", "stuck", "unknown"}))); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"nodeagent_scrape_collector_success{collector=failing}": 0,
		"nodeagent_scrape_collector_success{collector=nodata}":  1,
		"nodeagent_scrape_collector_success{collector=ok}":      1,
		"nodeagent_scrape_collector_success{collector=stuck}":   0,
	}
	if diff := cmp.Diff(want, collectortest.Values(mfs)); diff != "" {
		t.Errorf("LastSuccess (-want +got):\n%s", diff)
	}
}

// The Scraper's own series come out by collector name, whatever order the
// collectors were asked for in, as the registry sorted them.
func TestScraperOwnSeriesByCollector(t *testing.T) {
	var instances []collectors.Instance
	for _, n := range []string{"b", "c", "a"} {
		f := &collectortest.Fake{Name: n, Value: 1}
		if n == "c" {
			f.Err = errors.New("broken")
		}
		instances = append(instances, collectors.Instance{Name: n, Layer: collectors.LayerNode, Collector: f})
	}
	s, err := collectors.NewScraper(instances, collectors.ScraperOptions{Timeout: time.Second, MaxConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := s.GatherResult(time.Now().Add(time.Second), []string{"c", "a", "b"})
	for _, mf := range res.All() {
		if mf.GetName() != "nodeagent_scrape_collector_success" {
			continue
		}
		var got []string
		for _, m := range mf.GetMetric() {
			got = append(got, fmt.Sprintf("%s=%v", m.GetLabel()[0].GetValue(), m.GetGauge().GetValue()))
		}
		if want := []string{"a=1", "b=1", "c=0"}; !slices.Equal(got, want) {
			t.Errorf("nodeagent_scrape_collector_success: %v, want %v", got, want)
		}
		return
	}
	t.Error("no nodeagent_scrape_collector_success")
}

// A host collector that found nothing to report is run again only after
// NoDataRecheck, its outcome (success, no series) served meanwhile; one
// that fails or serves is run every scrape, and so is every collector of
// another layer.
func TestScraperNoDataRecheck(t *testing.T) {
	t.Parallel()
	absent := &collectortest.Fake{Name: "absent", Err: fmt.Errorf("%w: /proc/absent", collectors.ErrNoData)}
	failing := &collectortest.Fake{Name: "failing", Err: errors.New("broken")}
	good := &collectortest.Fake{Name: "good", Value: 1}
	kubelet := &collectortest.Fake{Name: "kubelet", Err: fmt.Errorf("%w: not configured", collectors.ErrNoData)}
	ins := []collectors.Instance{
		{Name: "absent", Layer: collectors.LayerNode, Collector: absent},
		{Name: "failing", Layer: collectors.LayerNode, Collector: failing},
		{Name: "good", Layer: collectors.LayerNode, Collector: good},
		{Name: "kubelet", Layer: collectors.LayerKubelet, Collector: kubelet},
	}
	reg := prometheus.NewRegistry()
	recheck := 300 * time.Millisecond
	s, err := collectors.NewScraper(ins, collectors.ScraperOptions{Timeout: time.Second, MaxConcurrency: 4,
		NoDataRecheck: recheck, Logger: collectortest.Logger(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"absent", "failing", "good", "kubelet"}
	start := time.Now()
	for range 3 {
		res, err := s.GatherResult(time.Now().Add(time.Second), names)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res.Errors["absent"], collectors.ErrNoData) {
			t.Errorf("absent's outcome: %v, want ErrNoData", res.Errors["absent"])
		}
	}
	if time.Since(start) >= recheck {
		t.Skip("the machine is too slow for the recheck interval")
	}
	for _, c := range []struct {
		f    *collectortest.Fake
		want int32
	}{{absent, 1}, {failing, 3}, {good, 3}, {kubelet, 3}} {
		if got := c.f.Calls(); got != c.want {
			t.Errorf("%s ran %d times in three scrapes, want %d", c.f.Name, got, c.want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	skipped := -1.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "nodeagent_scrape_collector_runs_total" && m.GetLabel()[0].GetValue() == "no_data" {
				skipped = m.GetCounter().GetValue()
			}
		}
	}
	if skipped != 2 {
		t.Errorf(`nodeagent_scrape_collector_runs_total{outcome="no_data"} = %v, want 2`, skipped)
	}
	time.Sleep(recheck)
	if _, err := s.GatherResult(time.Now().Add(time.Second), names); err != nil {
		t.Fatal(err)
	}
	if got := absent.Calls(); got != 2 {
		t.Errorf("absent ran %d times after the recheck interval, want 2", got)
	}
}
