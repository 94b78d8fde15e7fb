package kubeletclient

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/testlog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/promfetch"
	"github.com/nodeagent/nodeagent/internal/testclock"
)

// waitFor polls cond until it holds; it fails the test after 10 s (a bound
// for a goroutine to run, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func newTestPodSource(t *testing.T, k *fakekubelet.Kubelet) (*PodSource, *testclock.Clock, *testlog.Buffer) {
	t.Helper()
	s, clk, logs, _ := newTestPodSourceReg(t, k)
	return s, clk, logs
}

// newTestPodSourceReg is newTestPodSource with the registry of the
// client's metrics, which count every failed request.
func newTestPodSourceReg(t *testing.T, k *fakekubelet.Kubelet) (*PodSource, *testclock.Clock, *testlog.Buffer, *prometheus.Registry) {
	t.Helper()
	c, reg, _ := newTestClient(t, k, certArgs(k)...)
	clk := testclock.New(time.Unix(1_800_000_000, 0))
	logs := &testlog.Buffer{}
	s := NewPodSource(c, 15*time.Second, clk.Now, slog.New(slog.NewTextHandler(logs, nil)))
	return s, clk, logs, reg
}

// podErrors is how many /pods requests have failed so far.
func podErrors(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "nodeagent_kubelet_request_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == "/pods" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

func TestPodSourceRefreshes(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	s, clk, _ := newTestPodSource(t, k)
	s.WaitFirst(context.Background())
	first := s.Snapshot()
	if first == nil || len(first.Pods) != 24 {
		t.Fatalf("first snapshot %v; want the capture's 24 pods", first)
	}
	// Reads within the interval and misses within the gap cost nothing.
	for range 10 {
		s.Snapshot()
		s.Unknown()
	}
	if n := k.Requests("/pods"); n != 1 {
		t.Fatalf("%d requests to /pods; want 1", n)
	}
	// A miss after the gap refreshes early.
	clk.Advance(unknownGap)
	s.Unknown()
	waitFor(t, "a refresh after a miss", func() bool { return k.Requests("/pods") == 2 && s.Snapshot() != first })
	// A read after the interval refreshes; the stale snapshot is served meanwhile.
	second := s.Snapshot()
	clk.Advance(15 * time.Second)
	if got := s.Snapshot(); got != second {
		t.Error("Snapshot did not return the stale snapshot while refreshing")
	}
	waitFor(t, "a refresh of a stale snapshot", func() bool { return k.Requests("/pods") == 3 && s.Snapshot() != second })
}

func TestPodSourceKeepsLastSnapshotWhileKubeletIsAway(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	s, clk, logs, reg := newTestPodSourceReg(t, k)
	s.WaitFirst(context.Background())
	good := s.Snapshot()
	k.Stop()
	for i := range 4 {
		clk.Advance(15 * time.Second)
		failed := podErrors(t, reg)
		s.Snapshot()
		waitFor(t, "a failed refresh", func() bool { return podErrors(t, reg) > failed })
		if got := s.Snapshot(); got != good {
			t.Fatalf("refresh %d: snapshot replaced while the kubelet is away", i)
		}
	}
	// The first failure may be the cut keep-alive connection; the others
	// are the same refusal, logged once.
	if n := strings.Count(logs.String(), "nothing listens there"); n != 1 {
		t.Errorf("the same failure was logged %d times over several failed refreshes; want once:\n%s", n, logs)
	}
	k.Restart()
	clk.Advance(15 * time.Second)
	s.Snapshot()
	waitFor(t, "the recovery", func() bool { return strings.Contains(logs.String(), "refreshed again") })
}

// TestPodMetadataGivesCadvisorLabels joins the real 1.35 /pods capture with
// the same cluster's /metrics/cadvisor capture: for every container cgroup
// whose container or pod /pods knows, the metadata yields exactly the
// kubelet's namespace, pod, container, image and name labels, for API pods
// and static pods (UID = config hash), and a pod sandbox (a leaf /pods does
// not list) yields container="" in its pod.
func TestPodMetadataGivesCadvisorLabels(t *testing.T) {
	t.Parallel()
	snap, err := DecodePods(fakekubelet.Payload(t, "k8s-1.35_pods.json"))
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := promfetch.Decode(fakekubelet.Payload(t, "k8s-1.35_metrics-cadvisor.txt"), fakekubelet.TextFormat)
	if err != nil {
		t.Fatal(err)
	}
	leaf := regexp.MustCompile(`^/kubepods(?:/burstable|/besteffort)?/pod([^/]+)(?:/([0-9a-f]{64}))?$`)
	static := regexp.MustCompile(`^[0-9a-f]{32}$`)
	var containers, sandboxes, pods, staticPods int
	for _, mf := range mfs {
		if mf.GetName() != "container_cpu_usage_seconds_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			g := leaf.FindStringSubmatch(l["id"])
			if g == nil {
				continue
			}
			uid, cid := g[1], g[2]
			pod, known := snap.Pods[uid]
			if !known {
				continue // the captures were not taken at the same instant
			}
			want := map[string]string{"namespace": pod.Namespace, "pod": pod.Name, "container": "", "image": "", "name": ""}
			switch c, ok := snap.Containers[cid]; {
			case cid == "":
				pods++
				if static.MatchString(uid) {
					staticPods++
				}
			case ok:
				containers++
				want = map[string]string{"namespace": pod.Namespace, "pod": pod.Name, "container": c.Name, "image": c.Image, "name": cid}
				if c.PodUID != uid {
					t.Errorf("container %s: pod UID %s, cgroup says %s", cid, c.PodUID, uid)
				}
			default: // the sandbox: its pause image is not in /pods
				sandboxes++
				want["name"], want["image"] = cid, l["image"]
			}
			for k, v := range want {
				if l[k] != v {
					t.Errorf("%s: label %s=%q, metadata gives %q", l["id"], k, l[k], v)
				}
			}
		}
	}
	t.Logf("matched %d containers, %d sandboxes, %d pod cgroups (%d static)", containers, sandboxes, pods, staticPods)
	if containers < 16 || sandboxes < 16 || staticPods < 4 {
		t.Errorf("matched %d containers, %d sandboxes, %d static pods; the captures share at least 16, 16 and 4", containers, sandboxes, staticPods)
	}
}
