package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
)

// TestDecodeStrict: a misspelt or repeated field, an unknown kind, and a
// Certificate field the struct lacks all fail; a good stream decodes into
// the API types.
func TestDecodeStrict(t *testing.T) {
	const good = `# a comment-only document is skipped
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: a, namespace: ns1}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      containers: [{name: c, image: i}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: m}
spec:
  selector: {}
  endpoints: [{port: https-metrics, honorLabels: true}]
`
	objs, err := Decode([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("%d objects, want 2", len(objs))
	}
	if ds, ok := objs[0].Obj.(*appsv1.DaemonSet); !ok || ds.Spec.Template.Spec.Containers[0].Image != "i" {
		t.Errorf("first object %#v", objs[0].Obj)
	}
	for name, bad := range map[string]string{
		"misspelt field":     strings.Replace(good, "containers:", "container:", 1),
		"repeated field":     strings.Replace(good, "metadata: {name: a, namespace: ns1}", "metadata: {name: a, name: b}", 1),
		"misplaced field":    strings.Replace(good, "endpoints: [{port: https-metrics, honorLabels: true}]", "endpoints: [{port: https-metrics}]\n  honorLabels: true", 1),
		"unknown kind":       strings.Replace(good, "kind: ServiceMonitor", "kind: ServiceWatcher", 1),
		"certificate field":  "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec: {secretName: s, isCA: true}\n",
		"document sans kind": "metadata: {name: x}\n",
	} {
		_, err := Decode([]byte(bad))
		if err == nil {
			t.Errorf("%s: decoded without error", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestSplitBySource(t *testing.T) {
	got := SplitBySource("---\n# Source: nodeagent/templates/a.yaml\nkind: A\n---\n# Source: nodeagent/templates/b.yaml\nkind: B\n---\n# Source: nodeagent/templates/a.yaml\nkind: A2\n")
	want := map[string]string{"templates/a.yaml": "kind: A\n---\nkind: A2\n", "templates/b.yaml": "kind: B\n"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestDocumentedClusterRole: the role is found among other yaml blocks,
// strictly decoded; a misspelt field or an absent name is an error.
func TestDocumentedClusterRole(t *testing.T) {
	dir := t.TempDir()
	doc := "# RBAC\n\n```yaml\nkey: value\n```\n\n```yaml\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: x\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: x}\n```\n\n" +
		"```yaml\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: x\nrules:\n  - apiGroups: [\"\"]\n    resources: [\"services\"]\n    verbs: [\"list\"]\n```\n"
	path := filepath.Join(dir, "doc.md")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	role, err := DocumentedClusterRole(path, "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(role.Rules) != 1 || role.Rules[0].Resources[0] != "services" {
		t.Errorf("rules %+v", role.Rules)
	}
	if _, err := DocumentedClusterRole(path, "y"); err == nil {
		t.Error("no error for a role the file does not hold")
	}
	bad := strings.Replace(doc, "    verbs:", "    verb:", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := DocumentedClusterRole(path, "x"); err == nil {
		t.Error("a misspelt field was accepted")
	}
}
