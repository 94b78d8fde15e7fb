package fakekubelet

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadEnvFile(t *testing.T) {
	got, err := ReadEnvFile(filepath.Join("testdata", "env", "cluster.env"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"CLUSTER_MODE":        "cluster",
		"KUBELET_URL":         "https://127.0.0.1:17250",
		"KUBELET_STATIC_PODS": "guaranteed burstable besteffort",
		"EMPTY":               "",
		"KUBECONFIG":          "/tmp/nodeagent-cluster/pki/admin.kubeconfig",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadEnvFile (-want +got):\n%s", diff)
	}
	if _, err := ReadEnvFile(filepath.Join("testdata", "env", "missing.env")); err == nil {
		t.Error("a missing file reads without error")
	}
}
