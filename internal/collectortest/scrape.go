package collectortest

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Values flattens families to "name{labels} value" strings for comparison.
func Values(mfs []*dto.MetricFamily) map[string]float64 {
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

// WaitFor polls cond until it holds, failing the test after 10 seconds.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Gathered is Values over what g gathers now: the long-lived metrics a
// component registered, such as the Scraper's own counters.
func Gathered(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return Values(mfs)
}

// Arrived reports whether n scrapes have reached a Scraper whose metrics
// are registered on g, each by starting or joining a collection, and runs
// collector runs were started or joined: a test that blocks its collectors
// waits for this before it lets them finish, so that every scrape shares
// the one collection.
func Arrived(t testing.TB, g prometheus.Gatherer, n, runs int) bool {
	t.Helper()
	v := Gathered(t, g)
	return v["nodeagent_scrape_requests_total{outcome=collected}"]+v["nodeagent_scrape_requests_total{outcome=joined}"] == float64(n) &&
		v["nodeagent_scrape_collector_runs_total{outcome=ran}"]+v["nodeagent_scrape_collector_runs_total{outcome=joined}"] == float64(runs)
}
