package main

import (
	"net/http"
	"strings"
	"testing"

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
	_, err := newAgent(opts, &syncBuffer{})
	if err == nil || !strings.Contains(err.Error(), "--kubelet.client-key-file") || !strings.Contains(err.Error(), "--kubelet.timeout must be positive") {
		t.Errorf("newAgent: %v; want every --kubelet.* problem at once", err)
	}
}
