package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/testlog"

	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// directFetch GETs path from the real kubelet with the client certificate,
// in the text format, and parses it.
func directFetch(t *testing.T, env map[string]string, path string) map[string]*dto.MetricFamily {
	t.Helper()
	ca, err := os.ReadFile(env["KUBELET_CA"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	pair, err := tls.LoadX509KeyPair(env["KUBELET_CLIENT_CERT"], env["KUBELET_CLIENT_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}}
	resp, err := c.Get(env["KUBELET_URL"] + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return families(t, string(body))
}

// seriesKeys are a family's series as name{labels}.
func seriesKeys(mf *dto.MetricFamily) map[string]bool {
	out := map[string]bool{}
	for k := range seriesValues(mf) {
		out[k] = true
	}
	return out
}

// seriesValues is each series' value (gauge, counter or untyped) by its
// seriesKeys key.
func seriesValues(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		var ls []string
		for _, lp := range m.GetLabel() {
			ls = append(ls, lp.GetName()+"="+lp.GetValue())
		}
		sort.Strings(ls)
		out[strings.Join(ls, ",")] = m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
	}
	return out
}

// limitFamilies are the container families whose values are the limits
// the kubelet set on the pods' cgroups: equal on both sides, to the unit.
var limitFamilies = []string{"container_spec_cpu_period", "container_spec_cpu_quota", "container_spec_cpu_shares",
	"container_spec_memory_limit_bytes", "container_spec_memory_swap_limit_bytes", "container_threads_max"}

// TestIntegrationPassthrough runs the agent against the real kubelet:
// /metrics/kubelet carries the same families (names, types, help) as a
// direct fetch of the kubelet's /metrics, every series it serves is one the
// kubelet served just before or after, and every series the kubelet served
// both times is there; pod metadata names the three static pods; the
// security checks report the tool's secure settings.
func TestIntegrationPassthrough(t *testing.T) {
	env := fakekubelet.RealEnv(t)
	modes := map[string][]string{
		"client certificate": {"--kubelet.client-cert-file=" + env["KUBELET_CLIENT_CERT"], "--kubelet.client-key-file=" + env["KUBELET_CLIENT_KEY"]},
	}
	if env["KUBELET_TOKEN_FILE"] != "" { // with kube-apiserver: TokenReview and SubjectAccessReview
		modes["service-account token"] = []string{"--kubelet.token-file=" + env["KUBELET_TOKEN_FILE"]}
	}
	for mode, args := range modes {
		t.Run(mode, func(t *testing.T) {
			testPassthroughAgainst(t, env, append([]string{"--kubelet.url=" + env["KUBELET_URL"], "--kubelet.ca-file=" + env["KUBELET_CA"]}, args...))
		})
	}
}

func testPassthroughAgainst(t *testing.T, env map[string]string, args []string) {
	a, addr, _ := runAgent(t, args...)
	waitReady(t, addr)

	before := directFetch(t, env, "/metrics")
	code, body := get(t, nil, "http://"+addr+"/metrics/kubelet")
	after := directFetch(t, env, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics/kubelet: %d %s", code, body)
	}
	lintExposition(t, body)
	ours := families(t, body)
	if !strings.Contains(body, `kubelet_node_name{node="`+env["KUBELET_NODE_NAME"]+`"} 1`) {
		t.Error("kubelet_node_name missing")
	}
	for name, mf := range after {
		got, ok := ours[name]
		if !ok {
			if _, was := before[name]; was {
				t.Errorf("family %s missing", name)
			}
			continue
		}
		if got.GetType() != mf.GetType() || got.GetHelp() != mf.GetHelp() {
			t.Errorf("family %s: type %s help %q; the kubelet says %s %q", name, got.GetType(), got.GetHelp(), mf.GetType(), mf.GetHelp())
		}
		b, a2, o := seriesKeys(before[name]), seriesKeys(mf), seriesKeys(got)
		for k := range o {
			if !b[k] && !a2[k] {
				t.Errorf("%s{%s} served but not the kubelet's", name, k)
			}
		}
		for k := range a2 {
			if b[k] && !o[k] {
				t.Errorf("%s{%s} missing", name, k)
			}
		}
	}
	for name := range ours {
		if _, ok := after[name]; !ok && !strings.HasPrefix(name, "nodeagent_scrape_") {
			if _, was := before[name]; !was {
				t.Errorf("family %s served but not the kubelet's", name)
			}
		}
	}
	t.Logf("/metrics/kubelet: %d families, the kubelet's /metrics %d", len(ours), len(after))

	if code, _ := get(t, nil, "http://"+addr+"/metrics/probes"); code != http.StatusOK {
		t.Errorf("/metrics/probes: %d", code)
	}
	snap := a.pods.Snapshot()
	var static []string
	for _, p := range snap.Pods {
		if p.Namespace == "default" && strings.HasSuffix(p.Name, "-"+env["KUBELET_NODE_NAME"]) {
			static = append(static, p.Name)
		}
	}
	if len(static) != 3 {
		t.Errorf("pod metadata has static pods %v; want burstable, guaranteed, besteffort", static)
	}
	_, all := get(t, nil, "http://"+addr+"/metrics")
	for _, w := range []string{
		"nodeagent_kubelet_readonly_port_open 0", "nodeagent_kubelet_anonymous_auth_enabled 0",
		`nodeagent_kubelet_up{endpoint="/pods"} 1`, `nodeagent_kubelet_up{endpoint="/metrics"} 1`, "nodeagent_kubelet_tls_verified 1",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
}

// overrideArgs returns base with each flag of overrides replacing the flag
// of the same name (kingpin refuses a repeated flag).
func overrideArgs(base []string, overrides ...string) []string {
	name := func(a string) string { n, _, _ := strings.Cut(a, "="); return n }
	var out []string
	for _, b := range base {
		replaced := false
		for _, o := range overrides {
			if name(o) == name(b) {
				replaced = true
			}
		}
		if !replaced {
			out = append(out, b)
		}
	}
	return append(out, overrides...)
}

// TestIntegrationCadvisorLabels runs the agent over this machine's real
// cgroup2 hierarchy, where the real kubelet's pods live, with pod metadata
// from the real kubelet: for every container_* family that both serve, the
// label sets of the pod cgroups (id, name, container, image, namespace,
// pod, and cpu/interface/… where present) equal the kubelet's own
// /metrics/cadvisor. On this hybrid host the kubelet reads cgroup v1 and
// nodeagent the v2 hierarchy with what it lacks from v1, so only the
// limits' values (limitFamilies) are compared; families neither hierarchy
// gives nodeagent here are skipped.
func TestIntegrationCadvisorLabels(t *testing.T) {
	env := fakekubelet.RealEnv(t)
	if _, err := os.Stat("/sys/fs/cgroup/unified/kubepods"); err != nil {
		t.Skipf("no kubepods under the cgroup2 hierarchy: %v", err)
	}
	args := overrideArgs(fixtureArgs,
		"--path.cgroupfs=/sys/fs/cgroup/unified", "--path.procfs=/proc", "--path.sysfs=/sys",
		"--kubelet.url="+env["KUBELET_URL"], "--kubelet.ca-file="+env["KUBELET_CA"],
		"--kubelet.client-cert-file="+env["KUBELET_CLIENT_CERT"], "--kubelet.client-key-file="+env["KUBELET_CLIENT_KEY"],
		"--kubelet.token-file=",
		// The tool imports its pause image under this name.
		"--collector.cadvisor.sandbox-image=registry.k8s.io/pause:3.10")
	opts := parseServe(t, args...)
	a, err := newAgent(opts, &testlog.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, []net.Listener{l}) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := l.Addr().String()
	waitReady(t, addr)

	kubepods := func(mf *dto.MetricFamily) map[string]bool {
		out := map[string]bool{}
		for k := range seriesKeys(mf) {
			if strings.Contains(k, "id=/kubepods/") {
				out[k] = true
			}
		}
		return out
	}
	// compare returns every difference; the kubelet's cAdvisor takes a few
	// housekeeping rounds after the kubelet starts before it serves every
	// cgroup, so the comparison is repeated until it settles.
	compare := func() (diffs []string, compared int) {
		code, body := get(t, nil, "http://"+addr+"/metrics/cadvisor")
		if code != http.StatusOK {
			t.Fatalf("/metrics/cadvisor: %d", code)
		}
		lintExposition(t, body)
		ours := families(t, body)
		theirs := directFetch(t, env, "/metrics/cadvisor")
		for name, mf := range ours {
			tf, ok := theirs[name]
			if !ok {
				continue
			}
			if mf.GetType() != tf.GetType() || mf.GetHelp() != tf.GetHelp() {
				diffs = append(diffs, fmt.Sprintf("%s: %s %q; the kubelet: %s %q", name, mf.GetType(), mf.GetHelp(), tf.GetType(), tf.GetHelp()))
			}
			o, k := kubepods(mf), kubepods(tf)
			if len(o) == 0 {
				// This hybrid host's cgroup2 hierarchy has no io
				// controller, and nodeagent does not read v1's blkio.
				continue
			}
			if slices.Contains(limitFamilies, name) {
				ov, kv := seriesValues(mf), seriesValues(tf)
				for s := range o {
					if v, ok := kv[s]; ok && v != ov[s] {
						diffs = append(diffs, fmt.Sprintf("%s{%s}: nodeagent %v, the kubelet %v", name, s, ov[s], v))
					}
				}
			}
			compared++
			for s := range k {
				if !o[s] {
					diffs = append(diffs, fmt.Sprintf("%s{%s}: the kubelet serves it, nodeagent does not", name, s))
				}
			}
			for s := range o {
				if !k[s] {
					diffs = append(diffs, fmt.Sprintf("%s{%s}: nodeagent serves it, the kubelet does not", name, s))
				}
			}
		}
		return diffs, compared
	}
	var diffs []string
	var compared int
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Second) {
		if diffs, compared = compare(); len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, d := range diffs {
		t.Error(d)
	}
	if compared == 0 {
		t.Fatal("no family with pod cgroups compared")
	}
	t.Logf("%d container families compared series by series for the pods' cgroups", compared)
}
