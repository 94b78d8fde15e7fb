package deploy

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// TestPodSecurityLevels evaluates the DaemonSet's pod with the Pod
// Security Admission library the API server runs: it fails "baseline" and
// "restricted" for exactly the reasons docs/deploy.md gives (host
// namespaces, hostPath volumes, host ports, restricted volume types) and
// for no other, so the namespace's "privileged" label is needed and the
// pod asks for nothing beyond it: no privileged container, no capability,
// root or privilege escalation, which "restricted" would also report.
func TestPodSecurityLevels(t *testing.T) {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[psaapi.Level][]string{
		psaapi.LevelBaseline: {"host namespaces", "hostPath volumes", "hostPort"},
		// restricted reports hostPath among the volume types it forbids.
		psaapi.LevelRestricted: {"host namespaces", "hostPort", "restricted volume types"},
	}
	forEachVariant(t, func(t *testing.T, r *rendered) {
		if r.kustomize != "" && len(r.namespaces) != 1 {
			t.Errorf("the kustomize base renders %d Namespaces, want its own with its Pod Security label", len(r.namespaces))
		}
		tmpl := r.ds.Spec.Template
		for level, reasons := range want {
			var got []string
			for _, res := range eval.EvaluatePod(psaapi.LevelVersion{Level: level, Version: psaapi.LatestVersion()}, &tmpl.ObjectMeta, &tmpl.Spec) {
				if !res.Allowed {
					got = append(got, res.ForbiddenReason)
				}
			}
			slices.Sort(got)
			if diff := cmp.Diff(reasons, got); diff != "" {
				t.Errorf("%s violations (-want +got):\n%s", level, diff)
			}
		}
		for _, ns := range r.namespaces {
			if ns.Name != r.ds.Namespace {
				continue
			}
			if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "privileged" {
				t.Errorf("namespace %s enforces Pod Security level %q; the DaemonSet needs privileged", ns.Name, got)
			}
		}
	})
}
