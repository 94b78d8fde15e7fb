package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// kubeletArgs points the agent at a fake kubelet with its client
// certificate.
func kubeletArgs(k *fakekubelet.Kubelet) []string {
	return []string{
		"--kubelet.url=" + k.URL,
		"--kubelet.ca-file=" + k.CAFile,
		"--kubelet.client-cert-file=" + k.ClientCertFile,
		"--kubelet.client-key-file=" + k.ClientKeyFile,
	}
}

// waitReady waits until /readyz answers 200.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	waitUntil(t, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestNoKubeletTurnsLayerOff: without --kubelet.url, NODE_IP or NODE_NAME
// the kubelet layer is off with one info line, and its paths say why.
func TestNoKubeletTurnsLayerOff(t *testing.T) {
	t.Parallel()
	a, addr, logs := runAgent(t)
	if a.pods != nil {
		t.Error("pod metadata source built without a kubelet")
	}
	waitReady(t, addr)
	for _, p := range kubeletPaths {
		code, body := get(t, nil, "http://"+addr+p)
		if code != http.StatusNotFound || !strings.Contains(body, "neither NODE_IP nor NODE_NAME is set") {
			t.Errorf("%s: %d %q; want 404 saying why the kubelet layer is off", p, code, body)
		}
	}
	if n := strings.Count(logs.String(), "no kubelet"); n != 1 {
		t.Errorf("%d log lines about the missing kubelet; want 1:\n%s", n, logs)
	}
}

// TestPodMetadataBeforeReady: with a kubelet, the agent fetches /pods once
// before it turns ready, so the first collection already has pod names.
func TestPodMetadataBeforeReady(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	a, addr, _ := runAgent(t, kubeletArgs(k)...)
	waitReady(t, addr)
	snap := a.pods.Snapshot()
	if snap == nil || len(snap.Pods) != 24 {
		t.Fatalf("pod metadata when ready: %v; want the fake kubelet's 24 pods", snap)
	}
	if n := k.Requests("/pods"); n != 1 {
		t.Errorf("%d requests to /pods; want 1", n)
	}
}

func TestKubeletFlagErrorsAtStartup(t *testing.T) {
	t.Parallel()
	opts := parseServe(t, append(fixtureArgs, "--kubelet.client-cert-file=x.crt", "--kubelet.timeout=0s")...)
	_, err := newAgent(opts, &testlog.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--kubelet.client-key-file") || !strings.Contains(err.Error(), "--kubelet.timeout must be positive") {
		t.Errorf("newAgent: %v; want every --kubelet.* problem at once", err)
	}
}

// TestKubeletEndpoints: with a kubelet, /metrics/kubelet, /metrics/probes,
// /metrics/slis (and /metrics/resource when enabled) serve the kubelet's
// families and pass the exposition lint; nodeagent's kubelet self-metrics
// and each passthrough's last outcome are on /metrics, and the kubelet's
// go_* and process_* never reach /metrics.
func TestKubeletEndpoints(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	_, addr, _ := runAgent(t, append(kubeletArgs(k), "--collector.resource")...)
	waitReady(t, addr)
	paths := map[string]string{
		"/metrics/kubelet":  `kubelet_node_name{node="real-kubelet-node"} 1`,
		"/metrics/probes":   `prober_probe_total{container="coredns"`,
		"/metrics/resource": `node_cpu_usage_seconds_total `,
		"/metrics/slis":     `kubernetes_healthcheck{name="syncloop",type="healthz"} 1`,
	}
	for path, want := range paths {
		t.Run(path, func(t *testing.T) {
			code, body := get(t, nil, "http://"+addr+path)
			if code != http.StatusOK || !strings.Contains(body, want) {
				t.Fatalf("%d, want 200 with %q:\n%.500s", code, want, body)
			}
			lintExposition(t, body)
			if strings.Contains(body, "nodeagent_build_info") {
				t.Error("nodeagent's self-metrics on a passthrough path")
			}
		})
	}
	_, all := get(t, nil, "http://"+addr+"/metrics")
	want := []string{`nodeagent_kubelet_up{endpoint="/metrics"} 1`, `nodeagent_kubelet_up{endpoint="/metrics/slis"} 1`, `nodeagent_kubelet_up{endpoint="/pods"} 1`, "nodeagent_kubelet_tls_verified 1"}
	for _, c := range []string{"kubelet", "probes", "resource", "slis"} {
		want = append(want, `nodeagent_scrape_collector_success{collector="`+c+`"} 1`)
	}
	for path := range paths {
		want = append(want, `nodeagent_last_scrape_timestamp_seconds{path="`+path+`"}`)
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
	if strings.Contains(all, "kubelet_node_name") {
		t.Error("/metrics carries the kubelet's passthrough")
	}
	lintExposition(t, all)
	t.Logf("%d passthrough paths and %d /metrics series checked", len(paths), len(want))
}

// TestSlowKubeletIs503OnTime: a kubelet that never answers costs the
// /metrics/kubelet scrape its deadline, not more, and the answer is a 503
// naming the kubelet's URL, so that Prometheus' up for job="kubelet" is 0;
// /metrics reports the collector failed, and the kubelet client counts the
// timeout.
func TestSlowKubeletIs503OnTime(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	_, addr, _ := runAgent(t, append(kubeletArgs(k), "--scrape.timeout=300ms")...)
	waitReady(t, addr)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	k.Handle("/metrics", func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	before := k.Requests("/metrics")
	start := time.Now()
	resp, err := http.Get("http://" + addr + "/metrics/kubelet")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "kubelet "+k.URL+"/metrics: ") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || strings.Contains(string(body), "# TYPE") {
		t.Fatalf("%d %s %q; want a plain-text 503 naming the kubelet's URL", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// The deadline is 300ms; the rest is a loaded machine's slack.
	if took > 5*time.Second {
		t.Errorf("the 503 took %s, want about the 300ms deadline", took)
	}
	t.Logf("503 after %s: %s", took.Round(time.Millisecond), body)
	// On a loaded machine the deadline can pass before the collector even
	// starts; scrape until the kubelet has been asked once.
	for deadline := time.Now().Add(10 * time.Second); k.Requests("/metrics") == before; {
		if time.Now().After(deadline) {
			t.Fatal("the kubelet collector never asked the kubelet")
		}
		if code, _ := get(t, nil, "http://"+addr+"/metrics/kubelet"); code != http.StatusServiceUnavailable {
			t.Fatalf("status %d while the kubelet hangs, want 503", code)
		}
	}
	if code, _ := get(t, nil, "http://"+addr+"/metrics/probes"); code != http.StatusOK {
		t.Errorf("/metrics/probes: %d, want 200: only /metrics hangs", code)
	}
	// The kubelet client records the timeout when its request returns,
	// which on a loaded machine can be just after the scrape was cut.
	var all string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, all = get(t, nil, "http://"+addr+"/metrics")
		// Under load the collector may have reached the kubelet in more
		// than one of the scrapes above: one timeout or more.
		if strings.Contains(all, `nodeagent_kubelet_up{endpoint="/metrics"} 0`) && strings.Contains(all, `nodeagent_kubelet_request_errors_total{endpoint="/metrics",reason="timeout"} `) &&
			strings.Contains(all, `nodeagent_scrape_collector_success{collector="kubelet"} 0`) {
			return
		}
	}
	var got []string
	for _, l := range strings.Split(all, "\n") {
		if strings.Contains(l, `endpoint="/metrics"`) || strings.Contains(l, `collector="kubelet"`) {
			got = append(got, l)
		}
	}
	t.Errorf("/metrics does not report the timeout:\n%s", strings.Join(got, "\n"))
}

// TestKubeletDownIs503UntilBack: while the kubelet is stopped every kubelet
// path answers 503 saying what failed, the native paths 200, and /metrics
// and /metrics/nodeagent report the passthroughs failed; once it is back,
// 200 again.
func TestKubeletDownIs503UntilBack(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	_, addr, _ := runAgent(t, kubeletArgs(k)...)
	waitReady(t, addr)
	if code, body := get(t, nil, "http://"+addr+"/metrics/kubelet"); code != http.StatusOK {
		t.Fatalf("before the stop: %d %.300s", code, body)
	}
	k.Stop()
	for _, p := range kubeletPaths {
		code, body := get(t, nil, "http://"+addr+p)
		// The first request may go out on the kept-alive connection the
		// stop cut (closed without answering), later ones are refused.
		if code != http.StatusServiceUnavailable || !strings.Contains(body, k.URL) || !strings.Contains(body, "cannot connect") {
			t.Errorf("%s with the kubelet down: %d %q; want 503 naming its URL", p, code, body)
		}
	}
	for _, p := range []string{"/metrics", "/metrics/node", "/metrics/cadvisor", "/metrics/nodeagent"} {
		code, body := get(t, nil, "http://"+addr+p)
		if code != http.StatusOK {
			t.Errorf("%s with the kubelet down: %d, want 200", p, code)
			continue
		}
		if p == "/metrics" || p == "/metrics/nodeagent" {
			for _, c := range []string{"kubelet", "probes", "slis"} {
				if w := `nodeagent_scrape_collector_success{collector="` + c + `"} 0`; !strings.Contains(body, w) {
					t.Errorf("%s lacks %s", p, w)
				}
			}
		}
	}
	k.Restart()
	waitUntil(t, func() bool {
		code, _ := get(t, nil, "http://"+addr+"/metrics/kubelet")
		return code == http.StatusOK
	})
	code, body := get(t, nil, "http://"+addr+"/metrics/kubelet")
	if code != http.StatusOK || !strings.Contains(body, `kubelet_node_name{node="real-kubelet-node"} 1`) {
		t.Errorf("after the restart: %d %.300s", code, body)
	}
	if _, all := get(t, nil, "http://"+addr+"/metrics"); !strings.Contains(all, `nodeagent_scrape_collector_success{collector="kubelet"} 1`) {
		t.Error("/metrics still reports the kubelet passthrough failed")
	}
}

// TestOldKubeletWithoutSLIs: a kubelet that answers 404 on /metrics/slis
// (before 1.26, or the ComponentSLIs gate off) is up: /metrics/slis answers
// 404 saying so, not 503, and the collector is not reported failed.
func TestOldKubeletWithoutSLIs(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	k.Handle("/metrics/slis", http.NotFound)
	_, addr, _ := runAgent(t, kubeletArgs(k)...)
	waitReady(t, addr)
	code, body := get(t, nil, "http://"+addr+"/metrics/slis")
	if code != http.StatusNotFound || !strings.Contains(body, "this kubelet does not serve /metrics/slis") || !strings.Contains(body, k.URL+"/metrics/slis") {
		t.Errorf("%d %q; want 404 saying the kubelet has no SLI endpoint", code, body)
	}
	if _, all := get(t, nil, "http://"+addr+"/metrics"); !strings.Contains(all, `nodeagent_scrape_collector_success{collector="slis"} 1`) {
		t.Error("/metrics reports the SLI passthrough failed")
	}
}

// TestSecurityChecksBeforeReady: both checks run in the warm-up collection,
// before /readyz turns ready, and scrapes serve the cached results without
// asking the kubelet again.
func TestSecurityChecksBeforeReady(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	k.SetAnonymous([]string{}) // anonymous on, RBAC denies: still a finding
	ro := fakekubelet.ReadOnly(t)
	_, addr, logs := runAgent(t, append(kubeletArgs(k), fmt.Sprintf("--kubelet.readonly-port=%d", ro.Port))...)
	waitReady(t, addr)
	if ro.Requests() != 2 || k.Requests("/healthz") != 1 {
		t.Fatalf("when ready: %d read-only requests, %d anonymous; want 2 (/healthz, /pods) and 1", ro.Requests(), k.Requests("/healthz"))
	}
	for range 3 {
		_, all := get(t, nil, "http://"+addr+"/metrics")
		for _, w := range []string{"nodeagent_kubelet_readonly_port_open 1", `nodeagent_kubelet_readonly_port_state{state="open"} 1`, "nodeagent_kubelet_anonymous_auth_enabled 1"} {
			if !strings.Contains(all, w) {
				t.Errorf("/metrics lacks %q", w)
			}
		}
	}
	if ro.Requests() != 2 || k.Requests("/healthz") != 1 {
		t.Errorf("scrapes re-ran the checks: %d read-only requests, %d anonymous", ro.Requests(), k.Requests("/healthz"))
	}
	for _, w := range []string{"readOnlyPort: 0", "authentication.anonymous.enabled: false"} {
		if strings.Count(logs.String(), w) != 1 {
			t.Errorf("log does not name %q once:\n%s", w, logs)
		}
	}
}
