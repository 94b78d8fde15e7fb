package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/manifests"
)

// deployRenderings are the deployment's variants whose DaemonSet flags
// differ (deploy/ checks the rest of them): the kustomize base and its
// components, and the chart with values that add flags.
var deployRenderings = []struct {
	name      string
	kustomize string
	values    map[string]any
}{
	{name: "kustomize base", kustomize: "../../deploy/kubernetes"},
	{name: "kustomize kubelet-insecure-skip-verify", kustomize: "../../deploy/testdata/overlays/kubelet-insecure-skip-verify"},
	{name: "kustomize kubelet-ca", kustomize: "../../deploy/testdata/overlays/kubelet-ca"},
	{name: "chart TLS Secret", values: map[string]any{
		"web":            map[string]any{"tls": map[string]any{"existingSecret": "serving", "clientAuth": true}},
		"serviceMonitor": map[string]any{"clientCertSecret": "client"}}},
	{name: "chart everything on", values: map[string]any{
		"kubelet":        map[string]any{"caConfigMap": "kubelet-ca"},
		"collectors":     map[string]any{"enable": []any{"resource"}, "disable": []any{"hwmon"}},
		"extraArgs":      []any{"--log.level=debug"},
		"serviceMonitor": map[string]any{"endpoints": map[string]any{"resource": map[string]any{"enabled": true}, "slis": map[string]any{"enabled": true}, "kubeProxy": map[string]any{"enabled": true}, "runtime": map[string]any{"enabled": true}}}}},
	{name: "chart kubelet insecure", values: map[string]any{"kubelet": map[string]any{"insecureSkipVerify": true}}},
}

// renderDeploy renders one variant and returns its DaemonSet and
// ServiceMonitor (nil when there is none).
func renderDeploy(t *testing.T, kustomize string, values map[string]any) (*appsv1.DaemonSet, *monitoringv1.ServiceMonitor) {
	t.Helper()
	var stream []byte
	if kustomize != "" {
		b, err := manifests.Kustomize(kustomize)
		if err != nil {
			t.Fatal(err)
		}
		stream = b
	} else {
		rel, err := manifests.HelmTemplate("../../deploy/helm/nodeagent", "nodeagent", "nodeagent", values)
		if err != nil {
			t.Fatal(err)
		}
		stream = []byte(rel.Manifest)
	}
	objs, err := manifests.Decode(stream)
	if err != nil {
		t.Fatal(err)
	}
	var ds *appsv1.DaemonSet
	var sm *monitoringv1.ServiceMonitor
	for _, o := range objs {
		switch x := o.Obj.(type) {
		case *appsv1.DaemonSet:
			ds = x
		case *monitoringv1.ServiceMonitor:
			sm = x
		}
	}
	if ds == nil {
		t.Fatal("no DaemonSet")
	}
	return ds, sm
}

// TestDeployFlagsParse: every flag the rendered DaemonSets pass exists and
// parses.
func TestDeployFlagsParse(t *testing.T) {
	t.Parallel()
	for _, tc := range deployRenderings {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ds, _ := renderDeploy(t, tc.kustomize, tc.values)
			args := ds.Spec.Template.Spec.Containers[0].Args
			if len(args) < 5 {
				t.Fatalf("only %d flags: %v", len(args), args)
			}
			parseServe(t, args...)
			t.Logf("%d flags parsed", len(args))
		})
	}
}

// TestServiceMonitorPaths: every path a rendered ServiceMonitor scrapes is
// one the agent serves (a kubelet-layer collector's path counts when that
// collector exists), and the default ServiceMonitor scrapes every
// kubelet path kube-prometheus scrapes, /metrics/slis included.
func TestServiceMonitorPaths(t *testing.T) {
	t.Parallel()
	served := map[string]bool{}
	for _, ep := range planEndpoints(nil) {
		served[ep.path] = true
	}
	for _, r := range collectors.Registrations() {
		if r.Layer == collectors.LayerKubelet {
			served["/metrics/"+r.Name] = true
		}
	}
	checked := 0
	for _, tc := range deployRenderings {
		_, sm := renderDeploy(t, tc.kustomize, tc.values)
		if sm == nil {
			t.Fatalf("%s: no ServiceMonitor", tc.name)
		}
		for _, ep := range sm.Spec.Endpoints {
			checked++
			if !served[ep.Path] {
				t.Errorf("%s: the ServiceMonitor scrapes %s, which nodeagent does not serve", tc.name, ep.Path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no endpoint checked")
	}
	t.Logf("%d endpoints checked", checked)
	// The kubelet's paths kube-prometheus' kubelet ServiceMonitor scrapes
	// are all on by default; /metrics/slis was off until the agent served it.
	_, sm := renderDeploy(t, "../../deploy/kubernetes", nil)
	var paths []string
	for _, ep := range sm.Spec.Endpoints {
		paths = append(paths, ep.Path)
	}
	for _, p := range []string{"/metrics/cadvisor", "/metrics/kubelet", "/metrics/probes", "/metrics/slis"} {
		if !slices.Contains(paths, p) {
			t.Errorf("the kustomize base's ServiceMonitor does not scrape %s: %v", p, paths)
		}
	}
}

// TestSystemdUnit: the unit runs unprivileged and its flags parse.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../deploy/systemd/nodeagent.service")
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = v
		}
	}
	for k, want := range map[string]string{"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "ProtectSystem": "strict", "User": "nodeagent"} {
		if got, ok := settings[k]; !ok || got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	exec := strings.Fields(settings["ExecStart"])
	var args []string
	for _, a := range exec[1:] {
		if !strings.HasPrefix(a, "$") {
			args = append(args, a)
		}
	}
	parseServe(t, args...)
}
