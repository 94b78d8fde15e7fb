package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/promql/parser"
	yamlv2 "go.yaml.in/yaml/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/nodeagent/nodeagent/internal/manifests"
)

const kpDir = "testdata/kube-prometheus"

// The node and the agent's pod of the simulated targets.
const (
	simNode = "node-1"
	simPod  = "nodeagent-x7k2p"
)

// sanitizeLabelName is how the operator and Kubernetes service discovery
// turn a Kubernetes label key into part of a Prometheus label name.
func sanitizeLabelName(k string) string {
	return regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(k, "_")
}

// relabelConfig is one relabel_config in Prometheus' configuration format.
type relabelConfig map[string]any

// operatorRelabelings are the relabel_configs prometheus-operator generates
// for one endpoint of a ServiceMonitor, in its order: the steps of
// generateServiceMonitorConfig in pkg/prometheus/promcfg.go (commit
// 6adcebc5076c34f4f55f8f5f7b1e528929373ac7) for the default endpoints
// role, without sharding, then the endpoint's own relabelings.
func operatorRelabelings(sm *monitoringv1.ServiceMonitor, ep monitoringv1.Endpoint) []relabelConfig {
	meta := []string{"__meta_kubernetes_endpoint_address_target_kind", "__meta_kubernetes_endpoint_address_target_name"}
	out := []relabelConfig{{"source_labels": []string{"job"}, "target_label": "__tmp_prometheus_job_name"}}
	keys := make([]string, 0, len(sm.Spec.Selector.MatchLabels))
	for k := range sm.Spec.Selector.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, relabelConfig{"action": "keep",
			"source_labels": []string{"__meta_kubernetes_service_label_" + sanitizeLabelName(k), "__meta_kubernetes_service_labelpresent_" + sanitizeLabelName(k)},
			"regex":         fmt.Sprintf("(%s);true", sm.Spec.Selector.MatchLabels[k])})
	}
	out = append(out,
		relabelConfig{"action": "keep", "source_labels": []string{"__meta_kubernetes_endpoint_port_name"}, "regex": ep.Port},
		relabelConfig{"source_labels": meta, "separator": ";", "regex": "Node;(.*)", "replacement": "${1}", "target_label": "node"},
		relabelConfig{"source_labels": meta, "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"},
		relabelConfig{"source_labels": []string{"__meta_kubernetes_namespace"}, "target_label": "namespace"},
		relabelConfig{"source_labels": []string{"__meta_kubernetes_service_name"}, "target_label": "service"},
		relabelConfig{"source_labels": []string{"__meta_kubernetes_pod_name"}, "target_label": "pod"},
		relabelConfig{"source_labels": []string{"__meta_kubernetes_pod_container_name"}, "target_label": "container"},
		relabelConfig{"action": "drop", "source_labels": []string{"__meta_kubernetes_pod_phase"}, "regex": "(Failed|Succeeded)"},
		relabelConfig{"source_labels": []string{"__meta_kubernetes_service_name"}, "target_label": "job", "replacement": "${1}"},
	)
	if sm.Spec.JobLabel != "" {
		out = append(out, relabelConfig{"source_labels": []string{"__meta_kubernetes_service_label_" + sanitizeLabelName(sm.Spec.JobLabel)},
			"target_label": "job", "regex": "(.+)", "replacement": "${1}"})
	}
	out = append(out, relabelConfig{"target_label": "endpoint", "replacement": ep.Port})
	for _, rc := range ep.RelabelConfigs {
		c := relabelConfig{}
		if rc.Action != "" {
			c["action"] = strings.ToLower(rc.Action)
		}
		if len(rc.SourceLabels) > 0 {
			var sl []string
			for _, l := range rc.SourceLabels {
				sl = append(sl, string(l))
			}
			c["source_labels"] = sl
		}
		if rc.Separator != nil {
			c["separator"] = *rc.Separator
		}
		if rc.TargetLabel != "" {
			c["target_label"] = rc.TargetLabel
		}
		if rc.Regex != "" {
			c["regex"] = rc.Regex
		}
		if rc.Replacement != nil {
			c["replacement"] = *rc.Replacement
		}
		out = append(out, c)
	}
	return out
}

// compileRelabel turns configurations into Prometheus' own, with its
// defaults and validation.
func compileRelabel(t *testing.T, rcs []relabelConfig) []*relabel.Config {
	t.Helper()
	b, err := yamlv2.Marshal(rcs)
	if err != nil {
		t.Fatal(err)
	}
	var cfgs []*relabel.Config
	if err := yamlv2.UnmarshalStrict(b, &cfgs); err != nil {
		t.Fatalf("relabel configs: %v\n%s", err, b)
	}
	for _, c := range cfgs {
		if err := c.Validate(model.UTF8Validation); err != nil {
			t.Fatalf("relabel config %+v: %v", c, err)
		}
	}
	return cfgs
}

// discovered is what Kubernetes service discovery (role endpoints) gives
// Prometheus for the agent's pod on simNode behind svc, before relabeling.
func discovered(svc *corev1.Service, ds *appsv1.DaemonSet, ep monitoringv1.Endpoint, i int) labels.Labels {
	b := labels.NewBuilder(labels.EmptyLabels())
	set := map[string]string{
		"__address__":                          "10.0.0.7:9812",
		"__scheme__":                           "https",
		"__metrics_path__":                     ep.Path,
		"job":                                  fmt.Sprintf("serviceMonitor/%s/%s/%d", svc.Namespace, svc.Name, i),
		"__meta_kubernetes_namespace":          svc.Namespace,
		"__meta_kubernetes_service_name":       svc.Name,
		"__meta_kubernetes_endpoint_port_name": ep.Port,
		"__meta_kubernetes_endpoint_address_target_kind": "Pod",
		"__meta_kubernetes_endpoint_address_target_name": simPod,
		"__meta_kubernetes_pod_name":                     simPod,
		"__meta_kubernetes_pod_container_name":           ds.Spec.Template.Spec.Containers[0].Name,
		"__meta_kubernetes_pod_node_name":                simNode,
		"__meta_kubernetes_pod_phase":                    "Running",
	}
	for k, v := range svc.Labels {
		set["__meta_kubernetes_service_label_"+sanitizeLabelName(k)] = v
		set["__meta_kubernetes_service_labelpresent_"+sanitizeLabelName(k)] = "true"
	}
	for k, v := range ds.Spec.Template.Labels {
		set["__meta_kubernetes_pod_label_"+sanitizeLabelName(k)] = v
	}
	for k, v := range set {
		b.Set(k, v)
	}
	return b.Labels()
}

// target is one scraped endpoint's target labels after relabeling.
type target struct {
	path   string
	honor  bool
	labels labels.Labels
}

// targets relabels the agent's pod as each endpoint of sm, as Prometheus
// does: the relabel_configs, then instance from __address__ when unset,
// then every label starting with __ removed.
func targets(t *testing.T, r *rendered, sm *monitoringv1.ServiceMonitor) []target {
	t.Helper()
	var out []target
	for i, ep := range sm.Spec.Endpoints {
		lb := labels.NewBuilder(discovered(r.service, r.ds, ep, i))
		if !relabel.ProcessBuilder(lb, compileRelabel(t, operatorRelabelings(sm, ep))...) {
			t.Fatalf("endpoint %s: the operator's relabelings drop the agent's pod", ep.Path)
		}
		if lb.Get("instance") == "" {
			lb.Set("instance", lb.Get("__address__"))
		}
		lb.Range(func(l labels.Label) {
			if strings.HasPrefix(l.Name, "__") {
				lb.Del(l.Name)
			}
		})
		out = append(out, target{path: ep.Path, honor: ep.HonorLabels, labels: lb.Labels()})
	}
	return out
}

// attach gives a scraped series its target's labels as Prometheus does:
// with honor_labels the series' own labels win and the target only adds
// what the series lacks; without, the target's win and a series' label of
// the same name, whatever its value, is kept as exported_<name>.
func attach(series labels.Labels, tg target) labels.Labels {
	lb := labels.NewBuilder(series)
	tg.labels.Range(func(l labels.Label) {
		existing := series.Get(l.Name)
		switch {
		case tg.honor && existing != "":
		case existing != "":
			lb.Set("exported_"+l.Name, existing)
			lb.Set(l.Name, l.Value)
		default:
			lb.Set(l.Name, l.Value)
		}
	})
	return lb.Labels()
}

// TestMixinSelectorsMatchTargets parses every query of kube-prometheus'
// rules and dashboards and checks that each selector on job="kubelet",
// job="node-exporter" or job="kube-proxy" matches the target labels of one
// of nodeagent's endpoints (all of them on, so the kube-proxy path counts),
// on every label a target sets.
func TestMixinSelectorsMatchTargets(t *testing.T) {
	var all *variant
	for i := range variants {
		if variants[i].name == "chart everything on" {
			all = &variants[i]
		}
	}
	for _, v := range []variant{variants[0], *all} {
		t.Run(v.name, func(t *testing.T) {
			r := render(t, v)
			tgs := targets(t, r, r.monitors[0])
			ours := map[string]bool{"kubelet": true, "node-exporter": true}
			if v.name == all.name {
				ours["kube-proxy"] = true
			}
			checked, parsed, skipped := 0, 0, 0
			for _, q := range kubePrometheusQueries(t) {
				expr, err := parser.NewParser(parser.Options{}).ParseExpr(q.expr)
				if err != nil {
					skipped++
					continue
				}
				parsed++
				for _, sel := range parser.ExtractSelectors(expr) {
					job := ""
					for _, m := range sel {
						if m.Name == "job" && m.Type == labels.MatchEqual {
							job = m.Value
						}
					}
					if !ours[job] {
						continue
					}
					checked++
					if !matchesATarget(sel, tgs) {
						t.Errorf("%s: selector %v matches none of nodeagent's targets", q.source, sel)
					}
				}
			}
			if checked == 0 || parsed == 0 {
				t.Fatalf("checked %d selectors in %d parsed queries", checked, parsed)
			}
			t.Logf("%d selectors of %d parsed queries matched a target (%d dashboard queries with Grafana syntax left unparsed)", checked, parsed, skipped)
		})
	}
}

// matchesATarget: some target satisfies every matcher of sel on a label
// the target sets (the series' own labels are the exporter's business);
// matchers on a dashboard variable match whatever the user picks.
func matchesATarget(sel []*labels.Matcher, tgs []target) bool {
	for _, tg := range tgs {
		ok := true
		for _, m := range sel {
			if m.Name == "__name__" || !tg.labels.Has(m.Name) || strings.Contains(m.Value, grafanaPlaceholder) {
				continue
			}
			ok = ok && m.Matches(tg.labels.Get(m.Name))
		}
		if ok {
			return true
		}
	}
	return false
}

type query struct{ source, expr string }

// grafanaVar matches Grafana template variables in dashboard queries;
// they are replaced by grafanaPlaceholder.
var grafanaVar = regexp.MustCompile(`\$\{?[a-zA-Z_]+(:[a-z]+)?\}?`)

const grafanaPlaceholder = "GRAFANA_VARIABLE"

// kubePrometheusQueries are the expressions of the copied rules and
// dashboards, Grafana variables replaced by something PromQL parses.
func kubePrometheusQueries(t *testing.T) []query {
	t.Helper()
	var out []query
	for _, g := range kubePrometheusRuleGroups(t) {
		for _, r := range g.Rules {
			out = append(out, query{source: "rule " + r.Alert + r.Record, expr: r.Expr.String()})
		}
	}
	objs := decodeFile(t, filepath.Join(kpDir, "grafana-dashboardDefinitions.yaml"))
	for _, o := range objs {
		list, ok := o.Obj.(*corev1.ConfigMapList)
		if !ok {
			t.Fatalf("dashboards: %T", o.Obj)
		}
		for _, cm := range list.Items {
			for file, body := range cm.Data {
				var doc any
				if err := json.Unmarshal([]byte(body), &doc); err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				walkExprs(doc, func(e string) {
					e = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$interval", "5m", "$resolution", "1m").Replace(e)
					e = grafanaVar.ReplaceAllString(e, grafanaPlaceholder)
					out = append(out, query{source: "dashboard " + file, expr: e})
				})
			}
		}
	}
	return out
}

func walkExprs(v any, f func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if s, ok := c.(string); ok && k == "expr" {
				f(s)
				continue
			}
			walkExprs(c, f)
		}
	case []any:
		for _, c := range x {
			walkExprs(c, f)
		}
	}
}

func decodeFile(t *testing.T, path string) []manifests.Object {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return objs
}

// kubePrometheusRuleGroups are the groups of the copied PrometheusRules.
func kubePrometheusRuleGroups(t *testing.T) []monitoringv1.RuleGroup {
	t.Helper()
	var out []monitoringv1.RuleGroup
	for _, f := range []string{"kubernetesControlPlane-prometheusRule.yaml", "nodeExporter-prometheusRule.yaml", "kubePrometheus-prometheusRule.yaml"} {
		for _, o := range decodeFile(t, filepath.Join(kpDir, f)) {
			out = append(out, o.Obj.(*monitoringv1.PrometheusRule).Spec.Groups...)
		}
	}
	return out
}

// TestKubePrometheusParity decodes kube-prometheus' node-exporter and
// kubelet objects strictly and compares nodeagent's with them: the same
// honorLabels and token authentication per path, no more host access than
// node-exporter's DaemonSet, and the review rules of node-exporter's
// ClusterRole (its kube-rbac-proxy's) in nodeagent's.
func TestKubePrometheusParity(t *testing.T) {
	r := render(t, variants[0])
	ours := map[string]monitoringv1.Endpoint{}
	for _, ep := range r.monitors[0].Spec.Endpoints {
		ours[ep.Path] = ep
	}
	// kube-prometheus' path → nodeagent's path serving the same series.
	pathFor := map[string]map[string]string{
		"kubelet":       {"": "/metrics/kubelet", "/metrics/cadvisor": "/metrics/cadvisor", "/metrics/probes": "/metrics/probes", "/metrics/slis": "/metrics/slis"},
		"node-exporter": {"": "/metrics/node"},
	}
	compared := 0
	for _, f := range []string{"kubernetesControlPlane-serviceMonitorKubelet.yaml", "nodeExporter-serviceMonitor.yaml"} {
		sm := decodeFile(t, filepath.Join(kpDir, f))[0].Obj.(*monitoringv1.ServiceMonitor)
		for _, kp := range sm.Spec.Endpoints {
			p := pathFor[sm.Name][kp.Path]
			if p == "" {
				t.Fatalf("%s: unmapped path %q", f, kp.Path)
			}
			ep, ok := ours[p]
			if !ok {
				t.Errorf("%s scrapes %s; nodeagent's ServiceMonitor has no %s", sm.Name, kp.Path, p)
				continue
			}
			compared++
			if ep.HonorLabels != kp.HonorLabels {
				t.Errorf("%s: honorLabels %v, kube-prometheus' %s %s has %v", p, ep.HonorLabels, sm.Name, kp.Path, kp.HonorLabels)
			}
			if bearerTokenFile(ep) != bearerTokenFile(kp) {
				t.Errorf("%s: bearerTokenFile %q, kube-prometheus' %q", p, bearerTokenFile(ep), bearerTokenFile(kp))
			}
		}
	}
	// node-exporter's one, the kubelet's /metrics, /metrics/cadvisor,
	// /metrics/probes and /metrics/slis.
	if compared != 5 {
		t.Errorf("compared %d endpoints, want 5", compared)
	}

	ne := decodeFile(t, filepath.Join(kpDir, "nodeExporter-daemonset.yaml"))[0].Obj.(*appsv1.DaemonSet).Spec.Template.Spec
	pod := r.ds.Spec.Template.Spec
	if pod.HostNetwork && !ne.HostNetwork || pod.HostPID && !ne.HostPID || pod.HostIPC {
		t.Errorf("host namespaces beyond node-exporter's: network %v/%v, PID %v/%v", pod.HostNetwork, ne.HostNetwork, pod.HostPID, ne.HostPID)
	}
	if ne.SecurityContext.RunAsUser == nil || *ne.SecurityContext.RunAsUser != *pod.SecurityContext.RunAsUser {
		t.Errorf("user %d, node-exporter's %v", *pod.SecurityContext.RunAsUser, ne.SecurityContext.RunAsUser)
	}
	neRole := decodeFile(t, filepath.Join(kpDir, "nodeExporter-clusterRole.yaml"))[0].Obj.(*rbacv1.ClusterRole)
	agent := normRules(agentRules(true, false))
	for _, rl := range normRules(neRole.Rules) {
		if !slices.Contains(agent, rl) {
			t.Errorf("node-exporter's rule %+v is not in nodeagent's ClusterRole", rl)
		}
	}
	for _, f := range []string{"nodeExporter-service.yaml", "nodeExporter-networkPolicy.yaml"} {
		o := decodeFile(t, filepath.Join(kpDir, f))[0]
		switch x := o.Obj.(type) {
		case *corev1.Service:
			if x.Spec.ClusterIP != corev1.ClusterIPNone || r.service.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Error("both Services must be headless")
			}
		case *networkingv1.NetworkPolicy:
			// node-exporter's policy selects host-network pods, which most
			// network plugins do not police: nodeagent ships none and
			// authenticates its scrapers instead.
			if len(x.Spec.Ingress) == 0 {
				t.Errorf("%s: no ingress rule", f)
			}
		}
	}
}

// TestJobRelabelingWinsOverJobLabel: the operator sets job from the
// Service's name, or from the Service label jobLabel names, before an
// endpoint's relabelings; so each endpoint's job relabeling decides, with
// or without a jobLabel, and one ServiceMonitor gives several jobs.
func TestJobRelabelingWinsOverJobLabel(t *testing.T) {
	r := render(t, variants[0])
	for _, jobLabel := range []string{"", "app.kubernetes.io/name"} {
		sm := r.monitors[0].DeepCopy()
		sm.Spec.JobLabel = jobLabel
		got := map[string]string{}
		for _, tg := range targets(t, r, sm) {
			got[tg.path] = tg.labels.Get("job") + " " + tg.labels.Get("metrics_path")
		}
		want := map[string]string{}
		for _, p := range r.endpoints {
			want[p] = strings.TrimSpace(endpointSpecs[p].job + " " + endpointSpecs[p].metricsPath)
		}
		for p := range got {
			got[p] = strings.TrimSpace(got[p])
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("jobLabel %q: job and metrics_path per path (-want +got):\n%s", jobLabel, diff)
		}
	}
}
