package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/kubeapi"
)

// TestIntegrationKubernetesAuth runs --web.kubernetes-auth against a real
// kube-apiserver. With the admin kubeconfig of the integration environment
// (KUBECONFIG, or KUBECONFIG_ADMIN as the real-kubelet tool writes it) it
// creates three service accounts: the agent's, with only the documented
// ClusterRole (create tokenreviews and subjectaccessreviews), a scraper's
// granted get on /metrics and /metrics/*, and one with no grant. The agent
// runs with a kubeconfig holding its own token: the scraper gets 200, the
// other 403 naming the permission, a garbage token 401.
func TestIntegrationKubernetesAuth(t *testing.T) {
	env := fakekubelet.IntegrationEnv(t)
	kc := env["KUBECONFIG"]
	if kc == "" {
		kc = env["KUBECONFIG_ADMIN"]
	}
	if kc == "" {
		t.Skip("the integration environment has no admin kubeconfig (KUBECONFIG or KUBECONFIG_ADMIN): no kube-apiserver")
	}
	admin, err := kubeapi.Options{Kubeconfig: kc}.Config()
	if err != nil {
		t.Fatal(err)
	}
	k := newKubeAdmin(t, admin)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := func(role string) string { return "nodeagent-auth-it-" + role + "-" + hex.EncodeToString(suffix) }
	const ns = "default"

	agentSA, scraperSA, nobodySA := name("agent"), name("scraper"), name("nobody")
	for _, sa := range []string{agentSA, scraperSA, nobodySA} {
		k.create(k.core.Post().Namespace(ns).Resource("serviceaccounts"), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}},
			k.core.Delete().Namespace(ns).Resource("serviceaccounts").Name(sa))
	}
	grant := func(sa string, rules ...rbacv1.PolicyRule) {
		k.create(k.rbac.Post().Resource("clusterroles"), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: sa}, Rules: rules},
			k.rbac.Delete().Resource("clusterroles").Name(sa))
		k.create(k.rbac.Post().Resource("clusterrolebindings"), &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sa},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: sa},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
		}, k.rbac.Delete().Resource("clusterrolebindings").Name(sa))
	}
	// The rules docs/security.md documents.
	grant(agentSA,
		rbacv1.PolicyRule{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		rbacv1.PolicyRule{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}})
	grant(scraperSA, rbacv1.PolicyRule{NonResourceURLs: []string{"/metrics", "/metrics/*"}, Verbs: []string{"get"}})

	user := func(sa string) string { return "system:serviceaccount:" + ns + ":" + sa }
	// RBAC reaches the authorizer through an informer: wait until it has.
	k.waitAllowed(user(agentSA), &authzv1.ResourceAttributes{Group: "authentication.k8s.io", Resource: "tokenreviews", Verb: "create"}, nil)
	k.waitAllowed(user(scraperSA), nil, &authzv1.NonResourceAttributes{Path: "/metrics/node", Verb: "get"})

	agentKubeconfig := k.kubeconfigFor(k.token(ns, agentSA))
	scraperToken, nobodyToken := k.token(ns, scraperSA), k.token(ns, nobodySA)
	_, addr, _ := runAgent(t, "--web.kubernetes-auth", "--kubeconfig="+agentKubeconfig)
	c := skipVerify()
	url := "https://" + addr + "/metrics/node"

	resp, body := do(t, c, url, scraperToken)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "node_load1") {
		t.Errorf("authorised service account: %d %.300q, want 200 with metrics", resp.StatusCode, body)
	}
	resp, body = do(t, c, url, nobodyToken)
	want := `forbidden: user "` + user(nobodySA) + `" may not get nonResourceURL "/metrics/node"; grant it with a ClusterRole rule {nonResourceURLs: ["/metrics/node"], verbs: ["get"]}`
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, want) {
		t.Errorf("unauthorised service account: %d %q, want 403 %q", resp.StatusCode, body, want)
	}
	t.Logf("403 as Prometheus gets it: %s", strings.TrimSpace(body))
	resp, body = do(t, c, url, "garbage-token")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("garbage token: %d %q, want 401", resp.StatusCode, body)
	}
	t.Logf("401 as Prometheus gets it: %s", strings.TrimSpace(body))
}

// kubeAdmin creates what the test needs with the admin's credentials and
// removes it when the test ends. It uses REST clients over the few types
// it needs, as nodeagent does (internal/kubeapi).
type kubeAdmin struct {
	t                 *testing.T
	cfg               *rest.Config
	core, rbac, authz *rest.RESTClient
}

func newKubeAdmin(t *testing.T, cfg *rest.Config) *kubeAdmin {
	t.Helper()
	k := &kubeAdmin{t: t, cfg: cfg}
	var err error
	// TokenRequest, an authentication.k8s.io type, is posted to a core
	// subresource: the core client knows both.
	if k.core, err = kubeapi.RESTClient(cfg, corev1.SchemeGroupVersion, func(s *runtime.Scheme) error {
		if err := corev1.AddToScheme(s); err != nil {
			return err
		}
		return authnv1.AddToScheme(s)
	}); err != nil {
		t.Fatal(err)
	}
	if k.rbac, err = kubeapi.RESTClient(cfg, rbacv1.SchemeGroupVersion, rbacv1.AddToScheme); err != nil {
		t.Fatal(err)
	}
	if k.authz, err = kubeapi.RESTClient(cfg, authzv1.SchemeGroupVersion, authzv1.AddToScheme); err != nil {
		t.Fatal(err)
	}
	return k
}

// create sends req with obj and schedules del for the end of the test.
func (k *kubeAdmin) create(req *rest.Request, obj runtime.Object, del *rest.Request) {
	k.t.Helper()
	if err := req.Body(obj).Do(k.t.Context()).Error(); err != nil && !apierrors.IsAlreadyExists(err) {
		k.t.Fatalf("creating %T: %v", obj, err)
	}
	k.t.Cleanup(func() { // t.Context() has ended by now
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := del.Do(ctx).Error(); err != nil && !apierrors.IsNotFound(err) {
			k.t.Errorf("cleaning up %T: %v", obj, err)
		}
	})
}

// token asks the TokenRequest API for a short-lived token of sa.
func (k *kubeAdmin) token(ns, sa string) string {
	k.t.Helper()
	expiry := int64(600)
	var tr authnv1.TokenRequest
	err := k.core.Post().Namespace(ns).Resource("serviceaccounts").Name(sa).SubResource("token").
		Body(&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &expiry}}).
		Do(k.t.Context()).Into(&tr)
	if err != nil || tr.Status.Token == "" {
		k.t.Fatalf("TokenRequest for %s/%s: %v", ns, sa, err)
	}
	return tr.Status.Token
}

// waitAllowed polls a SubjectAccessReview until user may do what the
// attributes say.
func (k *kubeAdmin) waitAllowed(user string, ra *authzv1.ResourceAttributes, na *authzv1.NonResourceAttributes) {
	k.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var sar authzv1.SubjectAccessReview
		err := k.authz.Post().Resource("subjectaccessreviews").Body(&authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"}, ResourceAttributes: ra, NonResourceAttributes: na,
		}}).Do(k.t.Context()).Into(&sar)
		if err == nil && sar.Status.Allowed {
			return
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("%s is still not allowed %+v %+v after 30s: %v", user, ra, na, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kubeconfigFor writes a kubeconfig for the admin's API server with token.
func (k *kubeAdmin) kubeconfigFor(token string) string {
	k.t.Helper()
	ca := k.cfg.CAData
	if len(ca) == 0 && k.cfg.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(k.cfg.CAFile); err != nil {
			k.t.Fatal(err)
		}
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["it"] = &clientcmdapi.Cluster{Server: k.cfg.Host, CertificateAuthorityData: ca, InsecureSkipTLSVerify: k.cfg.Insecure}
	cfg.AuthInfos["it"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["it"] = &clientcmdapi.Context{Cluster: "it", AuthInfo: "it"}
	cfg.CurrentContext = "it"
	path := filepath.Join(k.t.TempDir(), "agent.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		k.t.Fatal(err)
	}
	return path
}
