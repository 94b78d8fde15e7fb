package deploy

import (
	"os"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/manifests"
)

// TestHelmLint runs helm lint --strict (warnings are errors) over the chart
// with its default values and each variant's.
func TestHelmLint(t *testing.T) {
	linted := 0
	for _, v := range variants {
		if v.kustomize != "" {
			continue
		}
		if err := manifests.HelmLint(chartDir, namespace, v.values); err != nil {
			t.Errorf("%s: helm lint --strict:\n%v", v.name, err)
		}
		linted++
	}
	if linted == 0 {
		t.Fatal("no chart variant linted")
	}
	t.Logf("%d value sets linted", linted)
}

// TestChartVersion: the chart's version and appVersion are the
// repository's VERSION, so the default image tag is the version built.
func TestChartVersion(t *testing.T) {
	b, err := os.ReadFile("../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(string(b))
	var chart struct {
		APIVersion  string   `json:"apiVersion"`
		Name        string   `json:"name"`
		Description string   `json:"description"`
		Type        string   `json:"type"`
		Version     string   `json:"version"`
		AppVersion  string   `json:"appVersion"`
		KubeVersion string   `json:"kubeVersion"`
		Home        string   `json:"home"`
		Sources     []string `json:"sources"`
		Keywords    []string `json:"keywords"`
	}
	readYAML(t, chartDir+"/Chart.yaml", &chart)
	if chart.Version != version || chart.AppVersion != version {
		t.Errorf("Chart.yaml version %q, appVersion %q; VERSION is %q", chart.Version, chart.AppVersion, version)
	}
	r := render(t, variants[0])
	if want := "ghcr.io/nodeagent/nodeagent:" + version; r.container(t).Image != want {
		t.Errorf("image %s, want %s", r.container(t).Image, want)
	}
}

// TestChartRefusesContradictions: values that contradict each other, or
// would leave the metrics port open, fail the render naming the values.
func TestChartRefusesContradictions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"no authentication", map[string]any{"web": map[string]any{"kubernetesAuth": false}}, "web.kubernetesAuth=false"},
		{"two certificate sources", map[string]any{"web": map[string]any{"tls": map[string]any{"existingSecret": "x",
			"certManager": map[string]any{"enabled": true, "issuerRef": map[string]any{"name": "ca"}}}}}, "two sources"},
		{"kubelet CA and insecure", map[string]any{"kubelet": map[string]any{"insecureSkipVerify": true, "caConfigMap": "ca"}}, "contradict"},
		{"resource endpoint without its collector", map[string]any{"serviceMonitor": map[string]any{"endpoints": map[string]any{"resource": map[string]any{"enabled": true}}}}, "collectors.enable: [resource]"},
		{"client certificates without a CA", map[string]any{"web": map[string]any{"tls": map[string]any{"clientAuth": true}}}, "needs a CA"},
		{"cert-manager without an issuer", map[string]any{"web": map[string]any{"tls": map[string]any{"certManager": map[string]any{"enabled": true}}}}, "issuerRef.name"},
		{"web config without tlsConfig", map[string]any{"web": map[string]any{"configSecret": "web"}}, "serviceMonitor.tlsConfig"},
	} {
		_, err := manifests.HelmTemplate(chartDir, release, namespace, tc.values)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

// TestChartNotes: NOTES.txt says how to check the install: the rollout, a
// scrape with a token the agent accepts, and the Prometheus queries.
func TestChartNotes(t *testing.T) {
	rel, err := manifests.HelmTemplate(chartDir, release, namespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kubectl -n nodeagent rollout status daemonset/nodeagent",
		"kubectl -n monitoring create token prometheus-k8s",
		`curl -sk -H "Authorization: Bearer $TOKEN" "https://$NODE_IP:9812/metrics/nodeagent"`,
		"nodeagent_scrape_collector_success == 0",
		`kubectl -n nodeagent exec "$POD" -- /bin/nodeagent doctor`,
		`metrics_path="/metrics/cadvisor"`,
	} {
		if !strings.Contains(rel.Notes, want) {
			t.Errorf("NOTES lack %q:\n%s", want, rel.Notes)
		}
	}
}
