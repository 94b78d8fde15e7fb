package main

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// fetchPlain GETs url (plain HTTP, as containerd serves its metrics) and
// parses the text exposition.
func fetchPlain(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return families(t, string(body))
}

// sampleValues are the values of a family's samples, whatever its type.
func sampleValues(mf *dto.MetricFamily) []float64 {
	var out []float64
	for _, m := range mf.GetMetric() {
		switch {
		case m.Counter != nil:
			out = append(out, m.GetCounter().GetValue())
		case m.Gauge != nil:
			out = append(out, m.GetGauge().GetValue())
		case m.Untyped != nil:
			out = append(out, m.GetUntyped().GetValue())
		case m.Histogram != nil:
			out = append(out, float64(m.GetHistogram().GetSampleCount()))
		case m.Summary != nil:
			out = append(out, float64(m.GetSummary().GetSampleCount()))
		}
	}
	return out
}

// TestIntegrationRuntimeMetrics runs the agent against the test cluster's
// containerd, whose metrics the harness turns on at 127.0.0.1:1338 as
// docs/sources.md tells users to: /metrics/runtime passes containerd's own
// containerd_* families through (same type and help, a finite value for
// every sample, series the runtime served itself), and the agent's own
// nodeagent_passthrough_up says so. Pointed at a port where nothing
// listens, the path answers 503 naming the URL, and the node path still
// answers 200: one source down never takes the others with it.
func TestIntegrationRuntimeMetrics(t *testing.T) {
	env := fakekubelet.IntegrationEnv(t)
	url := env["CONTAINERD_METRICS_URL"]
	if url == "" {
		t.Fatalf("%s lacks CONTAINERD_METRICS_URL: restart the cluster with this checkout's test/cluster/cluster.sh (down, up)", "NODEAGENT_INTEGRATION")
	}

	t.Run("containerd", func(t *testing.T) {
		_, addr, _ := runAgent(t, "--runtime.metrics-url="+url)
		waitReady(t, addr)
		before := fetchPlain(t, url)
		code, body := get(t, nil, "http://"+addr+"/metrics/runtime")
		after := fetchPlain(t, url)
		if code != http.StatusOK {
			t.Fatalf("/metrics/runtime: %d %.500s", code, body)
		}
		ours := families(t, body)
		var compared []string
		for name, mf := range ours {
			if !strings.HasPrefix(name, "containerd_") {
				continue
			}
			theirs := after[name]
			if theirs == nil {
				theirs = before[name]
			}
			if theirs == nil {
				t.Errorf("%s served, but containerd's %s did not serve it", name, url)
				continue
			}
			if mf.GetType() != theirs.GetType() || mf.GetHelp() != theirs.GetHelp() {
				t.Errorf("%s: %s %q; containerd says %s %q", name, mf.GetType(), mf.GetHelp(), theirs.GetType(), theirs.GetHelp())
			}
			values := sampleValues(mf)
			if len(values) == 0 {
				t.Errorf("%s has no sample", name)
			}
			for _, v := range values {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("%s has the value %v", name, v)
				}
			}
			// Every series containerd served both times is passed through.
			b, a, o := seriesKeys(before[name]), seriesKeys(after[name]), seriesKeys(mf)
			for k := range a {
				if b[k] && !o[k] {
					t.Errorf("%s{%s}: containerd serves it, /metrics/runtime does not", name, k)
				}
			}
			compared = append(compared, fmt.Sprintf("%s (%d)", name, len(values)))
		}
		for name := range after {
			if _, ok := ours[name]; !ok && strings.HasPrefix(name, "containerd_") {
				if _, was := before[name]; was {
					t.Errorf("containerd's %s is not on /metrics/runtime", name)
				}
			}
		}
		// containerd 1.6 serves a dozen and more of its own families (CRI
		// operations, events, snapshots); a handful means the passthrough
		// lost most of them.
		if len(compared) < 5 {
			t.Errorf("only %d containerd_* families on /metrics/runtime: %v", len(compared), compared)
		}
		sort.Strings(compared)
		t.Logf("%d containerd_* families passed through (samples): %s", len(compared), strings.Join(compared, ", "))

		_, self := get(t, nil, "http://"+addr+"/metrics")
		if w := `nodeagent_passthrough_up{source="runtime"} 1`; !strings.Contains(self, w) {
			t.Errorf("/metrics lacks %s", w)
		}
	})

	t.Run("nothing listens", func(t *testing.T) {
		// A port that was free a moment ago: nothing answers there.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + l.Addr().String() + "/v1/metrics"
		l.Close()
		_, addr, _ := runAgent(t, "--runtime.metrics-url="+dead)
		waitReady(t, addr)
		code, body := get(t, nil, "http://"+addr+"/metrics/runtime")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, dead) {
			t.Errorf("/metrics/runtime with nothing at %s: %d %q; want 503 naming the URL", dead, code, body)
		}
		if code, body := get(t, nil, "http://"+addr+"/metrics/node"); code != http.StatusOK || !strings.Contains(body, "node_cpu_seconds_total") {
			t.Errorf("/metrics/node beside a runtime that is down: %d %.300s", code, body)
		}
		_, self := get(t, nil, "http://"+addr+"/metrics")
		if w := `nodeagent_passthrough_up{source="runtime"} 0`; !strings.Contains(self, w) {
			t.Errorf("/metrics lacks %s", w)
		}
	})
}
