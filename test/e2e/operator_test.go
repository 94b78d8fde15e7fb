package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestPrometheusOperatorScrapeConfig runs the Prometheus Operator against
// the cluster as the e2e flow will for nodeagent's ServiceMonitors: the
// operator's CRDs are applied, the operator runs as a host process with the
// admin kubeconfig, and for a Prometheus (no replicas: nothing to pull) and
// a ServiceMonitor in the test's namespace it writes the scrape
// configuration, which promtool accepts.
func TestPrometheusOperatorScrapeConfig(t *testing.T) {
	env := need(t)
	if env["PROMETHEUS_OPERATOR_BIN"] == "" || env["PROMETHEUS_OPERATOR_CRDS"] == "" {
		t.Fatal("the env file lacks PROMETHEUS_OPERATOR_BIN or PROMETHEUS_OPERATOR_CRDS (cluster.sh build-e2e, then up cluster)")
	}
	cs := clientset(t, env)
	a := newApplier(t, env)
	crds, err := filepath.Glob(filepath.Join(env["PROMETHEUS_OPERATOR_CRDS"], "*.yaml"))
	if err != nil || len(crds) == 0 {
		t.Fatalf("no CRDs in %s: %v", env["PROMETHEUS_OPERATOR_CRDS"], err)
	}
	t.Logf("applied %d CRDs", a.applyFiles(t, "", crds...))

	ns := testNamespace(t, cs)
	op := exec.Command(env["PROMETHEUS_OPERATOR_BIN"], "--web.listen-address=127.0.0.1:"+env["PROMETHEUS_OPERATOR_PORT"], "--namespaces="+ns)
	op.Env = append(os.Environ(), "KUBECONFIG="+env["KUBECONFIG"])
	var log bytes.Buffer
	op.Stdout, op.Stderr = &log, &log
	if err := op.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = op.Process.Kill()
		_ = op.Wait()
		if t.Failed() {
			t.Logf("operator log:\n%s", log.String())
		}
	})

	if n := a.applyFiles(t, ns, filepath.Join("testdata", "operator", "monitoring.yaml")); n != 3 {
		t.Fatalf("applied %d objects of monitoring.yaml; want 3", n)
	}
	// The operator writes the configuration gzipped into a Secret named
	// after the Prometheus.
	var cfg []byte
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for cfg == nil {
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, "prometheus-e2e", metav1.GetOptions{})
		if err == nil && len(s.Data["prometheus.yaml.gz"]) > 0 {
			zr, err := gzip.NewReader(bytes.NewReader(s.Data["prometheus.yaml.gz"]))
			if err != nil {
				t.Fatal(err)
			}
			if cfg, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(cfg), "serviceMonitor/"+ns+"/podnet/0") {
				cfg = nil // an earlier generation, before the ServiceMonitor was seen
			}
		}
		if cfg != nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no scrape configuration with job serviceMonitor/%s/podnet/0 from the operator", ns)
		case <-time.After(time.Second):
		}
	}
	jobs, err := jobNames(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "prometheus.yaml")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(env["PROMTOOL_BIN"], "check", "config", "--syntax-only", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s\n%s", err, out, cfg)
	}
	t.Logf("the operator's configuration has jobs %v", jobs)
	gvr := schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "servicemonitors"}
	if _, err := a.dyn.Resource(gvr).Namespace(ns).Get(context.Background(), "podnet", metav1.GetOptions{}); err != nil {
		t.Errorf("ServiceMonitor: %v", err)
	}
}
