package kubelet

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/promfetch"
	"github.com/nodeagent/nodeagent/internal/testlog"
	"github.com/nodeagent/nodeagent/kubeletclient"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// TestFactoryMayBuildNothing: a factory returning no collector and no error
// (the kubelet layer without a kubelet) leaves the collector out.
func TestFactoryMayBuildNothing(t *testing.T) {
	t.Parallel()
	regs := []collectors.Registration{
		{Name: "present", Layer: collectors.LayerNode, DefaultEnabled: true, Setup: func(collectors.FlagApp) collectors.Factory {
			return func(collectors.Env) (collectors.Collector, error) {
				return &collectortest.Fake{Name: "present"}, nil
			}
		}},
		{Name: "absent", Layer: collectors.LayerKubelet, DefaultEnabled: true, Setup: func(collectors.FlagApp) collectors.Factory {
			return func(collectors.Env) (collectors.Collector, error) { return nil, nil }
		}},
	}
	app := kingpin.New("test", "")
	sel := collectors.AddFlags(app, regs)
	if _, err := app.Parse(nil); err != nil {
		t.Fatal(err)
	}
	ins, err := sel.Build(collectors.Env{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || ins[0].Name != "present" {
		t.Errorf("built %+v; want only the collector that had something to build", ins)
	}
}

// kubeletClient is a kubelet client for k, with its client certificate and
// extra --kubelet.* args.
func kubeletClient(t testing.TB, k *fakekubelet.Kubelet, args ...string) *kubeletclient.Client {
	t.Helper()
	var cfg kubeletclient.Config
	app := kingpin.New("test", "")
	cfg.AddFlags(app)
	base := []string{"--kubelet.url=" + k.URL, "--kubelet.ca-file=" + k.CAFile,
		"--kubelet.client-cert-file=" + k.ClientCertFile, "--kubelet.client-key-file=" + k.ClientKeyFile}
	if _, err := app.Parse(append(base, args...)); err != nil {
		t.Fatal(err)
	}
	c, err := kubeletclient.New(cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// buildKubeletLayer builds the named collectors through their registrations
// and flags, as the binary does, with env.Kubelet set to kc.
func buildKubeletLayer(t testing.TB, kc collectors.Kubelet, names ...string) []collectors.Instance {
	t.Helper()
	return buildKubeletLayerEnv(t, collectors.Env{Kubelet: kc, Logger: slog.New(slog.DiscardHandler), Now: time.Now}, names...)
}

func buildKubeletLayerEnv(t testing.TB, env collectors.Env, names ...string) []collectors.Instance {
	t.Helper()
	var ins []collectors.Instance
	for _, n := range names {
		reg := collectortest.Lookup(t, n)
		factory := reg.Setup(kingpin.New("test", ""))
		c, err := factory(env)
		if err != nil || c == nil {
			t.Fatalf("building %s: %v, %v", n, c, err)
		}
		ins = append(ins, collectors.Instance{Name: n, Layer: reg.Layer, Collector: c})
	}
	return ins
}

// withoutScrapeMetrics renders families in the text format, leaving out the
// scraper's own nodeagent_scrape_* families.
func withoutScrapeMetrics(t testing.TB, mfs []*dto.MetricFamily) string {
	t.Helper()
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "nodeagent_scrape_") {
			continue
		}
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func successOf(mfs []*dto.MetricFamily, collector string) float64 {
	for _, mf := range mfs {
		if mf.GetName() != "nodeagent_scrape_collector_success" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == collector {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// TestPassthroughUnchanged: through the collector and the scraper, the
// kubelet's real /metrics, /metrics/probes, /metrics/resource and
// /metrics/slis come out byte for byte as the kubelet sent them.
func TestPassthroughUnchanged(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	kc := kubeletClient(t, k)
	for name, payload := range map[string][]byte{
		"kubelet":  fakekubelet.Payload(t, "k8s-1.37-local_metrics.txt"),
		"probes":   fakekubelet.ProbesBody,
		"resource": fakekubelet.Payload(t, "k8s-1.37-local_metrics-resource.txt"),
		"slis":     fakekubelet.Payload(t, "metrics-slis.txt"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := collectors.NewScraper(buildKubeletLayer(t, kc, name), collectors.ScraperOptions{Timeout: 10 * time.Second, MaxConcurrency: 2})
			if err != nil {
				t.Fatal(err)
			}
			mfs, err := s.Gather(time.Now().Add(10*time.Second), []string{name})
			if err != nil {
				t.Fatal(err)
			}
			if successOf(mfs, name) != 1 {
				t.Errorf("nodeagent_scrape_collector_success{collector=%q} is not 1", name)
			}
			// /metrics/resource stamps its samples; nothing else changes.
			want := sampleTimestampRE.ReplaceAllString(string(payload), "$1")
			if diff := cmp.Diff(want, withoutScrapeMetrics(t, mfs)); diff != "" {
				t.Errorf("passthrough differs from the kubelet's body (-kubelet +served):\n%s", diff)
			}
			if name == "kubelet" && !strings.Contains(withoutScrapeMetrics(t, mfs), `kubelet_node_name{node="real-kubelet-node"} 1`) {
				t.Error("kubelet_node_name missing")
			}
		})
	}
}

// sampleTimestampRE matches a sample line with an explicit timestamp.
var sampleTimestampRE = regexp.MustCompile(`(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})? \S+) -?[0-9]+$`)

// TestPassthroughLint: promlint finds nothing in the passthroughs beyond
// the kubelet's own names that kubeletLintProblems declares.
func TestPassthroughLint(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"k8s-1.37-local_metrics.txt", "k8s-1.37-local_metrics-resource.txt", "metrics-slis.txt"} {
		mfs, err := promfetch.Decode(fakekubelet.Payload(t, name), fakekubelet.TextFormat)
		if err != nil {
			t.Fatal(err)
		}
		problems, err := collectors.Lint(mfs, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", name, p.Metric, p.Text)
		}
		// Every declared exception is needed by the capture or named from
		// the kubelet's source; at least the capture's must match.
		strict, err := promlint.NewWithMetricFamilies(mfs).Lint()
		if err != nil {
			t.Fatal(err)
		}
		if name == "k8s-1.37-local_metrics.txt" && len(strict) == 0 {
			t.Error("the capture has no lint problems any more; review kubeletLintProblems")
		}
	}
}

// TestPassthroughFailuresLeaveTheRestServed: a kubelet that is down, slow,
// or answers garbage fails only its collector; the scrape is served in time
// with the other collectors' output.
func TestPassthroughFailuresLeaveTheRestServed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(*fakekubelet.Kubelet, chan struct{})
	}{
		{"kubelet down", func(k *fakekubelet.Kubelet, _ chan struct{}) { k.Stop() }},
		{"kubelet hangs", func(k *fakekubelet.Kubelet, release chan struct{}) {
			k.Handle("/metrics", func(_ http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			})
		}},
		{"HTML instead of metrics", func(k *fakekubelet.Kubelet, _ chan struct{}) {
			k.SetBody("/metrics", "text/html", []byte("<html><body>login</body></html>"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := fakekubelet.New(t)
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			tc.setup(k, release)
			other := &collectortest.Fake{Name: "other"}
			ins := append(buildKubeletLayer(t, kubeletClient(t, k), "kubelet"), collectors.Instance{Name: "other", Layer: collectors.LayerKubelet, Collector: other})
			s, err := collectors.NewScraper(ins, collectors.ScraperOptions{Timeout: 500 * time.Millisecond, MaxConcurrency: 2})
			if err != nil {
				t.Fatal(err)
			}
			mfs, err := s.Gather(time.Now().Add(500*time.Millisecond), []string{"kubelet", "other"})
			if err != nil {
				t.Fatal(err)
			}
			if successOf(mfs, "kubelet") != 0 || successOf(mfs, "other") != 1 {
				t.Errorf("success kubelet=%v other=%v; want 0 and 1", successOf(mfs, "kubelet"), successOf(mfs, "other"))
			}
			if !strings.Contains(withoutScrapeMetrics(t, mfs), "test_other") {
				t.Error("the other collector's output was not served")
			}
		})
	}
}

// TestPassthroughAsksKubeletOncePerCoalescedScrape: 20 scrapes of
// /metrics/kubelet arriving together cost the kubelet one request.
func TestPassthroughAsksKubeletOncePerCoalescedScrape(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	body := fakekubelet.Payload(t, "k8s-1.37-local_metrics.txt")
	gate := make(chan struct{})
	k.Handle("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		<-gate
		w.Header().Set("Content-Type", fakekubelet.TextFormat)
		_, _ = w.Write(body)
	})
	reg := prometheus.NewRegistry()
	s, err := collectors.NewScraper(buildKubeletLayer(t, kubeletClient(t, k), "kubelet"), collectors.ScraperOptions{Timeout: 10 * time.Second, MaxConcurrency: 2, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	const scrapes = 20
	var wg sync.WaitGroup
	results := make(chan float64, scrapes)
	for range scrapes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mfs, err := s.Gather(time.Now().Add(10*time.Second), []string{"kubelet"})
			if err != nil {
				results <- -1
				return
			}
			results <- successOf(mfs, "kubelet")
		}()
	}
	// Every scrape has started or joined the one collection, whose one run
	// is waiting for the kubelet.
	collectortest.WaitFor(t, func() bool { return collectortest.Arrived(t, reg, scrapes, 1) && k.Requests("/metrics") == 1 })
	close(gate)
	wg.Wait()
	close(results)
	for r := range results {
		if r != 1 {
			t.Errorf("a scrape got success %v", r)
		}
	}
	if n := k.Requests("/metrics"); n != 1 {
		t.Errorf("the kubelet saw %d requests for %d concurrent scrapes; want 1", n, scrapes)
	}
}

// BenchmarkPassthrough measures a scrape of /metrics/kubelet's collector
// through the scraper, with the kubelet's real-size /metrics (the 1.37
// capture, 154 KB, 1,205 series) served by the fake kubelet over TLS, in
// the text format and in the protobuf format the client asks for first.
func BenchmarkPassthrough(b *testing.B) {
	text := fakekubelet.Payload(b, "k8s-1.37-local_metrics.txt")
	mfs, err := promfetch.Decode(text, fakekubelet.TextFormat)
	if err != nil {
		b.Fatal(err)
	}
	var proto bytes.Buffer
	protoFormat := expfmt.NewFormat(expfmt.TypeProtoDelim)
	enc := expfmt.NewEncoder(&proto, protoFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			b.Fatal(err)
		}
	}
	for _, f := range []struct {
		name, contentType string
		body              []byte
	}{
		{"text", fakekubelet.TextFormat, text},
		{"protobuf", string(protoFormat), proto.Bytes()},
	} {
		b.Run(f.name, func(b *testing.B) {
			k := fakekubelet.New(b)
			k.SetBody("/metrics", f.contentType, f.body)
			s, err := collectors.NewScraper(buildKubeletLayer(b, kubeletClient(b, k), "kubelet"), collectors.ScraperOptions{Timeout: 10 * time.Second, MaxConcurrency: 2})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := s.Gather(time.Now().Add(10*time.Second), []string{"kubelet"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeMetrics isolates decoding from the network.
func BenchmarkDecodeMetrics(b *testing.B) {
	text := fakekubelet.Payload(b, "k8s-1.37-local_metrics.txt")
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := promfetch.Decode(text, fakekubelet.TextFormat); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPassthroughServesRepairedBody: a kubelet answer with a repeated
// series is served without the repeat, the collector does not fail (its
// path answers 200), and the flaw is logged once however often it comes.
func TestPassthroughServesRepairedBody(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	k.SetBody("/metrics/probes", fakekubelet.TextFormat, []byte(`# TYPE prober_probe_total counter
prober_probe_total{container="a",probe_type="Liveness",result="successful"} 3
prober_probe_total{container="a",probe_type="Liveness",result="successful"} 4
prober_probe_total{container="b",probe_type="Liveness",result="successful"} 5
`))
	logs := &testlog.Buffer{}
	env := collectors.Env{Kubelet: kubeletClient(t, k), Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: time.Now}
	c := buildKubeletLayerEnv(t, env, "probes")[0].Collector.(*kubeletPassthrough)
	for range 3 {
		mfs, err := c.UpdateFamilies(context.Background())
		if err != nil {
			t.Fatalf("UpdateFamilies: %v; want the repaired families and no error", err)
		}
		want := "# TYPE prober_probe_total counter\nprober_probe_total{container=\"a\",probe_type=\"Liveness\",result=\"successful\"} 3\nprober_probe_total{container=\"b\",probe_type=\"Liveness\",result=\"successful\"} 5\n"
		if diff := cmp.Diff(want, withoutScrapeMetrics(t, mfs)); diff != "" {
			t.Errorf("served (-want +got):\n%s", diff)
		}
	}
	if n := strings.Count(logs.String(), "repeated families or series were dropped"); n != 1 {
		t.Errorf("the repair was logged %d times over 3 scrapes; want once:\n%s", n, logs)
	}
}
