package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// TestPrometheusConfigTemplate fills the e2e Prometheus configuration from
// an env file of the test cluster's shape (no cluster needed): every job is
// there and every address comes from the file.
func TestPrometheusConfigTemplate(t *testing.T) {
	env, err := fakekubelet.ReadEnvFile("testdata/cluster.env")
	if err != nil {
		t.Fatal(err)
	}
	cfg, jobs, err := prometheusConfig(env, 17080)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"prometheus", "kube-state-metrics", "kube-state-metrics-telemetry", "kubelet", "kubelet-cadvisor", "apiserver"}
	if diff := cmp.Diff(want, jobs); diff != "" {
		t.Errorf("jobs (-want +got):\n%s", diff)
	}
	for _, s := range []string{"'127.0.0.1:17090'", "'127.0.0.1:17080'", "'127.0.0.1:17081'", "'127.0.0.1:17250'", "'127.0.0.1:17443'",
		"credentials_file: /tmp/nodeagent-cluster/tokens/node-agent.token", "ca_file: /tmp/nodeagent-cluster/pki/ca.crt"} {
		if !strings.Contains(string(cfg), s) {
			t.Errorf("configuration lacks %s:\n%s", s, cfg)
		}
	}

	delete(env, "KUBELET_TOKEN_FILE")
	if _, _, err := prometheusConfig(env, 17080); err == nil {
		t.Error("an env file without KUBELET_TOKEN_FILE filled the template")
	}
}

func TestDecodeManifests(t *testing.T) {
	objs, err := decodeManifests([]byte("---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n# nothing\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	if diff := cmp.Diff([]string{"Service/a", "ConfigMap/b"}, got); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
}
