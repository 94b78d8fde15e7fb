package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/internal/fakeapiserver"
	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/kubeapi"
	"github.com/nodeagent/nodeagent/internal/podmeta"
	"github.com/nodeagent/nodeagent/kubeletclient"
)

// testNow is the fake clock of every test run.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	testNode   = "node-1"
	testBootID = "5c0ffee0-1111-2222-3333-444455556666"
)

// hostDevices are the host's network devices in the fixture.
var hostDevices = []string{"cni0", "eth0", "lo"}

// hostTree is a fixture host: procfs, sysfs, root filesystem and cgroup
// v2 tree of a Kubernetes node, plus the "own" procfs of the process
// running doctor, in one temporary directory.
type hostTree struct {
	dir                               string
	proc, sys, root, cgroup, selfProc string
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func netDev(names []string) string {
	var b strings.Builder
	b.WriteString("Inter-|   Receive                                                |  Transmit\n")
	b.WriteString(" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")
	for _, n := range names {
		fmt.Fprintf(&b, "%6s: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n", n)
	}
	return b.String()
}

// newHostTree writes a host whose every check is ok, with the cgroups of
// the pods in snap (a pod cgroup, its containers and a sandbox each).
func newHostTree(t *testing.T, snap *podmeta.Snapshot) *hostTree {
	t.Helper()
	dir := t.TempDir()
	h := &hostTree{dir: dir, proc: dir + "/proc", sys: dir + "/sys", root: dir + "/root", cgroup: dir + "/cgroup", selfProc: dir + "/self-proc"}
	writeFile(t, h.proc+"/sys/kernel/random/boot_id", testBootID+"\n")
	writeFile(t, h.selfProc+"/sys/kernel/random/boot_id", testBootID+"\n")
	writeFile(t, h.proc+"/1/cmdline", "/sbin/init\x00splash\x00")
	writeFile(t, h.proc+"/2/status", "Name:\tkthreadd\nUmask:\t0000\nState:\tS (sleeping)\nTgid:\t2\nPid:\t2\nPPid:\t0\n")
	writeFile(t, h.proc+"/1/net/dev", netDev(hostDevices))
	writeFile(t, h.selfProc+"/self/net/dev", netDev(hostDevices))
	for _, r := range []string{"cpu", "memory", "io"} {
		writeFile(t, h.proc+"/pressure/"+r, "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n")
	}
	for _, n := range hostDevices {
		mkdir(t, h.sys+"/class/net/"+n)
	}
	mkdir(t, h.root+"/etc")
	var st unix.Stat_t
	if err := unix.Stat(h.root, &st); err != nil {
		t.Fatal(err)
	}
	writeFile(t, h.proc+"/1/mountinfo", fmt.Sprintf("22 1 %d:%d / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n", unix.Major(st.Dev), unix.Minor(st.Dev)))
	writeFile(t, h.cgroup+"/cgroup.controllers", "cpuset cpu io memory hugetlb pids\n")
	mkdir(t, h.cgroup+"/system.slice/containerd.service")
	if snap != nil {
		for uid := range snap.Pods {
			pod := h.cgroup + "/kubepods/burstable/pod" + uid
			mkdir(t, pod)
			for id, c := range snap.Containers {
				if c.PodUID == uid {
					mkdir(t, pod+"/"+id)
				}
			}
			mkdir(t, pod+"/"+strings.Repeat("0", 32)+strings.ReplaceAll(uid, "-", "")[:32]) // the sandbox
		}
	}
	return h
}

// fakeAgent serves the running agent's /metrics/nodeagent.
type fakeAgent struct {
	*httptest.Server
	mu     sync.Mutex
	last   map[string]time.Time // path → last scrape; nil: no such metric
	status int
	tokens []string // Authorization headers seen
}

func newFakeAgent(t *testing.T, tls bool) *fakeAgent {
	a := &fakeAgent{last: map[string]time.Time{
		"/metrics/node":      testNow.Add(-12 * time.Second),
		"/metrics/cadvisor":  testNow.Add(-14 * time.Second),
		"/metrics/nodeagent": testNow, // doctor's own request
	}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.tokens = append(a.tokens, r.Header.Get("Authorization"))
		if r.URL.Path != selfPath {
			http.NotFound(w, r)
			return
		}
		if a.status != 0 {
			http.Error(w, "refused", a.status)
			return
		}
		fmt.Fprintln(w, "# TYPE nodeagent_build_info gauge\nnodeagent_build_info{version=\"test\"} 1")
		if a.last != nil {
			fmt.Fprintln(w, "# TYPE "+lastScrapeMetric+" gauge")
			for _, p := range slices.Sorted(maps.Keys(a.last)) {
				fmt.Fprintf(w, "%s{path=%q} %.3f\n", lastScrapeMetric, p, float64(a.last[p].UnixMilli())/1000)
			}
		}
	})
	if tls {
		a.Server = httptest.NewTLSServer(h)
	} else {
		a.Server = httptest.NewServer(h)
	}
	t.Cleanup(a.Close)
	return a
}

func (a *fakeAgent) set(f func(a *fakeAgent)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a)
}

// fakeProm answers Prometheus' /api/v1/query: the up series given for
// the node selector, and counts for other queries.
type fakeProm struct {
	*httptest.Server
	mu      sync.Mutex
	up      []map[string]string // labels, with "value"
	counts  map[string]float64  // query → count()
	queries []string
}

func newFakeProm(t *testing.T) *fakeProm {
	p := &fakeProm{counts: map[string]float64{}}
	for _, j := range []struct{ job, path string }{
		{"node-exporter", ""}, {"kubelet", "/metrics"}, {"kubelet", "/metrics/cadvisor"}, {"kubelet", "/metrics/probes"},
	} {
		l := map[string]string{"job": j.job, "instance": testNode, "node": testNode, "value": "1"}
		if j.path != "" {
			l["metrics_path"] = j.path
		}
		p.up = append(p.up, l)
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.URL.Path != "/api/v1/query" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		q := r.Form.Get("query")
		p.mu.Lock()
		defer p.mu.Unlock()
		p.queries = append(p.queries, q)
		type sample struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		result := []sample{}
		if strings.HasPrefix(q, "up{") {
			for _, l := range p.up {
				m := maps.Clone(l)
				v := m["value"]
				delete(m, "value")
				m["__name__"] = "up"
				result = append(result, sample{Metric: m, Value: [2]any{float64(testNow.Unix()), v}})
			}
		} else if n, ok := p.counts[q]; ok {
			result = append(result, sample{Metric: map[string]string{}, Value: [2]any{float64(testNow.Unix()), fmt.Sprint(n)}})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
	}))
	t.Cleanup(p.Close)
	return p
}

// cluster is a healthy node and cluster: fixture host, fake kubelet, fake
// API server with metrics-server and kube-state-metrics, the agent
// scraped, Prometheus with every stock job up.
type cluster struct {
	t       *testing.T
	host    *hostTree
	snap    *podmeta.Snapshot
	kubelet *fakekubelet.Kubelet
	api     *fakeapiserver.Server
	agent   *fakeAgent
	prom    *fakeProm
	opts    Options
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	snap, err := kubeletclient.DecodePods(fakekubelet.Payload(t, "k8s-1.35_pods.json"))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, snap: snap, host: newHostTree(t, snap)}
	c.api = fakeapiserver.New(t)
	c.api.AllowResource(c.api.ClientUser,
		fakeapiserver.ResourceRule{Verb: "get", Group: "", Resource: "nodes/metrics"},
		fakeapiserver.ResourceRule{Verb: "get", Group: "", Resource: "nodes/pods"})
	c.api.SetAPIService(fakeapiserver.APIService{Name: metricsAPIService, ServiceNamespace: "kube-system", ServiceName: "metrics-server", Available: true, Reason: "Passed", Message: "all checks passed"})
	c.api.SetNodeMetrics(testNode, "412m", "2930724Ki")
	ksm := map[string]string{"app.kubernetes.io/name": "kube-state-metrics"}
	c.api.AddDeployment(fakeapiserver.Workload{Namespace: "monitoring", Name: "kube-state-metrics", Labels: ksm, Replicas: 1, Ready: 1})
	c.api.AddService(fakeapiserver.Workload{Namespace: "monitoring", Name: "kube-state-metrics", Labels: ksm})

	c.kubelet = fakekubelet.New(t)
	// In a pod the agent's one service-account token is both the
	// kubelet's credential and the API client's.
	c.kubelet.SetToken(c.api.ClientToken, fakekubelet.Identity{User: c.api.ClientUser, Allowed: []string{fakekubelet.Metrics, fakekubelet.Pods}})
	tokenFile := fakekubelet.WriteFile(t, c.host.dir, "token", []byte(c.api.ClientToken))

	c.agent = newFakeAgent(t, false)
	c.prom = newFakeProm(t)
	c.opts = Options{
		ProcFS: c.host.proc, SysFS: c.host.sys, RootFS: c.host.root, CgroupFS: c.host.cgroup, SelfProc: c.host.selfProc,
		Kubelet: kubeletclient.Config{
			URL: c.kubelet.URL, TokenFile: tokenFile, CAFile: c.kubelet.CAFile,
			ReadOnlyPort: fakekubelet.ClosedPort(t), ReadOnlyPortTimeout: 2 * time.Second,
			Timeout: 10 * time.Second, MaxBodySize: 32 << 20,
		},
		KubeAPI:      kubeapi.Options{Kubeconfig: c.api.Kubeconfig},
		Getenv:       func(string) string { return "" },
		NodeName:     testNode,
		Agent:        AgentOptions{URL: c.agent.URL, TokenFile: tokenFile},
		Prometheus:   PrometheusOptions{URL: c.prom.URL},
		Timeout:      10 * time.Second,
		CheckTimeout: 5 * time.Second,
		Now:          func() time.Time { return testNow },
	}
	return c
}

// run runs doctor and returns the report and the results by check id.
func (c *cluster) run() (*Report, map[string]Result) {
	c.t.Helper()
	r, err := Run(context.Background(), c.opts)
	if err != nil {
		c.t.Fatalf("Run: %v", err)
	}
	byID := map[string]Result{}
	for _, res := range r.Checks {
		byID[res.ID] = res
	}
	return r, byID
}

// describe prints every result, for failure messages.
func describe(r *Report) string {
	var b strings.Builder
	_ = r.WriteTable(&b)
	return b.String()
}
