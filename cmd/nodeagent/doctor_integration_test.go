package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/kubeapi"
	"github.com/nodeagent/nodeagent/internal/manifests"
)

// TestIntegrationDoctor runs doctor against the real kubelet and
// kube-apiserver of the integration environment, which has no
// metrics-server. It binds the nodeagent-doctor ClusterRole, as
// docs/troubleshooting.md writes it, to the agent's ServiceAccount (the
// environment's KUBELET_TOKEN_FILE), and runs doctor as that identity (its
// token for the kubelet and in the kubeconfig, as in the agent's pod): the
// kubelet checks pass and metrics-server.apiservice fails naming the
// missing APIService and the fix. With the token of a ServiceAccount
// without rights (KUBELET_FORBIDDEN_TOKEN_FILE) the RBAC checks name the
// missing rules.
func TestIntegrationDoctor(t *testing.T) {
	env := fakekubelet.IntegrationEnv(t)
	for _, k := range []string{"KUBECONFIG", "KUBELET_TOKEN_FILE", "KUBELET_FORBIDDEN_TOKEN_FILE", "KUBELET_URL", "KUBELET_CA", "KUBELET_NODE_NAME"} {
		if env[k] == "" {
			t.Skipf("the integration environment has no %s: no kube-apiserver (kubelet mode)", k)
		}
	}
	admin, err := kubeapi.Options{Kubeconfig: env["KUBECONFIG"]}.Config()
	if err != nil {
		t.Fatal(err)
	}
	k := newKubeAdmin(t, admin)
	agentToken, nobodyToken := readToken(t, env["KUBELET_TOKEN_FILE"]), readToken(t, env["KUBELET_FORBIDDEN_TOKEN_FILE"])
	agentUser, nobodyUser := tokenUser(t, agentToken), tokenUser(t, nobodyToken)
	t.Logf("the agent is %s, the forbidden one %s", agentUser, nobodyUser)

	// The documented ClusterRole under a name of this run, bound to the
	// agent's ServiceAccount.
	role := documentedDoctorRole(t)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	role.Name = "nodeagent-doctor-it-" + hex.EncodeToString(suffix)
	ns, sa := splitServiceAccount(t, agentUser)
	k.create(k.rbac.Post().Resource("clusterroles"), &role, k.rbac.Delete().Resource("clusterroles").Name(role.Name))
	k.create(k.rbac.Post().Resource("clusterrolebindings"), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	}, k.rbac.Delete().Resource("clusterrolebindings").Name(role.Name))
	k.waitAllowed(agentUser, &authzv1.ResourceAttributes{Group: "apiregistration.k8s.io", Resource: "apiservices", Verb: "get", Name: "v1beta1.metrics.k8s.io"}, nil)

	// No agent runs here: its derived address is a closed port.
	closed := "127.0.0.1:" + strconv.Itoa(fakekubelet.ClosedPort(t))
	doctorAs := func(token string, args ...string) (doctorJSON, string, int) {
		t.Helper()
		tokenFile := writeFile(t, t.TempDir(), "token", []byte(token))
		base := []string{"doctor", "--no-agent.inherit-flags", "--kubelet.url=" + env["KUBELET_URL"], "--kubelet.ca-file=" + env["KUBELET_CA"],
			"--kubelet.token-file=" + tokenFile, "--kubeconfig=" + k.kubeconfigFor(token), "--node.name=" + env["KUBELET_NODE_NAME"],
			"--web.listen-address=" + closed}
		var table, out, errOut bytes.Buffer
		run(context.Background(), append(append(base, args...), "-o", "table"), nil, &table, &errOut)
		code := run(context.Background(), append(append(base, args...), "-o", "json"), nil, &out, &errOut)
		var doc doctorJSON
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("%v\n%s\n%s", err, out.String(), errOut.String())
		}
		return doc, table.String(), code
	}
	type want struct{ verdict, detail, fix string }
	expect := func(doc doctorJSON, table string, wants map[string]want) {
		t.Helper()
		byID := doc.byID()
		for id, w := range wants {
			c := byID[id]
			if c.Verdict != w.verdict || !strings.Contains(c.Detail, w.detail) || !strings.Contains(c.Fix, w.fix) {
				t.Errorf("%s: %s %q (fix %q), want %s with %q (fix %q)", id, c.Verdict, c.Detail, c.Fix, w.verdict, w.detail, w.fix)
			}
		}
		if t.Failed() {
			t.Logf("report:\n%s", table)
		}
	}

	doc, table, code := doctorAs(agentToken)
	t.Logf("as the agent's ServiceAccount:\n%s", table)
	wants := map[string]want{
		"metrics-server.apiservice": {"fail", "the APIService v1beta1.metrics.k8s.io is missing: metrics-server is not installed", "install metrics-server"},
		"metrics-server.node":       {"skipped", "see metrics-server.apiservice", ""},
		"api.access":                {"ok", "doctor is " + agentUser, ""},
		"containers.pods":           {"ok", "pods of the kubelet's /pods", ""},
		// The documented role lets these read: absent is ok, not "may not".
		"metrics-adapters.custom":   {"ok", "no custom adapter", ""},
		"metrics-adapters.external": {"ok", "no external adapter", ""},
	}
	for _, id := range []string{"kubelet.reachable", "kubelet.tls", "kubelet.auth", "kubelet.rbac.metrics", "kubelet.rbac.pods", "kubelet.readonly-port", "kubelet.anonymous-auth"} {
		wants[id] = want{verdict: "ok"}
	}
	expect(doc, table, wants)
	if ksm := doc.byID()["kube-state-metrics.present"]; strings.Contains(ksm.Detail, "may not") {
		t.Errorf("kube-state-metrics.present: %q; the documented role allows listing", ksm.Detail)
	}
	if code != 1 || doc.Summary.ExitCode != 1 {
		t.Errorf("exit code %d (summary %d), want 1: metrics-server is missing", code, doc.Summary.ExitCode)
	}
	doc, table, code = doctorAs(agentToken, "why", "kubectl-top")
	t.Logf("why kubectl-top:\n%s", table)
	if s := doc.Symptom; s == nil || s.Check != "metrics-server.apiservice" || s.Verdict != "fail" || code != 1 {
		t.Errorf("why kubectl-top concluded %+v (exit %d), want metrics-server.apiservice failing", doc.Symptom, code)
	}

	doc, table, code = doctorAs(nobodyToken)
	t.Logf("as a ServiceAccount without rights:\n%s", table)
	expect(doc, table, map[string]want{
		"kubelet.auth": {"ok", "the kubelet accepts", ""},
		"kubelet.rbac.metrics": {"fail", "the kubelet denies " + nobodyUser + " get nodes/metrics",
			`add the rule {apiGroups: [""], resources: ["nodes/metrics"], verbs: ["get"]} to the ClusterRole bound to ` + nobodyUser},
		"kubelet.rbac.pods": {"fail", "RBAC denies it (SelfSubjectAccessReview)",
			`add the rule {apiGroups: [""], resources: ["nodes/pods"], verbs: ["get"]} to the ClusterRole bound to ` + nobodyUser},
		"metrics-server.apiservice": {"warn", "may not read the APIService", "nodeagent-doctor"},
	})
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	doc, table, _ = doctorAs(nobodyToken, "why", "kubelet-403")
	t.Logf("why kubelet-403:\n%s", table)
	if s := doc.Symptom; s == nil || s.Check != "kubelet.rbac.metrics" || !strings.Contains(s.Fix, `resources: ["nodes/metrics"]`) {
		t.Errorf("why kubelet-403 concluded %+v, want kubelet.rbac.metrics with its rule", doc.Symptom)
	}
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// tokenUser reads the ServiceAccount a token names from its claims (the
// test only needs the name; the API server checks the token).
func tokenUser(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatal("the token is not a JWT")
	}
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(claims, &c); err != nil || c.Sub == "" {
		t.Fatalf("token claims %s: %v", claims, err)
	}
	return c.Sub
}

func splitServiceAccount(t *testing.T, user string) (ns, name string) {
	t.Helper()
	m := regexp.MustCompile(`^system:serviceaccount:([^:]+):([^:]+)$`).FindStringSubmatch(user)
	if m == nil {
		t.Fatalf("%q is no ServiceAccount", user)
	}
	return m[1], m[2]
}

// documentedDoctorRole reads the nodeagent-doctor ClusterRole from
// docs/troubleshooting.md.
func documentedDoctorRole(t *testing.T) rbacv1.ClusterRole {
	t.Helper()
	role, err := manifests.DocumentedClusterRole("../../docs/troubleshooting.md", "nodeagent-doctor")
	if err != nil {
		t.Fatal(err)
	}
	return *role
}
