package main

import (
	"fmt"
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

// TestKubeletEndpoints: with a kubelet, /metrics/kubelet, /metrics/probes
// (and /metrics/resource when enabled) serve the kubelet's families and
// pass the exposition lint; nodeagent's kubelet self-metrics are on
// /metrics, and the kubelet's go_* and process_* never reach /metrics.
func TestKubeletEndpoints(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	_, addr, _ := runAgent(t, append(kubeletArgs(k), "--collector.resource")...)
	waitReady(t, addr)
	for path, want := range map[string]string{
		"/metrics/kubelet":  `kubelet_node_name{node="real-kubelet-node"} 1`,
		"/metrics/probes":   `prober_probe_total{container="coredns"`,
		"/metrics/resource": `node_cpu_usage_seconds_total `,
	} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
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
	for _, w := range []string{`nodeagent_kubelet_up{endpoint="/metrics"} 1`, `nodeagent_kubelet_up{endpoint="/pods"} 1`, "nodeagent_kubelet_tls_verified 1"} {
		if !strings.Contains(all, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
	if strings.Contains(all, "kubelet_node_name") {
		t.Error("/metrics carries the kubelet's passthrough")
	}
}

// TestSlowKubeletScrapeStillServed: a kubelet that never answers costs the
// /metrics/kubelet scrape its deadline, not more: the response comes with
// the collector reported failed.
func TestSlowKubeletScrapeStillServed(t *testing.T) {
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
	code, body := get(t, nil, "http://"+addr+"/metrics/kubelet")
	if code != http.StatusOK || !strings.Contains(body, `nodeagent_scrape_collector_success{collector="kubelet"} 0`) {
		t.Fatalf("%d %q; want 200 reporting the kubelet collector failed", code, body)
	}
	// On a loaded machine the deadline can pass before the collector even
	// starts; scrape until the kubelet has been asked once.
	for deadline := time.Now().Add(10 * time.Second); k.Requests("/metrics") == before; {
		if time.Now().After(deadline) {
			t.Fatal("the kubelet collector never asked the kubelet")
		}
		get(t, nil, "http://"+addr+"/metrics/kubelet")
	}
	// The kubelet client records the timeout when its request returns,
	// which on a loaded machine can be just after the scrape was cut.
	var all string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, all = get(t, nil, "http://"+addr+"/metrics")
		if strings.Contains(all, `nodeagent_kubelet_up{endpoint="/metrics"} 0`) && strings.Contains(all, `nodeagent_kubelet_request_errors_total{endpoint="/metrics",reason="timeout"} 1`) {
			return
		}
	}
	t.Errorf("/metrics does not report the timeout:\n%s", all)
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
