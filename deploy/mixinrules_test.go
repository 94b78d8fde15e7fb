package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/prometheus/model/labels"
	"sigs.k8s.io/yaml"
)

// sample is one series an agent path serves, with its own labels, and its
// values in promtool's notation.
type sample struct {
	path, metric string
	labels       map[string]string
	values       string
}

// agentSamples are series of the agent's paths on simNode, as it serves
// them (the exposition's own labels only): a container, its pod-level
// cgroup, and the root cgroup; a CPU; the kubelet's node name; a probe.
var agentSamples = []sample{
	{"/metrics/node", "node_cpu_seconds_total", map[string]string{"cpu": "0", "mode": "idle"}, "0+30x30"},
	{"/metrics/cadvisor", "container_cpu_usage_seconds_total", map[string]string{"cpu": "total", "id": "/kubepods/besteffort/pod0a1b/3f2e", "name": "3f2e",
		"image": "docker.io/library/nginx:1.27", "namespace": "default", "pod": "web-0", "container": "nginx"}, "0+60x30"},
	{"/metrics/cadvisor", "container_cpu_usage_seconds_total", map[string]string{"cpu": "total", "id": "/kubepods/besteffort/pod0a1b", "namespace": "default", "pod": "web-0"}, "0+60x30"},
	{"/metrics/cadvisor", "container_cpu_usage_seconds_total", map[string]string{"cpu": "total", "id": "/"}, "0+120x30"},
	{"/metrics/cadvisor", "container_memory_rss", map[string]string{"id": "/kubepods/besteffort/pod0a1b/3f2e", "name": "3f2e",
		"image": "docker.io/library/nginx:1.27", "namespace": "default", "pod": "web-0", "container": "nginx"}, "1000x30"},
	{"/metrics/cadvisor", "container_memory_rss", map[string]string{"id": "/kubepods/besteffort/pod0a1b", "namespace": "default", "pod": "web-0"}, "1000x30"},
	{"/metrics/cadvisor", "container_memory_rss", map[string]string{"id": "/"}, "50000x30"},
	{"/metrics/kubelet", "kubelet_node_name", map[string]string{"node": simNode}, "1x30"},
	{"/metrics/probes", "prober_probe_total", map[string]string{"container": "nginx", "namespace": "default", "pod": "web-0", "pod_uid": "0a1b",
		"probe_type": "Liveness", "result": "successful"}, "0+6x30"},
}

// kube-state-metrics' series for the node and the two pods, as kube-prometheus scrapes
// them (honorLabels, job kube-state-metrics).
var ksmSeries = []string{
	`kube_pod_info{job="kube-state-metrics",namespace="default",pod="web-0",node="node-1",uid="0a1b"}`,
	`kube_pod_info{job="kube-state-metrics",namespace="nodeagent",pod="nodeagent-x7k2p",node="node-1",uid="9c8d"}`,
	`kube_node_info{job="kube-state-metrics",node="node-1"}`,
}

// expectations are queries of kube-prometheus' rules and dashboards with
// the result they must give over agentSamples, labelled as nodeagent's
// ServiceMonitor labels them.
var expectations = []map[string]any{
	// kubernetes-mixin's per-container CPU, joined to kube_pod_info for the
	// node: needs the series' own namespace/pod/container (honorLabels).
	{"expr": "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m", "eval_time": "20m",
		"exp_samples": []map[string]any{{"labels": `node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m{container="nginx",namespace="default",node="node-1",pod="web-0"}`, "value": 1}}},
	// kubernetes-mixin's CPU count per node: node_* joined to
	// kube_pod_info on the agent's own namespace and pod.
	{"expr": "node:node_num_cpu:sum", "eval_time": "20m",
		"exp_samples": []map[string]any{{"labels": `node:node_num_cpu:sum{node="node-1"}`, "value": 1}}},
	// A dashboard query with container!="": the container only, not its
	// pod-level or root cgroup.
	{"expr": `sum(container_memory_rss{job="kubelet", metrics_path="/metrics/cadvisor", container!=""})`, "eval_time": "20m",
		"exp_samples": []map[string]any{{"labels": "{}", "value": 1000}}},
	// Probe series keep their pod.
	{"expr": `sum by (namespace, pod, container) (rate(prober_probe_total{job="kubelet", metrics_path="/metrics/probes"}[5m]))`, "eval_time": "20m",
		"exp_samples": []map[string]any{{"labels": `{container="nginx",namespace="default",pod="web-0"}`, "value": 0.1}}},
	// The kubelet's node name on the kubelet's /metrics job.
	{"expr": `max by (node) (kubelet_node_name{job="kubelet", metrics_path="/metrics"})`, "eval_time": "20m",
		"exp_samples": []map[string]any{{"labels": `{node="node-1"}`, "value": 1}}},
}

// silentAlerts are kube-prometheus alerts that must not fire while every
// target is up: they look for the kubelet's and node-exporter's targets.
var silentAlerts = []string{"KubeletDown", "KubeletInstanceUnreachable", "TargetDown"}

// TestMixinRulesOnRelabelledSeries labels agentSamples as nodeagent's
// ServiceMonitor makes Prometheus label them (the operator's relabelings,
// the endpoint's, honorLabels) and runs kube-prometheus' own rules over
// them with promtool test rules: the recording rules and dashboard queries
// give the per-pod and per-node results, and the "target missing" alerts
// stay silent. The same run over a ServiceMonitor without honorLabels on
// /metrics/cadvisor must fail, so the test can tell.
func TestMixinRulesOnRelabelledSeries(t *testing.T) {
	promtool(t)
	dir := t.TempDir()
	var groups []monitoringv1.RuleGroup
	names := map[string]bool{}
	for _, g := range kubePrometheusRuleGroups(t) {
		if names[g.Name] {
			t.Fatalf("rule group %s twice", g.Name)
		}
		names[g.Name] = true
		groups = append(groups, g)
	}
	writeYAML(t, filepath.Join(dir, "kube-prometheus.rules.yml"), map[string]any{"groups": groups})
	for _, name := range silentAlerts {
		if !hasAlert(groups, name) {
			t.Fatalf("kube-prometheus' rules have no alert %s", name)
		}
	}

	r := render(t, variants[0])
	good := r.monitors[0]
	broken := good.DeepCopy()
	for i := range broken.Spec.Endpoints {
		if broken.Spec.Endpoints[i].Path == "/metrics/cadvisor" {
			broken.Spec.Endpoints[i].HonorLabels = false
		}
	}
	for _, tc := range []struct {
		name string
		sm   *monitoringv1.ServiceMonitor
		pass bool
	}{{"nodeagent's ServiceMonitor", good, true}, {"without honorLabels on /metrics/cadvisor", broken, false}} {
		file := filepath.Join(dir, fmt.Sprintf("mixin-%v.test.yml", tc.pass))
		writeYAML(t, file, mixinTest(t, targets(t, r, tc.sm)))
		out, err := runPromtool(t, "test", "rules", file)
		switch {
		case tc.pass && err != nil:
			t.Errorf("%s: promtool test rules: %v\n%s", tc.name, err, out)
		case !tc.pass && err == nil:
			t.Errorf("%s: kube-prometheus' rules passed, but this ServiceMonitor breaks them:\n%s", tc.name, out)
		case !tc.pass && !strings.Contains(out, "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m"):
			t.Errorf("%s: promtool failed, but not on the per-container recording rule:\n%s", tc.name, out)
		case tc.pass:
			t.Logf("%s: %s", tc.name, strings.TrimSpace(out))
		}
	}
}

// mixinTest is a promtool test file over the relabelled samples.
func mixinTest(t *testing.T, tgs []target) map[string]any {
	t.Helper()
	byPath := map[string]target{}
	for _, tg := range tgs {
		byPath[tg.path] = tg
	}
	var series []map[string]any
	for _, s := range agentSamples {
		tg, ok := byPath[s.path]
		if !ok {
			t.Fatalf("no endpoint scrapes %s", s.path)
		}
		lset := attach(labels.FromMap(s.labels), tg)
		series = append(series, map[string]any{"series": s.metric + lset.String(), "values": s.values})
	}
	for _, tg := range tgs {
		series = append(series, map[string]any{"series": "up" + tg.labels.String(), "values": "1x30"})
	}
	for _, s := range ksmSeries {
		series = append(series, map[string]any{"series": s, "values": "1x30"})
	}
	var alerts []map[string]any
	for _, name := range silentAlerts {
		alerts = append(alerts, map[string]any{"alertname": name, "eval_time": "25m", "exp_alerts": []any{}})
	}
	return map[string]any{
		"rule_files":          []string{"kube-prometheus.rules.yml"},
		"evaluation_interval": "1m",
		"tests": []map[string]any{{
			"interval":         "1m",
			"input_series":     series,
			"promql_expr_test": expectations,
			"alert_rule_test":  alerts,
		}},
	}
}

func hasAlert(groups []monitoringv1.RuleGroup, name string) bool {
	for _, g := range groups {
		if slices.ContainsFunc(g.Rules, func(r monitoringv1.Rule) bool { return r.Alert == name }) {
			return true
		}
	}
	return false
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(fmt.Errorf("writing %s: %w", path, err))
	}
}
