package deploy

import (
	"os"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/nodeagent/nodeagent/internal/manifests"
)

// variant is one way users deploy: the kustomize base or an overlay with
// its components, or the chart with some values. The fields after the
// source say what the rendering must contain.
type variant struct {
	name string
	// kustomize is a kustomization directory; else the chart is rendered
	// with values.
	kustomize string
	values    map[string]any

	auth        bool   // --web.kubernetes-auth, its RBAC, bearer tokens
	legacyProxy bool   // nodes/proxy granted
	tlsSecret   string // the serving certificate's Secret, "" for none
	monitor     bool   // a ServiceMonitor is rendered
	rule        bool   // a PrometheusRule is rendered
	// noDoctor: no <fullname>-doctor ClusterRole (doctor.rbac.create=false);
	// doctorDeployments: it may list Deployments.
	noDoctor, doctorDeployments bool
	// endpoints are the paths the ServiceMonitor scrapes.
	endpoints []string
}

// defaultEndpoints are the paths scraped by default.
var defaultEndpoints = []string{"/metrics/node", "/metrics/cadvisor", "/metrics/kubelet", "/metrics/probes", "/metrics/nodeagent", "/metrics/slis"}

// variants are every supported way to deploy, rendered and checked alike.
var variants = []variant{
	{name: "kustomize base", kustomize: baseDir, auth: true, monitor: true, rule: true, endpoints: defaultEndpoints},
	{name: "kustomize nodes-proxy", kustomize: "testdata/overlays/nodes-proxy", auth: true, legacyProxy: true, monitor: true, rule: true, endpoints: defaultEndpoints},
	{name: "kustomize kubelet-insecure-skip-verify", kustomize: "testdata/overlays/kubelet-insecure-skip-verify", auth: true, monitor: true, rule: true, endpoints: defaultEndpoints},
	{name: "kustomize kubelet-ca", kustomize: "testdata/overlays/kubelet-ca", auth: true, monitor: true, rule: true, endpoints: defaultEndpoints},
	{name: "chart defaults", values: map[string]any{}, auth: true, monitor: true, rule: true, endpoints: defaultEndpoints},
	{name: "chart TLS Secret with client certificates", values: map[string]any{
		"web": map[string]any{"tls": map[string]any{"existingSecret": "nodeagent-serving", "clientAuth": true}},
		"serviceMonitor": map[string]any{"clientCertSecret": "prometheus-client",
			"labels": map[string]any{"release": "kube-prometheus-stack"}},
		"prometheusRule": map[string]any{"labels": map[string]any{"release": "kube-prometheus-stack"}},
	}, auth: true, tlsSecret: "nodeagent-serving", monitor: true, rule: true, endpoints: defaultEndpoints},
	{name: "chart cert-manager", values: map[string]any{
		"web": map[string]any{"tls": map[string]any{"certManager": map[string]any{"enabled": true,
			"issuerRef": map[string]any{"name": "cluster-ca", "kind": "ClusterIssuer"}}}},
	}, auth: true, tlsSecret: "nodeagent-tls", monitor: true, rule: true, endpoints: defaultEndpoints},
	{name: "chart web config Secret without Kubernetes auth", values: map[string]any{
		"web": map[string]any{"kubernetesAuth": false, "configSecret": "nodeagent-web"},
		"serviceMonitor": map[string]any{"tlsConfig": map[string]any{
			"ca":         map[string]any{"secret": map[string]any{"name": "nodeagent-web", "key": "ca.crt"}},
			"cert":       map[string]any{"secret": map[string]any{"name": "prometheus-client", "key": "tls.crt"}},
			"keySecret":  map[string]any{"name": "prometheus-client", "key": "tls.key"},
			"serverName": "nodeagent"}},
	}, monitor: true, rule: true, endpoints: defaultEndpoints},
	{name: "chart everything on", values: map[string]any{
		"image":      map[string]any{"digest": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		"kubelet":    map[string]any{"insecureSkipVerify": true, "legacyNodesProxy": true},
		"doctor":     map[string]any{"rbac": map[string]any{"listDeployments": true}},
		"collectors": map[string]any{"enable": []any{"resource"}, "disable": []any{"hwmon"}},
		"extraArgs":  []any{"--log.level=debug"},
		"serviceMonitor": map[string]any{"interval": "15s", "endpoints": map[string]any{
			"resource": map[string]any{"enabled": true}, "slis": map[string]any{"enabled": true},
			"kubeProxy": map[string]any{"enabled": true}, "runtime": map[string]any{"enabled": true},
			"cadvisor": map[string]any{"metricRelabelings": []any{map[string]any{
				"action": "drop", "sourceLabels": []any{"__name__"}, "regex": "container_memory_failures_total"}}}}},
		"podAnnotations": map[string]any{"example.com/team": "platform"},
		"podLabels":      map[string]any{"team": "platform"},
		"affinity": map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
			"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{
				"key": "node-role.kubernetes.io/edge", "operator": "DoesNotExist"}}}}}}},
		"priorityClassName": "",
		"imagePullSecrets":  []any{map[string]any{"name": "registry"}},
	}, auth: true, legacyProxy: true, monitor: true, rule: true, doctorDeployments: true,
		endpoints: append(append([]string{}, defaultEndpoints...), "/metrics/resource", "/metrics/kube-proxy", "/metrics/runtime")},
	{name: "chart kubelet CA ConfigMap", values: map[string]any{
		"kubelet": map[string]any{"caConfigMap": "kubelet-serving-ca"},
	}, auth: true, monitor: true, rule: true, endpoints: defaultEndpoints},
	{name: "chart without Prometheus Operator", values: map[string]any{
		"serviceMonitor": map[string]any{"enabled": false},
		"prometheusRule": map[string]any{"enabled": false},
		"scraper":        map[string]any{"rbac": map[string]any{"create": false}},
		"doctor":         map[string]any{"rbac": map[string]any{"create": false}},
	}, auth: true, noDoctor: true},
}

// rendered is a variant's objects, by kind.
type rendered struct {
	variant
	objs            []manifests.Object
	ds              *appsv1.DaemonSet
	service         *corev1.Service
	serviceAccounts []*corev1.ServiceAccount
	namespaces      []*corev1.Namespace
	configMaps      []*corev1.ConfigMap
	clusterRoles    map[string]*rbacv1.ClusterRole
	clusterBindings []*rbacv1.ClusterRoleBinding
	roles           map[string]*rbacv1.Role
	roleBindings    []*rbacv1.RoleBinding
	monitors        []*monitoringv1.ServiceMonitor
	rules           []*monitoringv1.PrometheusRule
	certificates    []*manifests.Certificate
}

// render renders and decodes v; any object of a kind nobody expects fails.
func render(t *testing.T, v variant) *rendered {
	t.Helper()
	var stream []byte
	if v.kustomize != "" {
		b, err := manifests.Kustomize(v.kustomize)
		if err != nil {
			t.Fatal(err)
		}
		stream = b
	} else {
		rel, err := manifests.HelmTemplate(chartDir, release, namespace, v.values)
		if err != nil {
			t.Fatal(err)
		}
		stream = []byte(rel.Manifest)
	}
	objs, err := manifests.Decode(stream)
	if err != nil {
		t.Fatalf("strict decoding: %v", err)
	}
	r := &rendered{variant: v, objs: objs, clusterRoles: map[string]*rbacv1.ClusterRole{}, roles: map[string]*rbacv1.Role{}}
	for _, o := range objs {
		switch x := o.Obj.(type) {
		case *appsv1.DaemonSet:
			if r.ds != nil {
				t.Fatal("two DaemonSets")
			}
			r.ds = x
		case *corev1.Service:
			if r.service != nil {
				t.Fatal("two Services")
			}
			r.service = x
		case *corev1.ServiceAccount:
			r.serviceAccounts = append(r.serviceAccounts, x)
		case *corev1.Namespace:
			r.namespaces = append(r.namespaces, x)
		case *corev1.ConfigMap:
			r.configMaps = append(r.configMaps, x)
		case *rbacv1.ClusterRole:
			r.clusterRoles[x.Name] = x
		case *rbacv1.ClusterRoleBinding:
			r.clusterBindings = append(r.clusterBindings, x)
		case *rbacv1.Role:
			r.roles[x.Name] = x
		case *rbacv1.RoleBinding:
			r.roleBindings = append(r.roleBindings, x)
		case *monitoringv1.ServiceMonitor:
			r.monitors = append(r.monitors, x)
		case *monitoringv1.PrometheusRule:
			r.rules = append(r.rules, x)
		case *manifests.Certificate:
			r.certificates = append(r.certificates, x)
		default:
			t.Fatalf("unexpected object %s %s (%T)", o.Kind, o.Name, o.Obj)
		}
	}
	if r.ds == nil || r.service == nil || len(r.serviceAccounts) != 1 {
		t.Fatalf("want one DaemonSet, Service and ServiceAccount; got %v, %v, %d", r.ds != nil, r.service != nil, len(r.serviceAccounts))
	}
	if got := len(r.monitors) == 1; got != v.monitor || len(r.monitors) > 1 {
		t.Fatalf("%d ServiceMonitors, want one: %v", len(r.monitors), v.monitor)
	}
	if got := len(r.rules) == 1; got != v.rule || len(r.rules) > 1 {
		t.Fatalf("%d PrometheusRules, want one: %v", len(r.rules), v.rule)
	}
	return r
}

// forEachVariant runs check as a subtest over every variant's rendering.
func forEachVariant(t *testing.T, check func(t *testing.T, r *rendered)) {
	t.Helper()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			check(t, render(t, v))
		})
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// container is the DaemonSet's one container.
func (r *rendered) container(t *testing.T) *corev1.Container {
	t.Helper()
	cs := r.ds.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	return &cs[0]
}

// hasArg reports whether the container passes flag (exactly, or as
// flag=value).
func hasArg(c *corev1.Container, flag string) bool {
	for _, a := range c.Args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

// argValue is the value of --flag=value, or "".
func argValue(c *corev1.Container, flag string) string {
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// TestRenderStrict renders every variant; render fails on a document that
// does not decode strictly into its API type or on an unexpected kind.
func TestRenderStrict(t *testing.T) {
	forEachVariant(t, func(t *testing.T, r *rendered) {
		if len(r.objs) < 5 {
			t.Errorf("%d objects; want at least a ServiceAccount, ClusterRole, ClusterRoleBinding, DaemonSet and Service", len(r.objs))
		}
		t.Logf("%d objects decoded strictly", len(r.objs))
	})
}
