package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/fakeapiserver"
	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/kubeapi"
)

// TestHealthyCluster: every check of a healthy node and cluster is ok,
// and the exit code is 0.
func TestHealthyCluster(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	r, _ := c.run()
	if len(r.Checks) != len(allChecks()) {
		t.Fatalf("%d results for %d checks", len(r.Checks), len(allChecks()))
	}
	for _, res := range r.Checks {
		if res.Verdict != OK {
			t.Errorf("%s: %s %q (fix %q), want ok", res.ID, res.Verdict, res.Detail, res.Fix)
		}
	}
	if r.ExitCode() != 0 {
		t.Errorf("exit code %d, want 0", r.ExitCode())
	}
	t.Logf("%d checks ok:\n%s", len(r.Checks), describe(r))
}

// want is what a test expects of one check.
type want struct {
	verdict     Verdict
	detail, fix string // substrings
	detailNot   string
}

func expect(t *testing.T, r *Report, byID map[string]Result, wants map[string]want) {
	t.Helper()
	if len(wants) == 0 {
		t.Fatal("no expectation")
	}
	for id, w := range wants {
		res, ok := byID[id]
		switch {
		case !ok:
			t.Errorf("%s: no result", id)
		case res.Verdict != w.verdict:
			t.Errorf("%s: %s %q, want %s", id, res.Verdict, res.Detail, w.verdict)
		case !strings.Contains(res.Detail, w.detail):
			t.Errorf("%s: detail %q, want it to contain %q", id, res.Detail, w.detail)
		case !strings.Contains(res.Fix, w.fix):
			t.Errorf("%s: fix %q, want it to contain %q", id, res.Fix, w.fix)
		case w.detailNot != "" && strings.Contains(res.Detail, w.detailNot):
			t.Errorf("%s: detail %q contains %q", id, res.Detail, w.detailNot)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", describe(r))
	}
}

// TestMetricsServer: the APIService missing, or registered and not
// Available for each of the aggregator's reasons, fails with the fix;
// the node check then defers to it. Its node without metrics fails too.
func TestMetricsServer(t *testing.T) {
	t.Parallel()
	unavailable := func(reason, msg string) func(c *cluster) {
		return func(c *cluster) {
			c.api.SetAPIService(fakeapiserver.APIService{Name: metricsAPIService, ServiceNamespace: "kube-system", ServiceName: "metrics-server", Reason: reason, Message: msg})
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(c *cluster)
		wants map[string]want
	}{
		{"missing", func(c *cluster) { c.api.DeleteAPIService(metricsAPIService) }, map[string]want{
			"metrics-server.apiservice": {verdict: Fail, detail: "the APIService v1beta1.metrics.k8s.io is missing: metrics-server is not installed", fix: "install metrics-server"},
			"metrics-server.node":       {verdict: Skipped, detail: "see metrics-server.apiservice"},
		}},
		{"no endpoints", unavailable("MissingEndpoints", `endpoints for service/metrics-server in "kube-system" have no addresses with port name "https"`), map[string]want{
			"metrics-server.apiservice": {verdict: Fail, detail: "is not Available: MissingEndpoints: endpoints for service/metrics-server", fix: "metrics-server has no ready pod behind its Service kube-system/metrics-server"},
			"metrics-server.node":       {verdict: Skipped, detail: "not available"},
		}},
		{"discovery check failed", unavailable("FailedDiscoveryCheck", "failing or missing response from https://10.96.0.12:443/apis/metrics.k8s.io/v1beta1: context deadline exceeded"), map[string]want{
			"metrics-server.apiservice": {verdict: Fail, detail: "FailedDiscoveryCheck", fix: "the API server cannot reach metrics-server's Service kube-system/metrics-server"},
		}},
		{"service gone", unavailable("ServiceNotFound", `service/metrics-server in "kube-system" is not present`), map[string]want{
			"metrics-server.apiservice": {verdict: Fail, detail: "ServiceNotFound", fix: "does not exist: reinstall metrics-server"},
		}},
		{"no metrics for the node", func(c *cluster) { c.opts.NodeName = "node-without-metrics" }, map[string]want{
			"metrics-server.apiservice": {verdict: OK},
			"metrics-server.node":       {verdict: Fail, detail: "metrics-server has no metrics for node node-without-metrics", fix: "metrics-server's log"},
		}},
		{"may not read APIServices", func(c *cluster) { c.api.Forbid(fakeapiserver.APIServices, true) }, map[string]want{
			"metrics-server.apiservice": {verdict: Warn, detail: "may not read the APIService", fix: "nodeagent-doctor ClusterRole"},
			// The Metrics API itself still tells.
			"metrics-server.node":     {verdict: OK, detail: "cpu 412m"},
			"metrics-adapters.custom": {verdict: Warn, fix: "nodeagent-doctor"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			tc.setup(c)
			r, byID := c.run()
			expect(t, r, byID, tc.wants)
			if r.ExitCode() != 1 && tc.wants["metrics-server.apiservice"].verdict == Fail {
				t.Errorf("exit code %d with a failed check, want 1", r.ExitCode())
			}
		})
	}
}

// TestKubeletRBAC: RBAC missing nodes/pods is named with the exact rule
// to add, whether the kubelet and RBAC agree or not.
func TestKubeletRBAC(t *testing.T) {
	t.Parallel()
	const podsRule = `{apiGroups: [""], resources: ["nodes/pods"], verbs: ["get"]}`
	metricsOnly := fakeapiserver.ResourceRule{Verb: "get", Resource: "nodes/metrics"}
	for _, tc := range []struct {
		name    string
		kubelet []string // subresources the kubelet allows
		rbac    []fakeapiserver.ResourceRule
		wants   map[string]want
	}{
		{"both deny nodes/pods", []string{fakekubelet.Metrics}, []fakeapiserver.ResourceRule{metricsOnly}, map[string]want{
			"kubelet.rbac.metrics": {verdict: OK, detail: "RBAC allows it"},
			"kubelet.rbac.pods": {verdict: Fail, detail: "the kubelet denies system:serviceaccount:nodeagent:nodeagent get nodes/pods",
				fix: "add the rule " + podsRule + " to the ClusterRole bound to system:serviceaccount:nodeagent:nodeagent"},
			"containers.pods": {verdict: Skipped, detail: "see kubelet.rbac.pods"},
		}},
		{"RBAC grants, the kubelet denies", []string{fakekubelet.Metrics}, nil, map[string]want{
			"kubelet.rbac.pods": {verdict: Fail, detail: "RBAC allows system:serviceaccount:nodeagent:nodeagent get nodes/pods, but the kubelet denies it", fix: "authorization.mode: Webhook"},
		}},
		{"the kubelet allows, RBAC does not", []string{fakekubelet.Metrics, fakekubelet.Pods}, []fakeapiserver.ResourceRule{metricsOnly}, map[string]want{
			"kubelet.rbac.pods": {verdict: Warn, detail: "but RBAC does not grant it", fix: podsRule},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			c.kubelet.SetToken(c.api.ClientToken, fakekubelet.Identity{User: c.api.ClientUser, Allowed: tc.kubelet})
			if tc.rbac != nil {
				c.api.Revoke(c.api.ClientUser)
				c.api.AllowResource(c.api.ClientUser, tc.rbac...)
			}
			r, byID := c.run()
			expect(t, r, byID, tc.wants)
		})
	}
}

func writeFileBytes(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestKubeletCredentialIdentity: the SelfSubjectAccessReview speaks for
// the kubelet's token, not for --kubeconfig's identity, when they differ.
func TestKubeletCredentialIdentity(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	const other = "system:serviceaccount:monitoring:other"
	c.api.AddToken("other-token", fakeapiserver.User{Name: other, Groups: []string{"system:authenticated"}})
	c.kubelet.SetToken("other-token", fakekubelet.Identity{User: other, Allowed: []string{fakekubelet.Metrics}})
	writeFileBytes(t, c.opts.Kubelet.TokenFile, "other-token")
	r, byID := c.run()
	expect(t, r, byID, map[string]want{
		"kubelet.auth":         {verdict: OK},
		"kubelet.rbac.metrics": {verdict: Warn, detail: "the kubelet allows " + other + " get nodes/metrics"},
		"kubelet.rbac.pods":    {verdict: Fail, detail: "the kubelet denies " + other + " get nodes/pods", fix: "bound to " + other},
		"api.access":           {verdict: OK, detail: "doctor is system:serviceaccount:nodeagent:nodeagent"},
	})
}

// TestKubeletLayer: TLS, credentials and the security probes.
func TestKubeletLayer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, c *cluster)
		wants map[string]want
	}{
		{"read-only port open", func(t *testing.T, c *cluster) { c.opts.Kubelet.ReadOnlyPort = fakekubelet.ReadOnly(t).Port }, map[string]want{
			"kubelet.readonly-port": {verdict: Fail, detail: "read-only port", fix: "readOnlyPort: 0"},
		}},
		{"anonymous auth on", func(_ *testing.T, c *cluster) { c.kubelet.SetAnonymous([]string{}) }, map[string]want{
			"kubelet.anonymous-auth": {verdict: Fail, detail: "system:anonymous", fix: "authentication.anonymous.enabled: false"},
		}},
		{"token rejected", func(t *testing.T, c *cluster) { c.kubelet.RevokeToken(c.api.ClientToken) }, map[string]want{
			"kubelet.reachable": {verdict: OK},
			"kubelet.auth":      {verdict: Fail, detail: "HTTP 401", fix: "authentication.webhook.enabled: true"},
		}},
		{"unknown CA", func(_ *testing.T, c *cluster) { c.opts.Kubelet.CAFile = c.api.CAFile }, map[string]want{
			"kubelet.tls":       {verdict: Fail, detail: "not signed by a CA in", fix: "--kubelet.ca-file"},
			"kubelet.auth":      {verdict: Skipped},
			"kubelet.rbac.pods": {verdict: Skipped},
		}},
		{"address not in the certificate", func(t *testing.T, c *cluster) {
			ca := fakekubelet.NewCA(t, "kubelet-ca")
			cert, key := ca.Issue(t, "node-1", x509.ExtKeyUsageServerAuth, "node-1.example")
			pair, err := tls.X509KeyPair(cert, key)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(http.NotFoundHandler())
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
			srv.StartTLS()
			t.Cleanup(srv.Close)
			c.opts.Kubelet.URL = srv.URL
			c.opts.Kubelet.CAFile = fakekubelet.WriteFile(t, t.TempDir(), "ca.crt", ca.PEM)
		}, map[string]want{
			"kubelet.tls": {verdict: Fail, detail: `valid for node-1.example, not for "127.0.0.1"`, fix: "a name or address in the kubelet's serving certificate"},
		}},
		{"insecure-skip-verify", func(_ *testing.T, c *cluster) {
			c.opts.Kubelet.CAFile, c.opts.Kubelet.InsecureSkipVerify = "", true
		}, map[string]want{
			"kubelet.tls": {verdict: Warn, fix: "--kubelet.ca-file"},
		}},
		{"no kubelet configured", func(_ *testing.T, c *cluster) { c.opts.Kubelet.URL = "" }, map[string]want{
			"kubelet.reachable": {verdict: Skipped, detail: "NODE_IP"},
			"kubelet.tls":       {verdict: Skipped, detail: "see kubelet.reachable"},
			"containers.pods":   {verdict: Skipped},
		}},
		{"kubelet down", func(_ *testing.T, c *cluster) { c.kubelet.Stop() }, map[string]want{
			"kubelet.reachable":     {verdict: Fail, detail: "connection refused", fix: "check that the kubelet runs"},
			"kubelet.tls":           {verdict: Skipped},
			"kubelet.readonly-port": {verdict: OK},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			tc.setup(t, c)
			r, byID := c.run()
			expect(t, r, byID, tc.wants)
		})
	}
}

// TestNoAPIAccess: without a kubeconfig outside a pod, every cluster check
// is skipped with the reason, and the node's checks still run.
func TestNoAPIAccess(t *testing.T) {
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		t.Skip("running in a pod: the in-cluster configuration exists")
	}
	t.Parallel()
	c := newCluster(t)
	c.opts.KubeAPI = kubeapi.Options{}
	r, byID := c.run()
	wants := map[string]want{
		"api.access":            {verdict: Skipped, detail: "no API access: no --kubeconfig given and not running in a Kubernetes pod"},
		"kubelet.rbac.pods":     {verdict: OK, detail: "no SelfSubjectAccessReview"},
		"kubelet.reachable":     {verdict: OK},
		"host.procfs":           {verdict: OK},
		"containers.pods":       {verdict: OK},
		"prometheus.scraped":    {verdict: OK},
		"kubelet.readonly-port": {verdict: OK},
	}
	for _, id := range []string{"metrics-server.apiservice", "metrics-server.node", "kube-state-metrics.present", "metrics-adapters.custom", "metrics-adapters.external"} {
		wants[id] = want{verdict: Skipped, detail: "no API access: see api.access"}
	}
	expect(t, r, byID, wants)
	if r.ExitCode() != 0 {
		t.Errorf("exit code %d, want 0", r.ExitCode())
	}
}

// TestEverythingDown: a kubelet, an API server, an agent and a Prometheus
// that accept connections and never answer; the run still ends within
// --timeout, each silent layer failing with a timeout.
func TestEverythingDown(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	silent := "127.0.0.1:" + strconv.Itoa(fakekubelet.Silent(t))
	c.opts.Kubelet.URL = "https://" + silent
	c.opts.Kubelet.ReadOnlyPort = fakekubelet.Silent(t)
	c.api.SetDelay(time.Minute)
	c.opts.Agent.URL = "http://" + silent
	c.opts.Prometheus.URL = "http://" + silent
	c.opts.Timeout, c.opts.CheckTimeout = 3*time.Second, time.Second
	start := time.Now()
	r, byID := c.run()
	took := time.Since(start)
	if took > c.opts.Timeout {
		t.Errorf("the run took %s, more than --timeout %s", took, c.opts.Timeout)
	}
	if len(r.Checks) != len(allChecks()) {
		t.Errorf("%d results for %d checks", len(r.Checks), len(allChecks()))
	}
	expect(t, r, byID, map[string]want{
		"kubelet.reachable":     {verdict: Fail, detail: "in time", fix: "a firewall drops the packets"},
		"kubelet.readonly-port": {verdict: Warn, detail: "cannot tell"},
		"api.access":            {verdict: Fail, detail: "does not answer: no answer within 1s"},
		"metrics-server.node":   {verdict: Skipped, detail: "see api.access"},
		"prometheus.scraped":    {verdict: Fail, detail: "no answer within 1s"},
		"prometheus.targets":    {verdict: Fail, detail: "Prometheus did not answer"},
		"host.procfs":           {verdict: OK},
	})
	t.Logf("everything down: %d checks in %s", len(r.Checks), took.Round(time.Millisecond))
}

// TestRunnerDeadline: a check that never returns (a stuck statfs) is
// reported unfinished at its deadline; the others are not held up.
func TestRunnerDeadline(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.opts.CheckTimeout = 200 * time.Millisecond
	d := newDoctor(context.Background(), c.opts, c.opts.CheckTimeout)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	checks := []check{
		{"stuck", LayerHost, func(context.Context, *doctor) outcome { <-block; return okf("never") }},
		{"quick", LayerHost, func(context.Context, *doctor) outcome { return okf("done") }},
	}
	start := time.Now()
	res := d.runChecks(context.Background(), checks, start.Add(10*time.Second))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s for a 200ms check timeout", took)
	}
	if res[0].Verdict != Fail || !strings.Contains(res[0].Detail, "no answer within") || res[1].Verdict != OK {
		t.Errorf("got %+v", res)
	}
}

// TestHost: the host checks on fixture hosts that are a container's own
// view, or lack what the agent needs.
func TestHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, h *hostTree)
		wants map[string]want
	}{
		{"a container's PID namespace", func(t *testing.T, h *hostTree) {
			writeFile(t, h.proc+"/1/cmdline", "/pause\x00")
			writeFile(t, h.proc+"/2/status", "Name:\tnodeagent\n")
		}, map[string]want{"host.procfs": {verdict: Fail, detail: "PID namespace of its own, not the host's (PID 2 is not the kernel's kthreadd; PID 1 is /pause)", fix: "hostPID: true"}}},
		{"another boot", func(t *testing.T, h *hostTree) {
			writeFile(t, h.proc+"/sys/kernel/random/boot_id", "00000000-0000-0000-0000-000000000000\n")
		},
			map[string]want{"host.procfs": {verdict: Fail, detail: "a copy or another machine's"}}},
		{"not a procfs", func(t *testing.T, h *hostTree) { _ = os.RemoveAll(h.proc + "/sys") },
			map[string]want{"host.procfs": {verdict: Fail, detail: "is not a procfs", fix: "--path.procfs=/host/proc"}}},
		{"a pod's sysfs and network", func(t *testing.T, h *hostTree) {
			_ = os.RemoveAll(h.sys + "/class/net/cni0")
			writeFile(t, h.selfProc+"/self/net/dev", netDev([]string{"eth0", "lo"}))
		}, map[string]want{
			"host.sysfs":   {verdict: Fail, detail: "mounted in a network namespace of its own", fix: "--path.sysfs=/host/sys"},
			"host.network": {verdict: Fail, detail: "[eth0 lo]", fix: "hostNetwork: true"},
		}},
		{"veths come and go", func(t *testing.T, h *hostTree) { mkdir(t, h.sys+"/class/net/veth1234") },
			map[string]want{"host.sysfs": {verdict: OK}}},
		{"a container's root", func(t *testing.T, h *hostTree) {
			writeFile(t, h.proc+"/1/mountinfo", "22 1 253:7 / / rw,relatime shared:1 - xfs /dev/mapper/root rw\n")
		}, map[string]want{"host.rootfs": {verdict: Fail, detail: "the host's / is xfs on 253:7", fix: "--path.rootfs=/host/root"}}},
		{"no PSI", func(t *testing.T, h *hostTree) { _ = os.RemoveAll(h.proc + "/pressure") },
			map[string]want{"host.psi": {verdict: Warn, fix: "psi=1"}}},
		{"hybrid cgroups", func(t *testing.T, h *hostTree) {
			// The v2 root lacks memory, io and pids; the v1 memory
			// hierarchy stands beside it.
			writeFile(t, h.cgroup+"/cgroup.controllers", "cpu hugetlb\n")
			writeFile(t, h.dir+"/memory/memory.usage_in_bytes", "4096\n")
		}, map[string]want{
			"host.cgroup": {verdict: Warn, detail: "hybrid cgroup v1/v2 host: the container layer walks the cgroup v2 hierarchy at HOST/cgroup, with memory from the v1 hierarchy at HOST/memory; the families of io, pids and OOM events are absent",
				fix: "systemd.unified_cgroup_hierarchy=1"},
			"containers.cgroups": {verdict: OK},
			"containers.pods":    {verdict: OK},
		}},
		{"hybrid cgroups with pids on v1", func(t *testing.T, h *hostTree) {
			writeFile(t, h.cgroup+"/cgroup.controllers", "cpu hugetlb\n")
			writeFile(t, h.dir+"/memory/memory.usage_in_bytes", "4096\n")
			writeFile(t, h.dir+"/pids/tasks", "1\n")
		}, map[string]want{
			"host.cgroup": {verdict: Warn, detail: "with memory from the v1 hierarchy at HOST/memory, pids from the v1 hierarchy at HOST/pids; the families of io and OOM events are absent"},
		}},
		{"no cgroup v2", func(t *testing.T, h *hostTree) { _ = os.Remove(h.cgroup + "/cgroup.controllers") },
			map[string]want{"host.cgroup": {verdict: Fail, detail: "no cgroup v2", fix: "systemd.unified_cgroup_hierarchy=1"}}},
		{"controllers on v1", func(t *testing.T, h *hostTree) { writeFile(t, h.cgroup+"/cgroup.controllers", "hugetlb\n") },
			map[string]want{"host.cgroup": {verdict: Warn, detail: "lacks the memory, io, pids controllers"}}},
		{"no kubepods on a node", func(t *testing.T, h *hostTree) { _ = os.RemoveAll(h.cgroup + "/kubepods") },
			map[string]want{
				"containers.cgroups": {verdict: Fail, detail: "no kubepods cgroup", fix: "--path.cgroupfs"},
				"containers.pods":    {verdict: Fail, detail: "no pod cgroup"},
			}},
		{"a pod unknown to the kubelet", func(t *testing.T, h *hostTree) {
			mkdir(t, h.cgroup+"/kubepods/besteffort/pod11111111-2222-3333-4444-555555555555/"+strings.Repeat("ab", 32))
		}, map[string]want{"containers.pods": {verdict: Warn, detail: "1 of 25 pod cgroups are not pods of the kubelet's /pods (such as pod 11111111-2222-3333-4444-555555555555)"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			tc.setup(t, c.host)
			for id, w := range tc.wants {
				w.detail = strings.ReplaceAll(w.detail, "HOST", c.host.dir)
				tc.wants[id] = w
			}
			r, byID := c.run()
			expect(t, r, byID, tc.wants)
		})
	}
}

// TestAgentScraped: whether anyone scrapes the agent, from its own
// nodeagent_last_scrape_timestamp_seconds.
func TestAgentScraped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, c *cluster)
		want  want
	}{
		{"scraped", nil, want{verdict: OK, detail: "/metrics/cadvisor 14s ago, /metrics/node 12s ago", detailNot: "/metrics/nodeagent"}},
		{"only doctor's own request", func(_ *testing.T, c *cluster) {
			c.agent.set(func(a *fakeAgent) { a.last = map[string]time.Time{"/metrics/nodeagent": testNow} })
		}, want{verdict: Fail, detail: "nobody has scraped the agent", fix: "add a scrape job"}},
		{"stale", func(_ *testing.T, c *cluster) {
			c.agent.set(func(a *fakeAgent) { a.last = map[string]time.Time{"/metrics": testNow.Add(-2 * time.Hour)} })
		}, want{verdict: Fail, detail: "last scraped 2h0m0s ago (/metrics 2h0m0s ago)"}},
		{"an older agent", func(_ *testing.T, c *cluster) { c.agent.set(func(a *fakeAgent) { a.last = nil }) },
			want{verdict: Skipped, detail: "does not export nodeagent_last_scrape_timestamp_seconds"}},
		{"token refused", func(_ *testing.T, c *cluster) { c.agent.set(func(a *fakeAgent) { a.status = http.StatusUnauthorized }) },
			want{verdict: Warn, fix: "--agent.token-file"}},
		{"RBAC denies", func(_ *testing.T, c *cluster) { c.agent.set(func(a *fakeAgent) { a.status = http.StatusForbidden }) },
			want{verdict: Warn, fix: "nodeagent-doctor ClusterRole"}},
		{"nothing at the derived URL", func(t *testing.T, c *cluster) {
			c.opts.Agent = AgentOptions{URL: "http://127.0.0.1:" + strconv.Itoa(fakekubelet.ClosedPort(t)), Derived: true}
		}, want{verdict: Skipped, detail: "no agent listens at"}},
		{"nothing at the given URL", func(t *testing.T, c *cluster) {
			c.opts.Agent = AgentOptions{URL: "http://127.0.0.1:" + strconv.Itoa(fakekubelet.ClosedPort(t))}
		}, want{verdict: Fail, detail: "connection refused"}},
		{"client certificates required", func(_ *testing.T, c *cluster) { c.opts.Agent.Unreadable = "it requires client certificates" },
			want{verdict: Skipped, detail: "it requires client certificates"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			if tc.setup != nil {
				tc.setup(t, c)
			}
			r, byID := c.run()
			expect(t, r, byID, map[string]want{"prometheus.scraped": tc.want})
		})
	}
}

// TestAgentTLS: a self-signed agent on loopback is read without
// verification, and the token goes over https only.
func TestAgentTLS(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tlsAgent := newFakeAgent(t, true)
	c.opts.Agent.URL = tlsAgent.URL
	_, byID := c.run()
	if res := byID["prometheus.scraped"]; res.Verdict != OK {
		t.Errorf("self-signed agent on loopback: %s %q", res.Verdict, res.Detail)
	}
	want := "Bearer " + c.api.ClientToken
	if len(tlsAgent.tokens) != 1 || tlsAgent.tokens[0] != want {
		t.Errorf("https agent saw Authorization %q, want [%q]", tlsAgent.tokens, want)
	}
	c.opts.Agent.URL = c.agent.URL
	c.run()
	if len(c.agent.tokens) != 1 || c.agent.tokens[0] != "" {
		t.Errorf("http agent saw Authorization %q, want none", c.agent.tokens)
	}
}

// TestPrometheus: this node's targets and the stock jobs.
func TestPrometheus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(p *fakeProm)
		wants map[string]want
	}{
		{"a target down", func(p *fakeProm) { p.up[2]["value"] = "0" }, map[string]want{
			"prometheus.targets": {verdict: Fail, detail: "1 of 4 targets of node node-1 are down (up 0): job=kubelet metrics_path=/metrics/cadvisor instance=node-1", fix: "targets page"},
			"prometheus.jobs":    {verdict: OK},
		}},
		{"no cadvisor job", func(p *fakeProm) { p.up = append(p.up[:2], p.up[3:]...) }, map[string]want{
			"prometheus.jobs": {verdict: Fail, detail: "job=kubelet metrics_path=/metrics/cadvisor (container_* (compute resources dashboards))", fix: "/metrics/cadvisor"},
		}},
		{"no probes job", func(p *fakeProm) { p.up = p.up[:3] }, map[string]want{
			"prometheus.jobs": {verdict: Warn, detail: "metrics_path=/metrics/probes"},
		}},
		{"no target at all", func(p *fakeProm) { p.up = nil }, map[string]want{
			"prometheus.targets": {verdict: Fail, detail: "has no target of node node-1"},
			"prometheus.jobs":    {verdict: Fail, detail: "has no target of node node-1"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			c.prom.mu.Lock()
			tc.setup(c.prom)
			c.prom.mu.Unlock()
			r, byID := c.run()
			expect(t, r, byID, tc.wants)
		})
	}
}

func TestNodeSelector(t *testing.T) {
	t.Parallel()
	d := &doctor{opts: Options{NodeName: "ip-10-0-0-5.ec2.internal", Getenv: func(k string) string {
		if k == "NODE_IP" {
			return "10.0.0.5"
		}
		return ""
	}}}
	want := `up{node="ip-10-0-0-5.ec2.internal"} or up{instance=~"(?:ip-10-0-0-5\\.ec2\\.internal|10\\.0\\.0\\.5)(?::[0-9]+)?"}`
	if got := d.nodeSelector(); got != want {
		t.Errorf("nodeSelector() = %s, want %s", got, want)
	}
}

// TestWhy: each symptom concludes with the first silent layer of its
// chain.
func TestWhy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, symptom, pod string
		setup              func(c *cluster)
		check              string
		verdict            Verdict
		fix                string
	}{
		{"kubectl top without metrics-server", "kubectl-top", "", func(c *cluster) { c.api.DeleteAPIService(metricsAPIService) }, "metrics-server.apiservice", Fail, "install metrics-server"},
		{"kubectl top, healthy", "kubectl-top", "", nil, "", OK, ""},
		{"container graphs without nodes/pods", "container-graphs", "", func(c *cluster) {
			c.kubelet.SetToken(c.api.ClientToken, fakekubelet.Identity{User: c.api.ClientUser, Allowed: []string{fakekubelet.Metrics}})
			c.api.Revoke(c.api.ClientUser)
			c.api.AllowResource(c.api.ClientUser, fakeapiserver.ResourceRule{Verb: "get", Resource: "nodes/metrics"})
		}, "kubelet.rbac.pods", Fail, `resources: ["nodes/pods"]`},
		{"container graphs not scraped", "container-graphs", "", func(c *cluster) {
			c.agent.set(func(a *fakeAgent) { a.last = map[string]time.Time{selfPath: testNow} })
		}, "prometheus.scraped", Fail, "add a scrape job"},
		{"a pod of another node", "pod-missing", "scraper/elsewhere", nil, "pod.on-node", Fail, "kubectl get pod -n scraper elsewhere -o wide"},
		{"a pod whose series are renamed", "pod-missing", "scraper/e2e-statefulset-0", func(c *cluster) {
			c.prom.counts[`count(container_cpu_usage_seconds_total{exported_namespace="scraper",exported_pod="e2e-statefulset-0"})`] = 3
		}, "pod.series", Fail, "honorLabels: true"},
		{"a pod in the dashboards", "pod-missing", "scraper/e2e-statefulset-0", func(c *cluster) {
			c.prom.counts[`count(container_cpu_usage_seconds_total{namespace="scraper",pod="e2e-statefulset-0"})`] = 3
		}, "", OK, ""},
		{"kubelet 403", "kubelet-403", "", func(c *cluster) {
			c.kubelet.SetToken(c.api.ClientToken, fakekubelet.Identity{User: c.api.ClientUser})
			c.api.Revoke(c.api.ClientUser)
		}, "kubelet.rbac.metrics", Fail, `resources: ["nodes/metrics"]`},
		{"kubelet 403 although RBAC allows", "kubelet-403", "", func(c *cluster) {
			c.kubelet.SetToken(c.api.ClientToken, fakekubelet.Identity{User: c.api.ClientUser})
		}, "kubelet.rbac.metrics", Fail, "authorization.mode: Webhook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			if tc.setup != nil {
				c.prom.mu.Lock()
				tc.setup(c)
				c.prom.mu.Unlock()
			}
			c.opts.Symptom, c.opts.Pod = tc.symptom, tc.pod
			r, _ := c.run()
			s := r.Symptom
			if s == nil {
				t.Fatal("no conclusion")
			}
			var chain []string
			for _, res := range r.Checks {
				chain = append(chain, res.ID)
			}
			if strings.Join(chain, " ") != strings.Join(s.Chain, " ") || len(chain) == 0 {
				t.Errorf("ran %v, want the chain %v", chain, s.Chain)
			}
			if s.Check != tc.check || s.Verdict != tc.verdict || !strings.Contains(s.Fix, tc.fix) {
				t.Errorf("concluded %s %s (fix %q), want %s %s (fix containing %q)\n%s", s.Verdict, s.Check, s.Fix, tc.verdict, tc.check, tc.fix, describe(r))
			}
			if want := map[Verdict]int{Fail: 1, OK: 0}[tc.verdict]; r.ExitCode() != want {
				t.Errorf("exit code %d, want %d", r.ExitCode(), want)
			}
		})
	}
}

func TestSymptomUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ symptom, pod string }{
		{"nope", ""},
		{"pod-missing", ""},
		{"pod-missing", "no-namespace"},
		{"pod-missing", "a/b/c"},
		{"kubectl-top", "ns/pod"},
	} {
		_, err := Run(context.Background(), Options{Symptom: tc.symptom, Pod: tc.pod, Timeout: time.Second, CheckTimeout: time.Second})
		if !errors.Is(err, ErrUsage) {
			t.Errorf("symptom %q pod %q: %v, want ErrUsage", tc.symptom, tc.pod, err)
		}
	}
}

// TestKubeStateMetrics: found by its Deployment or Service, not ready,
// missing, or not listable.
func TestKubeStateMetrics(t *testing.T) {
	t.Parallel()
	ksm := map[string]string{"app.kubernetes.io/name": "kube-state-metrics"}
	for _, tc := range []struct {
		name  string
		setup func(c *cluster)
		want  want
	}{
		{"healthy", nil, want{verdict: OK, detail: "Deployment monitoring/kube-state-metrics, 1 of 1 replicas ready, Service monitoring/kube-state-metrics"}},
		{"not ready", func(c *cluster) {
			c.api = newAPIWith(t, c, fakeapiserver.Workload{Namespace: "kube-system", Name: "kube-state-metrics", Labels: ksm, Replicas: 1})
		}, want{verdict: Fail, detail: "kube-system/kube-state-metrics of kube-state-metrics has no ready replica (0 of 1)", fix: "kubectl -n kube-system describe deployment kube-state-metrics"}},
		{"missing", func(c *cluster) { c.api = newAPIWith(t, c) }, want{verdict: Warn, detail: "no Deployment or Service labelled app.kubernetes.io/name=kube-state-metrics", fix: "install kube-state-metrics"}},
		{"Deployments not listable, a Service", func(c *cluster) { c.api.Forbid(fakeapiserver.Deployments, true) }, want{verdict: OK, detail: "has the Service monitoring/kube-state-metrics"}},
		// The nodeagent-doctor ClusterRole as the chart and the kustomize
		// base ship it (no Deployments) and no Service: binding the role is
		// not the fix, it is bound.
		{"Deployments not listable, no Service", func(c *cluster) {
			c.api = newAPIWith(t, c)
			c.api.Forbid(fakeapiserver.Deployments, true)
		}, want{verdict: Warn, detail: "no Service labelled app.kubernetes.io/name=kube-state-metrics in any namespace; Deployments were not looked at", fix: "doctor.rbac.listDeployments"}},
		{"nothing listable", func(c *cluster) {
			c.api.Forbid(fakeapiserver.Deployments, true)
			c.api.Forbid(fakeapiserver.Services, true)
		}, want{verdict: Warn, detail: "may not list Deployments and Services", fix: "nodeagent-doctor"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			if tc.setup != nil {
				tc.setup(c)
			}
			r, byID := c.run()
			expect(t, r, byID, map[string]want{"kube-state-metrics.present": tc.want})
		})
	}
}

// newAPIWith replaces the cluster's API server by one whose only
// Deployments are deps, with the same grants.
func newAPIWith(t *testing.T, c *cluster, deps ...fakeapiserver.Workload) *fakeapiserver.Server {
	t.Helper()
	api := fakeapiserver.New(t)
	api.AllowResource(api.ClientUser, fakeapiserver.ResourceRule{Verb: "get", Resource: "nodes/metrics"}, fakeapiserver.ResourceRule{Verb: "get", Resource: "nodes/pods"})
	for _, d := range deps {
		api.AddDeployment(d)
	}
	c.opts.KubeAPI = kubeapi.Options{Kubeconfig: api.Kubeconfig}
	return api
}
