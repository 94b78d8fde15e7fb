package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nodeagent/nodeagent/internal/collectortest"
	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/promfetch"
)

// families parses a text exposition into families by name.
func families(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing: %v", err)
	}
	return mfs
}

// TestSourcePathsPassThrough: /metrics/kube-proxy and /metrics/runtime
// serve every family of the fake kube-proxy and containerd with its help,
// type, labels and values, pass the exposition lint, and never reach
// /metrics; /metrics reports them up.
func TestSourcePathsPassThrough(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path, flag, payload string
		fake                func(testing.TB) *fakekubelet.Component
	}{
		{"/metrics/kube-proxy", "--kube-proxy.url", "kube-proxy-1.21.1_metrics.txt", fakekubelet.KubeProxy},
		{"/metrics/runtime", "--runtime.metrics-url", "containerd-1.6.20_metrics.txt", fakekubelet.Containerd},
		{"/metrics/runtime", "--runtime.metrics-url", "crio_metrics.txt", fakekubelet.CRIO},
	} {
		t.Run(tc.payload, func(t *testing.T) {
			t.Parallel()
			fake := tc.fake(t)
			_, addr, _ := runAgent(t, tc.flag+"="+fake.URL)
			waitReady(t, addr)
			code, body := get(t, nil, "http://"+addr+tc.path)
			if code != http.StatusOK {
				t.Fatalf("%d %.300s", code, body)
			}
			// containerd's 2,938 lines take promlint minutes under the race
			// detector; collectors/kubelet lints its families.
			if len(body) < 100_000 {
				lintExposition(t, body)
			}
			want, err := promfetch.Decode(fakekubelet.Payload(t, tc.payload), fakekubelet.TextFormat)
			if err != nil {
				t.Fatal(err)
			}
			got := families(t, body)
			for _, mf := range want {
				if diff := cmp.Diff(string(collectortest.Encode(t, mf)), encodeOrEmpty(t, got[mf.GetName()])); diff != "" {
					t.Errorf("%s (-source +served):\n%s", mf.GetName(), diff)
				}
			}
			if len(want) < 10 {
				t.Errorf("only %d families compared", len(want))
			}
			t.Logf("%d families compared", len(want))
			_, all := get(t, nil, "http://"+addr+"/metrics")
			source := strings.TrimPrefix(tc.path, "/metrics/")
			for _, w := range []string{`nodeagent_scrape_collector_success{collector="` + source + `"} 1`, `nodeagent_passthrough_up{source="` + source + `"} 1`} {
				if !strings.Contains(all, w) {
					t.Errorf("/metrics lacks %s", w)
				}
			}
			// No series of the source reaches /metrics. (Names may: go_*
			// and process_* are nodeagent's own there, and containerd's
			// container_memory_total_active_file_bytes is cAdvisor's too,
			// with other labels; hence a job of its own.)
			for _, mf := range want {
				if n := mf.GetName(); len(mf.GetMetric()) == 0 || strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") {
					continue
				}
				lines := strings.Split(string(collectortest.Encode(t, &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Metric: mf.Metric[:1]})), "\n")
				if sample := lines[2]; strings.Contains(all, "\n"+sample+"\n") {
					t.Errorf("/metrics carries the source's %s", sample)
				}
			}
		})
	}
}

// TestSourceFailuresAre503: a source given on the command line that is
// down, slow, too large or answers garbage makes its path answer a
// plain-text 503 saying which source, which URL and what failed, on time
// and with nothing of an exposition; the other paths answer 200, and
// /metrics and /metrics/nodeagent report the passthrough failed.
func TestSourceFailuresAre503(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	for _, tc := range []struct {
		name   string
		setup  func(*fakekubelet.Component)
		want   string
		reason string
	}{
		{"down", func(c *fakekubelet.Component) { c.Stop() }, "cannot connect: connection refused", "unreachable"},
		{"slow", func(c *fakekubelet.Component) {
			c.Handle(func(_ http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			})
		}, "missed the scrape deadline", "timeout"},
		{"50 MB", func(c *fakekubelet.Component) {
			c.Handle(func(w http.ResponseWriter, _ *http.Request) {
				chunk := bytes.Repeat([]byte("kubeproxy_fake_series{n=\"x\"} 1\n"), 1<<15)
				for range (50 << 20) / len(chunk) {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			})
		}, "response too large (more than 33554432 bytes; raise --kube-proxy.max-body-size", "too_large"},
		{"garbage", func(c *fakekubelet.Component) {
			c.Handle(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", fakekubelet.TextFormat)
				_, _ = w.Write([]byte("# TYPE kubeproxy_sync_proxy_rules_endpoint_changes_total counter\nkubeproxy_sync_proxy_rules_endpoint_changes_total 85\n\x00garbage{\n"))
			})
		}, "the response is not what was asked for", "bad_body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			proxy := fakekubelet.KubeProxy(t)
			runtime := fakekubelet.Containerd(t)
			// The deadline applies to every path's scrape, and under -race
			// with the other packages' tests on two cores a scrape of
			// /metrics/runtime once took over 2s: 5s leaves room, and the
			// slow case still shows that its 503 comes at the deadline.
			timeout := 5 * time.Second
			if tc.name == "50 MB" {
				timeout = 20 * time.Second // 32 MiB are read before the cut, on a loaded machine too
			}
			_, addr, _ := runAgent(t, "--kube-proxy.url="+proxy.URL, "--runtime.metrics-url="+runtime.URL, "--scrape.timeout="+timeout.String())
			waitReady(t, addr)
			tc.setup(proxy)
			start := time.Now()
			resp, err := http.Get("http://" + addr + "/metrics/kube-proxy")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body, took := string(b), time.Since(start)
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
				!strings.Contains(body, "kube-proxy") || !strings.Contains(body, proxy.URL) || !strings.Contains(body, tc.want) || expositionLineRE.MatchString(body) {
				t.Fatalf("%d %s %q; want a plain-text 503 naming kube-proxy, %s and %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, proxy.URL, tc.want)
			}
			if tc.name == "slow" && (took < timeout-time.Second || took > timeout+3*time.Second) {
				t.Errorf("the 503 took %s; the deadline is %s", took, timeout)
			}
			t.Logf("503 after %s: %s", took.Round(time.Millisecond), strings.TrimSpace(body))
			for _, p := range []string{"/metrics/runtime", "/metrics/node", "/metrics"} {
				if code, body := get(t, nil, "http://"+addr+p); code != http.StatusOK {
					t.Errorf("%s: %d %.200s; want 200", p, code, body)
				}
			}
			for _, p := range []string{"/metrics", "/metrics/nodeagent"} {
				_, body := get(t, nil, "http://"+addr+p)
				for _, w := range []string{`nodeagent_scrape_collector_success{collector="kube-proxy"} 0`, `nodeagent_scrape_collector_success{collector="runtime"} 1`, `nodeagent_last_scrape_timestamp_seconds{path="/metrics/kube-proxy"}`} {
					if !strings.Contains(body, w) {
						t.Errorf("%s lacks %s", p, w)
					}
				}
			}
			// The request to kube-proxy is recorded when it returns, which
			// for the slow one is at the collector's own deadline.
			waitUntil(t, func() bool {
				_, all := get(t, nil, "http://"+addr+"/metrics")
				return strings.Contains(all, `nodeagent_passthrough_up{source="kube-proxy"} 0`) && strings.Contains(all, `nodeagent_passthrough_request_errors_total{reason="`+tc.reason+`",source="kube-proxy"} `)
			})
		})
	}
}

// expositionLineRE matches a line of an exposition (the error bodies quote
// the start of what the source sent, but within a line).
var expositionLineRE = regexp.MustCompile(`(?m)^(# TYPE |# HELP |kubeproxy_)`)

// TestKubeProxyCandidate: on a Kubernetes node kube-proxy is passed
// through from its default address; with nothing listening there its path
// answers 404 saying so (not 503), and the collector is not failed.
func TestKubeProxyCandidate(t *testing.T) {
	t.Parallel()
	if c, err := net.DialTimeout("tcp", "127.0.0.1:10249", time.Second); err == nil {
		c.Close()
		t.Skip("something listens on 127.0.0.1:10249, kube-proxy's default address, on this machine")
	}
	k := fakekubelet.New(t)
	_, addr, _ := runAgent(t, kubeletArgs(k)...)
	waitReady(t, addr)
	code, body := get(t, nil, "http://"+addr+"/metrics/kube-proxy")
	if code != http.StatusNotFound || !strings.Contains(body, "kube-proxy not found at its default address http://127.0.0.1:10249/metrics") || !strings.Contains(body, "connection refused") {
		t.Errorf("%d %q; want 404 saying no kube-proxy listens at its default address", code, body)
	}
	_, all := get(t, nil, "http://"+addr+"/metrics")
	if !strings.Contains(all, `nodeagent_scrape_collector_success{collector="kube-proxy"} 1`) || strings.Contains(all, `nodeagent_passthrough_up{source="kube-proxy"}`) {
		t.Errorf("/metrics reports an absent kube-proxy as failed or up/down:\n%s", all)
	}
}

// encodeOrEmpty is the text exposition of mf, or "" for a family that is
// missing.
func encodeOrEmpty(t *testing.T, mf *dto.MetricFamily) string {
	if mf == nil {
		return ""
	}
	return string(collectortest.Encode(t, mf))
}
