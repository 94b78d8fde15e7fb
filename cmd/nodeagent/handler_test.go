package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/collectortest"
	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nodeagent/nodeagent/collectors"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func listenersOf(ls ...net.Listener) []net.Listener { return ls }

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// newTestHandlerFor serves fake node-layer collectors.
func newTestHandlerFor(t *testing.T, maxRequests int, timeout time.Duration, fakes ...*collectortest.Fake) (*collectors.Scraper, *handler) {
	t.Helper()
	var ins []collectors.Instance
	for _, f := range fakes {
		ins = append(ins, collectors.Instance{Name: f.Name, Layer: collectors.LayerNode, Collector: f})
	}
	// The Scraper's own metrics go where the agent's do: the handler's self
	// registry, which tests gather too.
	self := prometheus.NewRegistry()
	s, err := collectors.NewScraper(ins, collectors.ScraperOptions{Timeout: timeout, MaxConcurrency: 4, Registerer: self})
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHandler(handlerConfig{scraper: s, self: self, logger: testLogger(t), maxRequests: maxRequests, offset: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

// TestEndpointsParseAndLint fetches every path of the real wiring and checks
// its output: it parses, no family twice, no timestamps, promlint clean
// (strictly, for the families that are nodeagent's own).
func TestEndpointsParseAndLint(t *testing.T) {
	t.Parallel()
	addr := startAgent(t)
	opts := parseServe(t, fixtureArgs...)
	a, err := newAgent(opts, &testlog.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	served := 0
	for _, ep := range planEndpoints(a.scraper.Instances()) {
		if len(ep.names) == 0 {
			continue
		}
		served++
		t.Run(ep.path, func(t *testing.T) {
			code, body := get(t, http.DefaultClient, "http://"+addr+ep.path)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			lintExposition(t, body)
		})
	}
	if served < 2 {
		t.Errorf("only %d endpoints served", served)
	}
}

// lintExposition fails the test for any parse error, duplicate family,
// sample timestamp or unexcused promlint problem.
func lintExposition(t *testing.T, body string) {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ = strings.Cut(name, " ")
			if seen[name] {
				t.Errorf("family %s appears twice", name)
			}
			seen[name] = true
		}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("does not parse: %v", err)
	}
	mfs, err := parseText(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for name, mf := range byName {
		for _, m := range mf.GetMetric() {
			if m.TimestampMs != nil {
				t.Errorf("%s has a sample timestamp", name)
			}
		}
	}
	problems, err := collectors.Lint(mfs, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
	}
}

func TestEndpointsSelfMetricsOnlyOnMetrics(t *testing.T) {
	t.Parallel()
	addr := startAgent(t)
	_, all := get(t, http.DefaultClient, "http://"+addr+"/metrics")
	_, node := get(t, http.DefaultClient, "http://"+addr+"/metrics/node")
	code, own := get(t, http.DefaultClient, "http://"+addr+"/metrics/nodeagent")
	if code != http.StatusOK {
		t.Fatalf("/metrics/nodeagent: %d %s", code, own)
	}
	for _, fam := range []string{"nodeagent_build_info", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(all, "# TYPE "+fam+" ") {
			t.Errorf("/metrics lacks %s", fam)
		}
		if !strings.Contains(own, "# TYPE "+fam+" ") {
			t.Errorf("/metrics/nodeagent lacks %s", fam)
		}
		if strings.Contains(node, "# TYPE "+fam+" ") {
			t.Errorf("/metrics/node has %s", fam)
		}
	}
	if strings.Contains(own, "node_load1") {
		t.Error("/metrics/nodeagent serves a host metric")
	}
	for _, body := range []string{all, node} {
		if !strings.Contains(body, "node_load1 0.21") || !strings.Contains(body, `nodeagent_scrape_collector_success{collector="loadavg"} 1`) {
			t.Errorf("missing loadavg output or its success metric:\n%s", body)
		}
	}
}

// TestPassthroughPathsExplainWhenOff: on a host without a kubelet or a
// container runtime, every passthrough path answers 404 saying why.
func TestPassthroughPathsExplainWhenOff(t *testing.T) {
	t.Parallel()
	addr := startAgent(t)
	want := map[string]string{
		"/metrics/resource":   "enable it with --collector.resource",
		"/metrics/kube-proxy": "the kubelet layer is off here; give --kube-proxy.url",
		"/metrics/runtime":    "no container runtime found",
	}
	for _, p := range kubeletPaths {
		want[p] = "neither NODE_IP nor NODE_NAME is set"
	}
	checked := 0
	for _, ep := range planEndpoints(nil) {
		if !ep.passthrough {
			continue
		}
		checked++
		code, body := get(t, http.DefaultClient, "http://"+addr+ep.path)
		if code != http.StatusNotFound || want[ep.path] == "" || !strings.Contains(body, want[ep.path]) {
			t.Errorf("%s: %d %q, want 404 saying %q", ep.path, code, body, want[ep.path])
		}
	}
	if checked != len(want) {
		t.Errorf("%d passthrough paths checked, want %d", checked, len(want))
	}
}

func TestCollectFilter(t *testing.T) {
	t.Parallel()
	a := &collectortest.Fake{Name: "a", Value: 1}
	b := &collectortest.Fake{Name: "b", Value: 1}
	_, h := newTestHandlerFor(t, 0, time.Second, a, b)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		query    string
		wantCode int
		want     []string
		notWant  []string
	}{
		{"", 200, []string{"test_a_value", "test_b_value"}, nil},
		{"?collect[]=a", 200, []string{"test_a_value", `collector="a"`}, []string{"test_b_value", `collector="b"`}},
		{"?collect[]=a&collect[]=b", 200, []string{"test_a_value", "test_b_value"}, nil},
		{"?exclude[]=a", 200, []string{"test_b_value"}, []string{"test_a_value"}},
		{"?collect[]=nope", 400, []string{`unknown collector "nope"`}, nil},
		{"?exclude[]=nope", 400, []string{`unknown collector "nope"`}, nil},
		// loadavg is registered but not enabled in this handler.
		{"?collect[]=loadavg", 400, []string{"disabled", "--collector.loadavg"}, nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			code, body := get(t, srv.Client(), srv.URL+"/metrics/node"+tc.query)
			if code != tc.wantCode {
				t.Errorf("status %d, want %d: %s", code, tc.wantCode, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q:\n%s", w, body)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(body, w) {
					t.Errorf("body has %q:\n%s", w, body)
				}
			}
		})
	}
	code, body := get(t, srv.Client(), srv.URL+"/metrics/cadvisor?collect[]=a")
	if code != http.StatusNotFound {
		t.Errorf("cadvisor path with no cadvisor collector: %d %s", code, body)
	}
}

func TestConcurrentScrapesShareOneCollection(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	c := &collectortest.Fake{Name: "shared", Gate: gate, Value: 1}
	_, h := newTestHandlerFor(t, 0, 10*time.Second, c)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	const scrapes = 50
	var started, wg sync.WaitGroup
	codes := make(chan int, scrapes)
	for i := range scrapes {
		started.Add(1)
		wg.Add(1)
		path := "/metrics"
		if i%2 == 1 {
			path = "/metrics/node"
		}
		go func() {
			defer wg.Done()
			started.Done()
			resp, err := srv.Client().Get(srv.URL + path)
			if err != nil {
				codes <- -1
				return
			}
			var b strings.Builder
			_, _ = fmt.Fprint(&b, resp.Status)
			buf := make([]byte, 1<<16)
			n, _ := resp.Body.Read(buf)
			resp.Body.Close()
			if !strings.Contains(string(buf[:n]), "test_shared_value 1") {
				codes <- -2
				return
			}
			codes <- resp.StatusCode
		}()
	}
	started.Wait()
	// Every request has reached the scraper and joined the one collection.
	// Every request has reached the scraper and joined the one collection
	// (/metrics and /metrics/node ask for the same one collector here) and
	// its one run of the collector.
	waitUntil(t, func() bool { return c.Calls() == 1 && collectortest.Arrived(t, h.self, scrapes, 1) })
	close(gate)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Errorf("a scrape failed: %d", code)
		}
	}
	if n := c.Calls(); n != 1 {
		t.Errorf("collector ran %d times for 50 concurrent scrapes, want 1", n)
	}
}

func TestMaxRequests(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	c := &collectortest.Fake{Name: "slow", Gate: gate, Value: 1}
	_, h := newTestHandlerFor(t, 1, 10*time.Second, c)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	first := make(chan int, 1)
	go func() {
		resp, err := srv.Client().Get(srv.URL + "/metrics/node")
		if err != nil {
			first <- -1
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	waitUntil(t, func() bool { return c.Calls() == 1 })
	code, body := get(t, srv.Client(), srv.URL+"/metrics")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "--web.max-requests=1") {
		t.Errorf("second request: %d %q, want 503 naming the limit", code, body)
	}
	close(gate)
	if code := <-first; code != http.StatusOK {
		t.Errorf("first request: %d", code)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	c := &collectortest.Fake{Name: "n", Gate: gate, Value: 1}
	s, h := newTestHandlerFor(t, 0, 10*time.Second, c)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if code, body := get(t, srv.Client(), srv.URL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "node") {
		t.Errorf("before the first collection: %d %q", code, body)
	}
	if code, _ := get(t, srv.Client(), srv.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
	close(gate)
	if _, err := s.Gather(time.Now().Add(time.Second), []string{"n"}); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, srv.Client(), srv.URL+"/readyz"); code != http.StatusOK {
		t.Errorf("after the first collection: %d", code)
	}
}

// TestScrapeTimeoutHeader: a blocked collector is given up after
// Prometheus' own timeout minus the offset, not after --scrape.timeout.
func TestScrapeTimeoutHeader(t *testing.T) {
	t.Parallel()
	stuck := &collectortest.Fake{Name: "stuck", Forever: true, Value: 1}
	ok := &collectortest.Fake{Name: "ok", Value: 1}
	_, h := newTestHandlerFor(t, 0, time.Hour, stuck, ok)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics/node", nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "1")
	client := &http.Client{Timeout: 30 * time.Second} // a hang guard, far above the 0.5s deadline
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("scrape did not answer: %v", err)
	}
	defer resp.Body.Close()
	buf := new(strings.Builder)
	_, _ = fmt.Fprint(buf)
	b := make([]byte, 1<<16)
	n, _ := resp.Body.Read(b)
	body := string(b[:n])
	for _, want := range []string{`nodeagent_scrape_collector_success{collector="stuck"} 0`, `nodeagent_scrape_collector_success{collector="ok"} 1`, "test_ok_value 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func TestLandingPage(t *testing.T) {
	t.Parallel()
	s, h := newTestHandlerFor(t, 0, time.Second, &collectortest.Fake{Name: "a", Value: 1})
	// A first collection, so that /readyz, linked too, answers 200.
	if _, err := s.Gather(time.Now().Add(time.Second), []string{"a"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	body := checkLandingLinks(t, srv.Client(), srv.URL)
	for _, want := range []string{`href="/metrics/node"`, `href="/readyz"`, "Off on this host", "/metrics/cadvisor"} {
		if !strings.Contains(body, want) {
			t.Errorf("landing page lacks %q:\n%s", want, body)
		}
	}
	for _, unwanted := range []string{`href="/metrics/cadvisor"`, "debug/pprof"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("landing page has %q:\n%s", unwanted, body)
		}
	}
	if code, _ := get(t, srv.Client(), srv.URL+"/nope"); code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}
}

var hrefRE = regexp.MustCompile(`href="([^"]*)"`)

// checkLandingLinks fetches the landing page at base and every link on it,
// each of which must answer 200 on the same listener; it returns the page.
func checkLandingLinks(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	code, page := get(t, c, base+"/")
	if code != http.StatusOK {
		t.Fatalf("landing page: %d %s", code, page)
	}
	links := hrefRE.FindAllStringSubmatch(page, -1)
	for _, m := range links {
		if !strings.HasPrefix(m[1], "/") {
			t.Errorf("link %q leaves this listener", m[1])
			continue
		}
		if code, body := get(t, c, base+m[1]); code != http.StatusOK {
			t.Errorf("landing page link %s: %d %s", m[1], code, body)
		}
	}
	if len(links) == 0 {
		t.Fatalf("no link on the landing page:\n%s", page)
	}
	t.Logf("landing page: %d links checked", len(links))
	return page
}

// TestLastScrapeTimestamp: each metrics path records when it was last
// requested, whatever the answer (a 404 too), and /metrics and
// /metrics/nodeagent report it; a path never requested has no series.
func TestLastScrapeTimestamp(t *testing.T) {
	t.Parallel()
	addr := startAgent(t)
	before := float64(time.Now().UnixNano()) / 1e9
	for _, p := range []string{"/metrics/node", "/metrics/kubelet"} { // 200, 404
		get(t, http.DefaultClient, "http://"+addr+p)
	}
	after := float64(time.Now().UnixNano()) / 1e9
	for _, p := range []string{"/metrics", "/metrics/nodeagent"} {
		_, body := get(t, http.DefaultClient, "http://"+addr+p)
		mfs := families(t, body)["nodeagent_last_scrape_timestamp_seconds"]
		got := map[string]float64{}
		for _, m := range mfs.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
		for _, path := range []string{"/metrics/node", "/metrics/kubelet"} {
			if v, ok := got[path]; !ok || v < before || v > after {
				t.Errorf("%s: nodeagent_last_scrape_timestamp_seconds{path=%q} = %v (present %v); want between %v and %v", p, path, v, ok, before, after)
			}
		}
		if _, ok := got["/metrics/cadvisor"]; ok {
			t.Errorf("%s reports a scrape of /metrics/cadvisor, which nobody requested", p)
		}
	}
}
