package deploy

import (
	"fmt"
	"slices"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
)

// endpointSpec is what one path's endpoint must be: the job and
// metrics_path the stock rules and dashboards select, and whose labels win.
type endpointSpec struct {
	job, metricsPath string
	// honor: the path's series carry labels the operator also sets on the
	// target (namespace, pod, container; endpoint on nodeagent's own), and
	// the series' must win, as kube-prometheus' kubelet monitor does.
	honor bool
	// keepPod: the target's pod and container labels stay (node-exporter's
	// series are joined to kube_pod_info on them); elsewhere they name the
	// agent's pod, which the kubelet's target never has.
	keepPod bool
}

var endpointSpecs = map[string]endpointSpec{
	"/metrics/node":       {job: "node-exporter", keepPod: true},
	"/metrics/cadvisor":   {job: "kubelet", metricsPath: "/metrics/cadvisor", honor: true},
	"/metrics/kubelet":    {job: "kubelet", metricsPath: "/metrics", honor: true},
	"/metrics/probes":     {job: "kubelet", metricsPath: "/metrics/probes", honor: true},
	"/metrics/resource":   {job: "kubelet", metricsPath: "/metrics/resource", honor: true},
	"/metrics/slis":       {job: "kubelet", metricsPath: "/metrics/slis", honor: true},
	"/metrics/kube-proxy": {job: "kube-proxy"},
	"/metrics/runtime":    {job: "container-runtime"},
	"/metrics/nodeagent":  {job: "nodeagent", honor: true, keepPod: true},
}

// TestServiceMonitorEndpoints: the endpoints are the variant's paths on the
// Service's metrics port, authenticated as the agent expects, honorLabels
// exactly where the series carry labels of their own, and the target
// relabelled into the job and labels the stock content selects.
func TestServiceMonitorEndpoints(t *testing.T) {
	forEachVariant(t, func(t *testing.T, r *rendered) {
		if !r.monitor {
			return
		}
		sm := r.monitors[0]
		if sm.Namespace != r.service.Namespace || !slices.Contains(sm.Spec.NamespaceSelector.MatchNames, r.service.Namespace) {
			t.Errorf("ServiceMonitor in %s selects namespaces %v; the Service is in %s", sm.Namespace, sm.Spec.NamespaceSelector.MatchNames, r.service.Namespace)
		}
		sel, err := metav1LabelSelector(sm)
		if err != nil {
			t.Fatal(err)
		}
		if !sel.Matches(k8slabels.Set(r.service.Labels)) {
			t.Errorf("ServiceMonitor selector %v does not select the Service (labels %v)", sm.Spec.Selector, r.service.Labels)
		}
		var paths []string
		for _, ep := range sm.Spec.Endpoints {
			paths = append(paths, ep.Path)
			checkEndpoint(t, r, ep)
		}
		want := slices.Clone(r.endpoints)
		slices.Sort(want)
		slices.Sort(paths)
		if !slices.Equal(want, paths) {
			t.Errorf("endpoints %v, want %v", paths, want)
		}
		t.Logf("%d endpoints checked", len(paths))
	})
}

func checkEndpoint(t *testing.T, r *rendered, ep monitoringv1.Endpoint) {
	t.Helper()
	spec, ok := endpointSpecs[ep.Path]
	if !ok {
		t.Errorf("endpoint %s: a path nodeagent does not serve", ep.Path)
		return
	}
	var port bool
	for _, p := range r.service.Spec.Ports {
		port = port || p.Name == ep.Port && p.TargetPort.String() == "https-metrics"
	}
	if !port || ep.Port != "https-metrics" {
		t.Errorf("%s: port %q is not the Service's https-metrics port", ep.Path, ep.Port)
	}
	if ep.Scheme == nil || ep.Scheme.String() != "https" {
		t.Errorf("%s: scheme %v, want https", ep.Path, ep.Scheme)
	}
	if ep.HonorLabels != spec.honor {
		t.Errorf("%s: honorLabels %v, want %v", ep.Path, ep.HonorLabels, spec.honor)
	}
	const token = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	if got := bearerTokenFile(ep); (got == token) != r.auth || (got != "" && got != token) {
		t.Errorf("%s: bearerTokenFile %q with scraper authentication %v", ep.Path, got, r.auth)
	}
	tls := ep.TLSConfig
	switch {
	case tls == nil:
		t.Errorf("%s: no tlsConfig", ep.Path)
	case r.tlsSecret != "":
		if tls.CA.Secret == nil || tls.CA.Secret.Name != r.tlsSecret || tls.CA.Secret.Key != "ca.crt" || tls.ServerName == nil ||
			*tls.ServerName != fmt.Sprintf("%s.%s.svc", r.service.Name, r.service.Namespace) || tls.InsecureSkipVerify != nil && *tls.InsecureSkipVerify {
			t.Errorf("%s: tlsConfig %+v does not verify the certificate of Secret %s", ep.Path, tls, r.tlsSecret)
		}
	case r.auth && (tls.InsecureSkipVerify == nil || !*tls.InsecureSkipVerify):
		t.Errorf("%s: the agent's in-memory certificate is self-signed; insecureSkipVerify must be set", ep.Path)
	}
}

// bearerTokenFile is the endpoint's bearerTokenFile. monitoring/v1
// deprecates it for authorization, which takes a token from a Secret only,
// not Prometheus' own rotating service-account token.
func bearerTokenFile(ep monitoringv1.Endpoint) string {
	//lint:ignore SA1019 the only way to send Prometheus' own token (see above)
	return ep.BearerTokenFile
}

func metav1LabelSelector(sm *monitoringv1.ServiceMonitor) (k8slabels.Selector, error) {
	return metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
}
