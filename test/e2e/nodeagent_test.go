package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/nodeagent/nodeagent/internal/manifests"
)

// The deployment under test, as docs/deploy.md installs it.
const (
	agentNamespace = "nodeagent"
	agentRelease   = "nodeagent"
	agentPort      = "9812"
	// kube-prometheus' Prometheus service account, which the manifests'
	// scraper RBAC names.
	promNamespace = "monitoring"
	promAccount   = "prometheus-k8s"
	promName      = "nodeagent-e2e"
	demoNamespace = "demo"
	demoContainer = "work"
	// The alert of deploy/helm/nodeagent/files/nodeagent.rules.yml for an
	// open read-only port, and the `for:` the test gives it (below).
	readOnlyAlert    = "NodeagentKubeletReadOnlyPortOpen"
	readOnlyAlertFor = "30s"
)

// The repository's own deployment files, as the tests read them.
var (
	kustomizeDir = filepath.Join("..", "..", "deploy", "kubernetes")
	chartDir     = filepath.Join("..", "..", "deploy", "helm", "nodeagent")
	kpRulesDir   = filepath.Join("..", "..", "deploy", "testdata", "kube-prometheus")
	clusterSh    = filepath.Join("..", "cluster", "cluster.sh")
)

// TestNodeagentEndToEnd deploys nodeagent's image on the test cluster the
// two documented ways and checks what a user of kube-prometheus would see:
//
//   - the kustomize base (rendered with kustomize's library, as kubectl
//     apply -k does) with the image rewritten to the imported one: the
//     DaemonSet's pod becomes Ready, and the agent's scraper authentication
//     lets Prometheus' service account in (200), refuses an account without
//     the scraper RBAC (403) and a request without a token (401), the agent
//     runs one Go thread under the 500m CPU limit, and its log says it
//     released its start-up pages; deleted.
//   - the Helm chart (rendered with Helm's library as release nodeagent,
//     applied server-side): the same, then the Prometheus Operator turns its
//     ServiceMonitor into scrape jobs, and a real Prometheus runs that
//     configuration with Prometheus' own service-account token, with
//     kubernetes-mixin's and node-mixin's rules (kube-prometheus' files) and
//     nodeagent's PrometheusRule, next to kube-state-metrics and demo pods:
//     every endpoint is up, nodeagent doctor exec'd in the pod gives every
//     check the verdict this cluster calls for (doctor_test.go), the
//     container recording rules name the demo
//     pods (which have a CPU limit: CPUThrottlingHigh's two families are
//     there for them, on this hybrid node too), the node rules have values, a stopped kubelet shows as the
//     kubelet's /metrics down with KubeletDown pending while cAdvisor and
//     node series keep coming, an opened read-only port fires nodeagent's
//     alert; uninstalled, nothing is left.
//
// The harness lacks kube-proxy, so the pods reach the API server at
// 127.0.0.1 (KUBERNETES_SERVICE_HOST/PORT patched into the DaemonSet, as
// a post-renderer would) and the agent the kubelet at its loopback port
// (--kubelet.url). Prometheus runs as a host process, so the token path of
// the operator's configuration is pointed at a file holding Prometheus'
// service-account token. A summary table is printed at the end.
func TestNodeagentEndToEnd(t *testing.T) {
	env := need(t)
	imageTar := os.Getenv("NODEAGENT_E2E_IMAGE")
	if imageTar == "" {
		t.Fatal("NODEAGENT_E2E_IMAGE is unset: run make e2e-cluster, which builds the image and sets it")
	}
	for _, k := range []string{"CONTAINERD_METRICS_URL", "PROMETHEUS_OPERATOR_CRDS", "PROMETHEUS_OPERATOR_BIN", "PROMETHEUS_BIN", "PROMTOOL_BIN"} {
		if env[k] == "" {
			t.Fatalf("the env file lacks %s: cluster.sh build-e2e, then down and up cluster with this checkout's test/cluster", k)
		}
	}
	sum := &summary{}
	t.Cleanup(func() {
		fmt.Println("\nTestNodeagentEndToEnd summary:")
		sum.print(os.Stdout)
	})
	e := &e2eEnv{env: env, cs: clientset(t, env), a: newApplier(t, env), dir: t.TempDir()}

	if !sum.step(t, "import image", func(t *testing.T) (string, error) {
		ref, err := e.importImage(imageTar)
		e.image = ref
		return "cluster.sh import " + filepath.Base(imageTar) + " → " + ref, err
	}) {
		t.FailNow()
	}
	if !sum.step(t, "operator CRDs", func(t *testing.T) (string, error) {
		crds, err := filepath.Glob(filepath.Join(env["PROMETHEUS_OPERATOR_CRDS"], "*.yaml"))
		if err != nil || len(crds) == 0 {
			return "", fmt.Errorf("no CRDs in %s: %v", env["PROMETHEUS_OPERATOR_CRDS"], err)
		}
		return fmt.Sprintf("%d objects applied", e.a.applyFiles(t, "", crds...)), nil
	}) {
		t.FailNow()
	}
	// Cleanups go to the test (or subtest) whose objects they are, never to
	// the step that made them: a step's own cleanups run when it ends.
	if !sum.step(t, "prometheus service account", func(*testing.T) (string, error) {
		t.Cleanup(func() {
			_ = e.cs.CoreV1().Namespaces().Delete(context.Background(), promNamespace, metav1.DeleteOptions{})
		})
		return e.prometheusAccount()
	}) {
		t.FailNow()
	}

	t.Run("kustomize", func(t *testing.T) { e.testKustomize(t, sum) })
	t.Run("helm", func(t *testing.T) { e.testHelm(t, sum) })
}

// e2eEnv is the state the steps share.
type e2eEnv struct {
	env   map[string]string
	cs    *kubernetes.Clientset
	a     *applier
	dir   string
	image string // the imported image's reference
	// promToken is a token of monitoring/prometheus-k8s; promTokenFile holds it.
	promToken, promTokenFile string
}

// importImage imports the image tarball into the cluster's containerd with
// cluster.sh import and returns the reference it is tagged with.
func (e *e2eEnv) importImage(tar string) (string, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(tar) })
	if err != nil {
		return "", fmt.Errorf("reading the manifest of %s: %w", tar, err)
	}
	if len(m) != 1 || len(m[0].RepoTags) != 1 {
		return "", fmt.Errorf("%s: want one image with one tag, got %+v", tar, m)
	}
	if out, err := e.clusterSh("import", tar); err != nil {
		return "", fmt.Errorf("cluster.sh import %s: %w\n%s", tar, err, out)
	}
	return m[0].RepoTags[0], nil
}

// clusterSh runs this checkout's test/cluster/cluster.sh on the running
// cluster.
func (e *e2eEnv) clusterSh(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, clusterSh, args...)
	cmd.Env = append(os.Environ(), "CLUSTER_DIR="+e.env["CLUSTER_DIR"])
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// prometheusAccount makes kube-prometheus' Prometheus identity,
// monitoring/prometheus-k8s, and a token of it in a file.
func (e *e2eEnv) prometheusAccount() (string, error) {
	ctx := context.Background()
	if _, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: promNamespace}}, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("namespace %s: %w", promNamespace, err)
	}
	if _, err := e.cs.CoreV1().ServiceAccounts(promNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: promAccount}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("service account %s/%s: %w", promNamespace, promAccount, err)
	}
	tok, err := e.token(promNamespace, promAccount)
	if err != nil {
		return "", err
	}
	e.promToken = tok
	e.promTokenFile = filepath.Join(e.dir, "prometheus-k8s.token")
	if err := os.WriteFile(e.promTokenFile, []byte(tok), 0o600); err != nil {
		return "", err
	}
	return "token of " + promNamespace + "/" + promAccount + " in " + e.promTokenFile, nil
}

// token is a one-hour token of the service account ns/name (TokenRequest).
func (e *e2eEnv) token(ns, name string) (string, error) {
	exp := int64(3600)
	var last error
	// The service account controller may not have seen a new account yet.
	for i := 0; i < 20; i++ {
		tr, err := e.cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
		if err == nil {
			return tr.Status.Token, nil
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	return "", fmt.Errorf("token of %s/%s: %w", ns, name, last)
}

// ---- the two ways to deploy

func (e *e2eEnv) testKustomize(t *testing.T, sum *summary) {
	var objs []*unstructured.Unstructured
	if !sum.step(t, "kustomize: render and apply", func(*testing.T) (string, error) {
		stream, err := manifests.Kustomize(kustomizeDir)
		if err != nil {
			return "", err
		}
		if objs, err = decodeManifests(stream); err != nil {
			return "", fmt.Errorf("decoding the kustomize build of %s: %w", kustomizeDir, err)
		}
		// What an overlay would set for this cluster: the image (kustomize
		// edit set image), the runtime's pause image, the kubelet's
		// loopback address and the API server's.
		if err := e.adaptDaemonSet(objs, true, e.harnessArgs()); err != nil {
			return "", err
		}
		t.Cleanup(func() {
			if _, err := e.deleteAll(objs, agentNamespace); err != nil {
				t.Errorf("deleting the kustomize objects: %v", err)
			}
		})
		kinds, err := e.applyAll(objs)
		return fmt.Sprintf("%d objects (%s), image %s", len(objs), kinds, e.image), err
	}) {
		return
	}
	sum.step(t, "kustomize: pod security level", func(*testing.T) (string, error) {
		return e.podSecurity(objs)
	})
	e.testAgentPod(t, sum, "kustomize")
	sum.step(t, "kustomize: delete", func(t *testing.T) (string, error) {
		return e.deleteAll(objs, agentNamespace)
	})
}

func (e *e2eEnv) testHelm(t *testing.T, sum *summary) {
	// repository:tag, the repository possibly with a registry's port.
	i := strings.LastIndex(e.image, ":")
	if i < strings.LastIndex(e.image, "/") {
		t.Fatalf("image %s has no tag", e.image)
	}
	repo, tag := e.image[:i], e.image[i+1:]
	args := make([]any, 0, 4)
	for _, a := range e.harnessArgs() {
		args = append(args, a)
	}
	values := map[string]any{
		"image":     map[string]any{"repository": repo, "tag": tag},
		"kubelet":   map[string]any{"sandboxImage": e.env["POD_IMAGE"]},
		"extraArgs": args,
		// Short intervals so that rates have two samples within a minute;
		// the harness' containerd serves its metrics, so the runtime
		// endpoint is on.
		"serviceMonitor": map[string]any{"interval": "10s", "scrapeTimeout": "5s",
			"endpoints": map[string]any{"runtime": map[string]any{"enabled": true}}},
	}
	var objs []*unstructured.Unstructured
	if !sum.step(t, "helm: install "+agentRelease, func(*testing.T) (string, error) {
		rel, err := manifests.HelmTemplate(chartDir, agentRelease, agentNamespace, values)
		if err != nil {
			return "", err
		}
		if objs, err = decodeManifests([]byte(rel.Manifest)); err != nil {
			return "", fmt.Errorf("decoding the chart %s rendered: %w", chartDir, err)
		}
		// The API server's loopback address, as a post-renderer would
		// add it; the image and flags came from the values.
		if err := e.adaptDaemonSet(objs, false, nil); err != nil {
			return "", err
		}
		// As docs/deploy.md says: the namespace and its Pod Security label
		// before helm install.
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: agentNamespace,
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}}
		if err := e.waitNamespaceGone(agentNamespace, 3*time.Minute); err != nil {
			return "", err
		}
		if _, err := e.cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
			return "", fmt.Errorf("namespace %s: %w", agentNamespace, err)
		}
		nsObj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": agentNamespace}}}
		t.Cleanup(func() {
			if _, err := e.deleteAll(append(objs, nsObj), agentNamespace); err != nil {
				t.Errorf("deleting the release: %v", err)
			}
		})
		kinds, err := e.applyAll(objs)
		return fmt.Sprintf("%d objects (%s) in namespace %s (enforce: privileged)", len(objs), kinds, agentNamespace), err
	}) {
		return
	}
	if !e.testAgentPod(t, sum, "helm") {
		sum.skip("helm: prometheus", "the agent is not ready")
	} else {
		e.testPrometheus(t, sum, objs)
	}
	sum.step(t, "helm: uninstall", func(t *testing.T) (string, error) {
		nsObj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": agentNamespace}}}
		detail, err := e.deleteAll(append(objs, nsObj), agentNamespace)
		if err != nil {
			return detail, err
		}
		// Nothing of the release is left anywhere: no cluster-wide object
		// with its instance label.
		sel := "app.kubernetes.io/instance=" + agentRelease
		crs, err := e.cs.RbacV1().ClusterRoles().List(context.Background(), metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return "", err
		}
		crbs, err := e.cs.RbacV1().ClusterRoleBindings().List(context.Background(), metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return "", err
		}
		if n := len(crs.Items) + len(crbs.Items); n != 0 {
			return "", fmt.Errorf("%d ClusterRoles and ClusterRoleBindings with %s are left", n, sel)
		}
		return detail + "; no ClusterRole or binding left", nil
	})
}

// harnessArgs are the agent's flags for this cluster: the kubelet at its
// loopback port, the security checks every 10 s (instead of 5 min, so that
// an opened read-only port shows within the test), containerd's metrics
// where the harness serves them.
func (e *e2eEnv) harnessArgs() []string {
	return []string{
		"--kubelet.url=" + e.env["KUBELET_URL"],
		"--kubelet.security-check-interval=10s",
		"--runtime.metrics-url=" + e.env["CONTAINERD_METRICS_URL"],
	}
}

// adaptDaemonSet changes the rendered DaemonSet for the harness: the API
// server's loopback address in the environment (no kube-proxy routes the
// Service address); with image, also the image and the pause image
// (kustomize has no values), and extra flags.
func (e *e2eEnv) adaptDaemonSet(objs []*unstructured.Unstructured, image bool, extra []string) error {
	found := 0
	for _, o := range objs {
		if o.GetKind() != "DaemonSet" {
			continue
		}
		found++
		var ds appsv1.DaemonSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &ds); err != nil {
			return fmt.Errorf("DaemonSet %s: %w", o.GetName(), err)
		}
		c := &ds.Spec.Template.Spec.Containers[0]
		c.Env = append(c.Env,
			corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: "127.0.0.1"},
			corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: portOf(e.env["KUBE_APISERVER_URL"])})
		if image {
			c.Image = e.image
			for i, a := range c.Args {
				if strings.HasPrefix(a, "--collector.cadvisor.sandbox-image=") {
					c.Args[i] = "--collector.cadvisor.sandbox-image=" + e.env["POD_IMAGE"]
				}
			}
			c.Args = append(c.Args, extra...)
		}
		if c.Image != e.image {
			return fmt.Errorf("DaemonSet %s runs %s, not the imported %s", o.GetName(), c.Image, e.image)
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&ds)
		if err != nil {
			return err
		}
		// Server-side apply refuses the status the typed round trip adds.
		delete(u, "status")
		unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u, "spec", "template", "metadata", "creationTimestamp")
		o.Object = u
	}
	if found != 1 {
		return fmt.Errorf("%d DaemonSets rendered; want 1", found)
	}
	return nil
}

func portOf(rawURL string) string {
	i := strings.LastIndex(rawURL, ":")
	return rawURL[i+1:]
}

// applyAll applies the objects in order and names their kinds.
func (e *e2eEnv) applyAll(objs []*unstructured.Unstructured) (string, error) {
	kinds := map[string]int{}
	for _, o := range objs {
		if err := e.a.apply(context.Background(), agentNamespace, o); err != nil {
			return "", fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
		kinds[o.GetKind()]++
	}
	var ks []string
	for k, n := range kinds {
		ks = append(ks, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(ks)
	return strings.Join(ks, ", "), nil
}

// deleteAll deletes the objects (their pods with them) and waits until
// every one is gone, the namespace ns last.
func (e *e2eEnv) deleteAll(objs []*unstructured.Unstructured, ns string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fg := metav1.DeletePropagationForeground
	var left []string
	for i := len(objs) - 1; i >= 0; i-- {
		o := objs[i]
		res, err := e.resource(o)
		if err != nil {
			return "", err
		}
		if err := res.Delete(ctx, o.GetName(), metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("deleting %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	for _, o := range objs {
		res, _ := e.resource(o)
		for {
			_, err := res.Get(ctx, o.GetName(), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if ctx.Err() != nil {
				left = append(left, o.GetKind()+" "+o.GetName())
				break
			}
			time.Sleep(time.Second)
		}
	}
	if len(left) > 0 {
		return "", fmt.Errorf("still there 3 minutes after the delete: %s", strings.Join(left, ", "))
	}
	if err := e.waitNamespaceGone(ns, 3*time.Minute); err != nil {
		return "", err
	}
	pods, err := e.cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	if len(pods.Items) != 0 {
		return "", fmt.Errorf("%d pods left in %s", len(pods.Items), ns)
	}
	return fmt.Sprintf("%d objects deleted, no pod left", len(objs)), nil
}

// resource is the dynamic client of the object's kind.
func (e *e2eEnv) resource(o *unstructured.Unstructured) (interface {
	Delete(context.Context, string, metav1.DeleteOptions, ...string) error
	Get(context.Context, string, metav1.GetOptions, ...string) (*unstructured.Unstructured, error)
}, error) {
	gvk := o.GroupVersionKind()
	m, err := e.a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := o.GetNamespace()
		if ns == "" {
			ns = agentNamespace
		}
		return e.a.dyn.Resource(m.Resource).Namespace(ns), nil
	}
	return e.a.dyn.Resource(m.Resource), nil
}

// waitNamespaceGone waits until namespace ns no longer exists (the
// namespace controller empties it first).
func (e *e2eEnv) waitNamespaceGone(ns string, within time.Duration) error {
	return eventually(within, time.Second, func() (bool, string) {
		n, err := e.cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, fmt.Sprintf("namespace %s is %s: %v", ns, n.Status.Phase, n.Status.Conditions)
	})
}

// eventually polls cond until it is true or within has passed; the error
// says what cond saw last.
func eventually(within, every time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(within)
	for {
		ok, seen := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s; last seen: %s", within, seen)
		}
		time.Sleep(every)
	}
}

// podSecurity: the DaemonSet's pod is refused by the restricted level (a
// server-side dry run of it in a namespace enforcing restricted), for the
// reasons docs/deploy.md gives, which is why the manifests label the
// namespace privileged; the namespace applied carries that label.
func (e *e2eEnv) podSecurity(objs []*unstructured.Unstructured) (string, error) {
	var ds appsv1.DaemonSet
	level := ""
	for _, o := range objs {
		switch o.GetKind() {
		case "DaemonSet":
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &ds); err != nil {
				return "", err
			}
		case "Namespace":
			level = o.GetLabels()["pod-security.kubernetes.io/enforce"]
		}
	}
	if level != "privileged" {
		return "", fmt.Errorf("the kustomize base's namespace enforces %q; docs/deploy.md says privileged", level)
	}
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "nodeagent-restricted-",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	ns, err := e.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	defer func() { _ = e.cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}) }()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "nodeagent-probe"}, Spec: ds.Spec.Template.Spec}
	pod.Spec.ServiceAccountName = "" // the account exists in the agent's namespace only
	_, err = e.cs.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err == nil {
		return "", errors.New("a namespace enforcing restricted admitted the DaemonSet's pod: docs/deploy.md and the namespace label are out of date")
	}
	msg := err.Error()
	for _, want := range []string{"hostNetwork", "hostPID", "hostPath"} {
		if !strings.Contains(msg, want) {
			return "", fmt.Errorf("restricted refused the pod, but not for %s: %w", want, err)
		}
	}
	return "restricted refuses it (host namespaces, host ports, hostPath volumes); namespace enforces privileged, as docs/deploy.md says", nil
}

// ---- the agent's pod and its scraper authentication

// testAgentPod waits for the DaemonSet's pod to be Ready, checks the
// scraper authentication, that the agent runs one thread under its CPU
// limit and that it released its start-up pages; it reports whether all
// four passed.
func (e *e2eEnv) testAgentPod(t *testing.T, sum *summary, how string) bool {
	var pod corev1.Pod
	if !sum.step(t, how+": pod Ready", func(t *testing.T) (string, error) {
		p, err := e.waitAgentReady(3 * time.Minute)
		if err != nil {
			return "", err
		}
		pod = *p
		return fmt.Sprintf("%s on %s, IP %s, image %s", p.Name, p.Spec.NodeName, p.Status.PodIP, p.Status.ContainerStatuses[0].Image), nil
	}) {
		return false
	}
	if !sum.step(t, how+": scraper auth", func(t *testing.T) (string, error) {
		url := "https://" + pod.Status.PodIP + ":" + agentPort + "/metrics/node"
		forbidden, err := os.ReadFile(e.env["KUBELET_FORBIDDEN_TOKEN_FILE"])
		if err != nil {
			return "", err
		}
		cases := []struct {
			who, token string
			want       int
		}{
			{promNamespace + "/" + promAccount, e.promToken, http.StatusOK},
			{"default/nobody (no scraper RBAC)", strings.TrimSpace(string(forbidden)), http.StatusForbidden},
			{"no token", "", http.StatusUnauthorized},
		}
		var got []string
		for _, c := range cases {
			var code int
			var body string
			// RBAC and the agent's review cache settle within seconds.
			err := eventually(time.Minute, time.Second, func() (bool, string) {
				var serr error
				if code, body, serr = scrape(url, c.token); serr != nil {
					return false, serr.Error()
				}
				return code == c.want, fmt.Sprintf("%d %.200s", code, body)
			})
			if err != nil {
				return "", fmt.Errorf("GET %s as %s: want %d: %w", url, c.who, c.want, err)
			}
			if c.want == http.StatusOK && !strings.Contains(body, "node_cpu_seconds_total") {
				return "", fmt.Errorf("GET %s as %s: 200 without node_cpu_seconds_total: %.300s", url, c.who, body)
			}
			got = append(got, fmt.Sprintf("%s %d", c.who, code))
		}
		return strings.Join(got, ", "), nil
	}) {
		return false
	}
	// Under the manifests' 500m CPU limit the agent runs one Go thread
	// (Go would round the quota up, to two).
	if !sum.step(t, how+": one thread under the CPU limit", func(t *testing.T) (string, error) {
		url := "https://" + pod.Status.PodIP + ":" + agentPort + "/metrics/nodeagent"
		code, body, err := scrape(url, e.promToken)
		if err != nil {
			return "", err
		}
		if code != http.StatusOK {
			return "", fmt.Errorf("GET %s: %d %.300s", url, code, body)
		}
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "go_sched_gomaxprocs_threads ") {
				if l != "go_sched_gomaxprocs_threads 1" {
					return l, fmt.Errorf("%s under the limit %s, want 1; the agent's log about it: %s", l,
						pod.Spec.Containers[0].Resources.Limits.Cpu(), e.agentLogLines(pod.Name, "GOMAXPROCS", "quota"))
				}
				return fmt.Sprintf("%s under the limit %s", l, pod.Spec.Containers[0].Resources.Limits.Cpu()), nil
			}
		}
		return "", fmt.Errorf("GET %s: no go_sched_gomaxprocs_threads", url)
	}) {
		return false
	}
	// The agent has answered: in its container, as the manifests run it
	// (its own user, RuntimeDefault seccomp, a read-only root), it
	// releases the executable's start-up pages and says so once.
	return sum.step(t, how+": start-up pages released", func(t *testing.T) (string, error) {
		var line string
		err := eventually(30*time.Second, time.Second, func() (bool, string) {
			logs, err := e.cs.CoreV1().Pods(agentNamespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "nodeagent"}).DoRaw(context.Background())
			if err != nil {
				return false, err.Error()
			}
			for _, l := range strings.Split(string(logs), "\n") {
				if strings.Contains(l, "start-up pages") {
					line = l
				}
			}
			return strings.Contains(line, "released the executable's start-up pages"), line
		})
		return line, err
	})
}

// agentLogLines are the lines of the agent's log in pod that contain any
// of words, for an error message.
func (e *e2eEnv) agentLogLines(pod string, words ...string) string {
	logs, err := e.cs.CoreV1().Pods(agentNamespace).GetLogs(pod, &corev1.PodLogOptions{Container: "nodeagent"}).DoRaw(context.Background())
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(string(logs), "\n") {
		if slices.ContainsFunc(words, func(w string) bool { return strings.Contains(l, w) }) {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "(none)"
	}
	return strings.Join(lines, "; ")
}

// waitAgentReady waits for the one pod of the DaemonSet to be Ready; the
// error describes the pods as last seen (phase, container states, the
// reason a container waits).
func (e *e2eEnv) waitAgentReady(within time.Duration) (*corev1.Pod, error) {
	var ready *corev1.Pod
	err := eventually(within, 2*time.Second, func() (bool, string) {
		pods, err := e.cs.CoreV1().Pods(agentNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=nodeagent"})
		if err != nil {
			return false, err.Error()
		}
		var states []string
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp == nil && running(p) {
				ready = p
				return true, ""
			}
			s := fmt.Sprintf("%s %s", p.Name, p.Status.Phase)
			for _, c := range p.Status.Conditions {
				if c.Status != corev1.ConditionTrue && c.Message != "" {
					s += fmt.Sprintf(" %s: %s", c.Type, c.Message)
				}
			}
			for _, cs := range p.Status.ContainerStatuses {
				switch {
				case cs.State.Waiting != nil:
					s += fmt.Sprintf(" %s waiting %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
				case cs.State.Terminated != nil:
					s += fmt.Sprintf(" %s terminated %s %s", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.Message)
				default:
					s += fmt.Sprintf(" %s ready=%v restarts=%d", cs.Name, cs.Ready, cs.RestartCount)
				}
			}
			states = append(states, s)
		}
		if len(states) == 0 {
			ev, _ := e.cs.CoreV1().Events(agentNamespace).List(context.Background(), metav1.ListOptions{})
			for _, x := range ev.Items {
				if x.Type == corev1.EventTypeWarning {
					states = append(states, x.InvolvedObject.Kind+" "+x.InvolvedObject.Name+": "+x.Message)
				}
			}
			return false, "no pod; warnings: " + strings.Join(states, "; ")
		}
		return false, strings.Join(states, "; ")
	})
	return ready, err
}

// scrape GETs url with a bearer token (none when empty); the agent's
// certificate is self-signed, as the ServiceMonitor expects.
func scrape(url, token string) (int, string, error) {
	// The agent's certificate is self-signed, made in memory at its start:
	// there is nothing to verify it against (the ServiceMonitor skips
	// verification too).
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(body), err
}

// ---- Prometheus on the operator's configuration

// testPrometheus runs the Prometheus Operator on the release's
// ServiceMonitor and a real Prometheus on the configuration it writes,
// and checks the rules and alerts.
func (e *e2eEnv) testPrometheus(t *testing.T, sum *summary, release []*unstructured.Unstructured) {
	needMonitoring(t) // kube-state-metrics, for kube_pod_info
	endpoints := 0
	var ours []*unstructured.Unstructured
	for _, o := range release {
		switch o.GetKind() {
		case "ServiceMonitor":
			eps, _, _ := unstructured.NestedSlice(o.Object, "spec", "endpoints")
			endpoints += len(eps)
		case "PrometheusRule":
			ours = append(ours, o)
		}
	}
	var cfgPath string
	if !sum.step(t, "helm: operator scrape config", func(t *testing.T) (string, error) {
		cfg, jobs, err := e.operatorConfig(t, endpoints)
		if err != nil {
			return "", err
		}
		cfgPath, err = e.prometheusConfig(cfg, ours)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d jobs from ServiceMonitor %s/%s: %s", len(jobs), agentNamespace, agentRelease, strings.Join(jobs, ", ")), nil
	}) {
		return
	}
	prom := &monitoring{dir: e.dir}
	if !sum.step(t, "helm: prometheus", func(st *testing.T) (string, error) {
		port := e.env["NODEAGENT_PROMETHEUS_PORT"]
		if port == "" {
			port = "17091"
		}
		prom.prometheusURL = "http://127.0.0.1:" + port
		t.Cleanup(prom.stop)
		if err := prom.start("prometheus-nodeagent", e.env["PROMETHEUS_BIN"], "--config.file="+cfgPath,
			"--storage.tsdb.path="+filepath.Join(e.dir, "tsdb"), "--web.listen-address=127.0.0.1:"+port); err != nil {
			return "", err
		}
		if err := waitHTTP(prom.prometheusURL+"/-/ready", time.Minute); err != nil {
			return "", fmt.Errorf("prometheus (log %s): %w", filepath.Join(e.dir, "prometheus-nodeagent.log"), err)
		}
		var rules struct {
			Groups []struct {
				Rules []any `json:"rules"`
			} `json:"groups"`
		}
		promGet(st, prom, "/api/v1/rules", nil, &rules)
		n := 0
		for _, g := range rules.Groups {
			n += len(g.Rules)
		}
		return fmt.Sprintf("%s, %d rule groups, %d rules loaded", prom.prometheusURL, len(rules.Groups), n), nil
	}) {
		return
	}
	e.checkPrometheus(t, sum, prom)
}

// operatorConfig runs the operator on the monitoring and nodeagent
// namespaces with a Prometheus (no replicas: nothing to pull) that selects
// every ServiceMonitor and discovers through the API server's loopback
// address with Prometheus' token, and returns the configuration it writes
// once it has a job for each of the ServiceMonitor's endpoints.
func (e *e2eEnv) operatorConfig(t *testing.T, endpoints int) ([]byte, []string, error) {
	op := exec.Command(e.env["PROMETHEUS_OPERATOR_BIN"], "--web.listen-address=127.0.0.1:"+e.env["PROMETHEUS_OPERATOR_PORT"],
		"--namespaces="+promNamespace+","+agentNamespace)
	op.Env = append(os.Environ(), "KUBECONFIG="+e.env["KUBECONFIG"])
	var log bytes.Buffer
	op.Stdout, op.Stderr = &log, &log
	if err := op.Start(); err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() {
		_ = op.Process.Kill()
		_ = op.Wait()
		if t.Failed() {
			t.Logf("operator log:\n%s", log.String())
		}
	})
	p := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
		"metadata": map[string]any{"name": promName, "namespace": promNamespace},
		"spec": map[string]any{
			"replicas": int64(0), "serviceAccountName": promAccount,
			"serviceMonitorSelector": map[string]any{}, "serviceMonitorNamespaceSelector": map[string]any{},
			"apiserverConfig": map[string]any{
				"host":          e.env["KUBE_APISERVER_URL"],
				"authorization": map[string]any{"type": "Bearer", "credentialsFile": e.promTokenFile},
				"tlsConfig":     map[string]any{"caFile": e.env["KUBELET_CA"]},
			},
		},
	}}
	if err := e.a.apply(context.Background(), promNamespace, p); err != nil {
		return nil, nil, fmt.Errorf("Prometheus %s/%s: %w", promNamespace, promName, err)
	}
	t.Cleanup(func() {
		res, err := e.resource(p)
		if err == nil {
			_ = res.Delete(context.Background(), promName, metav1.DeleteOptions{})
		}
	})
	var cfg []byte
	var jobs []string
	prefix := "serviceMonitor/" + agentNamespace + "/" + agentRelease + "/"
	err := eventually(2*time.Minute, time.Second, func() (bool, string) {
		s, err := e.cs.CoreV1().Secrets(promNamespace).Get(context.Background(), "prometheus-"+promName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		zr, err := gzip.NewReader(bytes.NewReader(s.Data["prometheus.yaml.gz"]))
		if err != nil {
			return false, "prometheus.yaml.gz: " + err.Error()
		}
		if cfg, err = io.ReadAll(zr); err != nil {
			return false, err.Error()
		}
		all, err := jobNames(cfg)
		if err != nil {
			return false, err.Error()
		}
		jobs = jobs[:0]
		for _, j := range all {
			if strings.HasPrefix(j, prefix) {
				jobs = append(jobs, j)
			}
		}
		return len(jobs) == endpoints, fmt.Sprintf("jobs %v; want %d with prefix %s", all, endpoints, prefix)
	})
	return cfg, jobs, err
}

// saTokenPath is where the operator's configuration reads Prometheus'
// token from (bearerTokenFile of the ServiceMonitor), true in a pod.
const saTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// prometheusConfig writes the Prometheus configuration of the test: the
// operator's, with Prometheus' token read from the token file instead of
// a pod's mount, the rules (kube-prometheus' kubernetes-mixin and
// node-mixin files, nodeagent's PrometheusRule), and kube-state-metrics
// scraped as kube-prometheus scrapes it (honour its labels). Rules are
// evaluated every 5 s. promtool checks it.
func (e *e2eEnv) prometheusConfig(operator []byte, ours []*unstructured.Unstructured) (string, error) {
	text := strings.ReplaceAll(string(operator), saTokenPath, e.promTokenFile)
	if !strings.Contains(string(operator), saTokenPath) {
		return "", fmt.Errorf("the operator's configuration does not read %s: the ServiceMonitor's bearerTokenFile changed?", saTokenPath)
	}
	// In a pod, prometheus-config-reloader expands $(VAR) from the
	// container's environment before Prometheus reads the file: SHARD
	// (the shard's number; the sharding relabeling keeps only targets of
	// shard 0 of 1, and drops every target while it is unexpanded) and
	// POD_NAME (the replica's external label). This is its expansion for
	// the one replica of shard 0.
	text = strings.NewReplacer("$(SHARD)", "0", "$(POD_NAME)", "prometheus-"+promName+"-0").Replace(text)
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		return "", fmt.Errorf("the operator's configuration: %w", err)
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
	}
	global["evaluation_interval"] = "5s"
	cfg["global"] = global
	sc, _ := cfg["scrape_configs"].([]any)
	// kube-state-metrics where the e2e stack runs it.
	sc = append(sc, map[string]any{
		"job_name": "kube-state-metrics", "honor_labels": true, "scrape_interval": "10s",
		"static_configs": []any{map[string]any{"targets": []any{"127.0.0.1:" + e.env["KUBE_STATE_METRICS_PORT"]}}},
	})
	cfg["scrape_configs"] = sc

	var files []any
	write := func(name string, groups any) error {
		b, err := yaml.Marshal(map[string]any{"groups": groups})
		if err != nil {
			return err
		}
		p := filepath.Join(e.dir, name)
		files = append(files, p)
		return os.WriteFile(p, b, 0o600)
	}
	for _, f := range []string{"kubernetesControlPlane-prometheusRule.yaml", "nodeExporter-prometheusRule.yaml", "kubePrometheus-prometheusRule.yaml"} {
		b, err := os.ReadFile(filepath.Join(kpRulesDir, f))
		if err != nil {
			return "", err
		}
		objs, err := decodeManifests(b)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f, err)
		}
		for i, o := range objs {
			groups, _, _ := unstructured.NestedSlice(o.Object, "spec", "groups")
			if err := write(fmt.Sprintf("kp-%d-%s", i, f), groups); err != nil {
				return "", err
			}
		}
	}
	changed := 0
	for i, o := range ours {
		groups, _, _ := unstructured.NestedSlice(o.Object, "spec", "groups")
		// The read-only port alert waits 5 minutes before it fires; the
		// test gives it 30 s so that pending and then firing are seen
		// within a minute. Nothing else of the rule changes.
		for _, g := range groups {
			rules, _ := g.(map[string]any)["rules"].([]any)
			for _, r := range rules {
				if rm := r.(map[string]any); rm["alert"] == readOnlyAlert {
					rm["for"] = readOnlyAlertFor
					changed++
				}
			}
		}
		if err := write(fmt.Sprintf("nodeagent-%d.yaml", i), groups); err != nil {
			return "", err
		}
	}
	if changed != 1 {
		return "", fmt.Errorf("%d alerts named %s in the release's PrometheusRule; want 1", changed, readOnlyAlert)
	}
	cfg["rule_files"] = files
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(e.dir, "prometheus-nodeagent.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", err
	}
	if out, err := exec.Command(e.env["PROMTOOL_BIN"], "check", "config", path).CombinedOutput(); err != nil {
		return "", fmt.Errorf("promtool check config %s: %w\n%s", path, err, out)
	}
	return path, nil
}

// query runs an instant query and returns its vector; a failed query is
// an error (not a failed test), one more thing eventually saw.
func query(prom *monitoring, q string) ([]sample, error) {
	var data struct {
		ResultType string   `json:"resultType"`
		Result     []sample `json:"result"`
	}
	if err := promGetErr(prom, "/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: result type %q", q, data.ResultType)
	}
	return data.Result, nil
}

// upByTarget is up of the agent's targets by job and metrics_path.
func upByTarget(prom *monitoring) (map[string]string, error) {
	s, err := query(prom, `up{namespace="`+agentNamespace+`"}`)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, x := range s {
		out[x.Metric["job"]+" "+x.Metric["metrics_path"]] = fmt.Sprint(x.Value[1])
	}
	return out, nil
}

// targetsSummary says what Prometheus' target discovery found: each active
// target's URL, health and error, and how many it dropped.
func targetsSummary(prom *monitoring) string {
	var data struct {
		ActiveTargets  []target `json:"activeTargets"`
		DroppedTargets []any    `json:"droppedTargets"`
	}
	if err := promGetErr(prom, "/api/v1/targets", nil, &data); err != nil {
		return err.Error()
	}
	var out []string
	for _, tg := range data.ActiveTargets {
		out = append(out, fmt.Sprintf("%s %s %s %s", tg.Labels["job"], tg.ScrapeURL, tg.Health, tg.LastError))
	}
	dropped := ""
	if len(data.DroppedTargets) > 0 {
		// What a dropped target was discovered with says which relabeling
		// dropped it.
		dropped = fmt.Sprintf(" (the first: %v)", data.DroppedTargets[0])
	}
	return fmt.Sprintf("%d active [%s], %d dropped%s", len(out), strings.Join(out, "; "), len(data.DroppedTargets), dropped)
}

// logTail is the last n lines of a log file.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func describeUp(up map[string]string) string {
	var ks []string
	for k, v := range up {
		ks = append(ks, strings.TrimSpace(k)+"="+v)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// alertState is the state of alertname's ALERTS series ("" when none).
func alertState(prom *monitoring, alertname string) (string, error) {
	s, err := query(prom, `ALERTS{alertname="`+alertname+`"}`)
	if err != nil {
		return "", err
	}
	states := map[string]bool{}
	for _, x := range s {
		states[x.Metric["alertstate"]] = true
	}
	switch {
	case states["firing"]:
		return "firing", nil
	case states["pending"]:
		return "pending", nil
	}
	return "", nil
}

// checkPrometheus: the assertions on what Prometheus scraped and computed.
func (e *e2eEnv) checkPrometheus(t *testing.T, sum *summary, prom *monitoring) {
	wantUp := []string{"node-exporter ", "kubelet /metrics/cadvisor", "kubelet /metrics", "kubelet /metrics/probes", "kubelet /metrics/slis", "container-runtime ", "nodeagent "}
	allUp := func() (bool, string) {
		up, err := upByTarget(prom)
		if err != nil {
			return false, err.Error()
		}
		for _, k := range wantUp {
			if up[k] != "1" {
				return false, describeUp(up)
			}
		}
		return len(up) == len(wantUp), describeUp(up)
	}
	if !sum.step(t, "prometheus: every endpoint up", func(t *testing.T) (string, error) {
		var seen string
		err := eventually(2*time.Minute, 2*time.Second, func() (bool, string) { ok, s := allUp(); seen = s; return ok, s })
		if err != nil {
			if b, rerr := os.ReadFile(filepath.Join(e.dir, "prometheus-nodeagent.yaml")); rerr == nil {
				t.Logf("the configuration Prometheus ran:\n%s", b)
			}
			return "", fmt.Errorf("%w; targets: %s; prometheus log: %s", err, targetsSummary(prom), logTail(filepath.Join(e.dir, "prometheus-nodeagent.log"), 10))
		}
		return seen, nil
	}) {
		return
	}
	// Every endpoint has been scraped, so doctor's prometheus.scraped can
	// be ok; the kubelet is untouched and its read-only port closed.
	e.testDoctor(t, sum, prom)

	sum.step(t, "demo pods", func(st *testing.T) (string, error) {
		return e.startDemo(st, t)
	})
	for _, rec := range []string{
		"node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate",
		"node_namespace_pod_container:container_memory_working_set_bytes",
	} {
		sum.step(t, "rule "+rec, func(t *testing.T) (string, error) {
			return e.checkDemoSeries(prom, rec, "")
		})
	}
	// kubernetes-mixin's CPUThrottlingHigh divides these two, selected so,
	// for containers with a CPU limit, as the demo's.
	for _, family := range []string{"container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_periods_total"} {
		sum.step(t, "CPUThrottlingHigh's "+family, func(t *testing.T) (string, error) {
			return e.checkDemoSeries(prom, family, `, job="kubelet", metrics_path="/metrics/cadvisor"`)
		})
	}
	sum.step(t, "rule instance:node_cpu_utilisation:rate5m", func(t *testing.T) (string, error) {
		var seen string
		err := eventually(2*time.Minute, 2*time.Second, func() (bool, string) {
			s, err := query(prom, "instance:node_cpu_utilisation:rate5m")
			if err != nil {
				return false, err.Error()
			}
			if len(s) == 0 {
				return false, "no series"
			}
			seen = fmt.Sprintf("instance=%s %v", s[0].Metric["instance"], s[0].Value[1])
			return true, seen
		})
		return seen, err
	})

	// The kubelet stops: its /metrics passthrough answers 503, so that
	// target is down, and kube-prometheus' KubeletDown goes pending;
	// cAdvisor's and the node's series come from the host and stay up.
	// Whatever happens, the kubelet runs again, read-only port closed,
	// when the test ends.
	disturbed := false
	t.Cleanup(func() {
		if !disturbed {
			return
		}
		if out, err := e.clusterSh("start-kubelet", "--read-only-port", "0"); err != nil {
			t.Errorf("cluster.sh start-kubelet: %v\n%s", err, out)
		}
	})
	if !sum.step(t, "kubelet stopped: KubeletDown pending", func(t *testing.T) (string, error) {
		disturbed = true
		if out, err := e.clusterSh("stop-kubelet"); err != nil {
			return "", fmt.Errorf("cluster.sh stop-kubelet: %w\n%s", err, out)
		}
		stopped := time.Now()
		var seen string
		err := eventually(2*time.Minute, 2*time.Second, func() (bool, string) {
			up, err := upByTarget(prom)
			if err != nil {
				return false, err.Error()
			}
			state, err := alertState(prom, "KubeletDown")
			if err != nil {
				return false, err.Error()
			}
			seen = describeUp(up) + "; KubeletDown " + state
			return up["kubelet /metrics"] == "0" && state == "pending", seen
		})
		if err != nil {
			return "", err
		}
		// Two scrapes of every path after the stop, then none of the
		// host's paths may have been down since.
		time.Sleep(time.Until(stopped.Add(25 * time.Second)))
		for _, q := range []string{
			`min_over_time(up{job="kubelet",metrics_path="/metrics/cadvisor"}[20s])`,
			`min_over_time(up{job="node-exporter"}[20s])`,
		} {
			s, err := query(prom, q)
			if err != nil {
				return "", err
			}
			if len(s) != 1 || s[0].Value[1] != "1" {
				return "", fmt.Errorf("%s = %v with the kubelet stopped; want 1 (the host's paths do not need the kubelet)", q, s)
			}
		}
		return fmt.Sprintf("after %s: %s; cAdvisor and node paths up 1 throughout", time.Since(stopped).Round(time.Second), seen), nil
	}) {
		return
	}
	sum.step(t, "kubelet restarted: up again", func(t *testing.T) (string, error) {
		if out, err := e.clusterSh("start-kubelet"); err != nil {
			return "", fmt.Errorf("cluster.sh start-kubelet: %w\n%s", err, out)
		}
		started := time.Now()
		var seen string
		err := eventually(2*time.Minute, 2*time.Second, func() (bool, string) { ok, s := allUp(); seen = s; return ok, s })
		return fmt.Sprintf("after %s: %s", time.Since(started).Round(time.Second), seen), err
	})

	// The read-only port opens: nodeagent's check sees it and its alert
	// goes pending, then fires; closed again, the alert ends.
	sum.step(t, "read-only port open: "+readOnlyAlert, func(t *testing.T) (string, error) {
		if out, err := e.clusterSh("start-kubelet", "--read-only-port", "10255"); err != nil {
			return "", fmt.Errorf("cluster.sh start-kubelet --read-only-port 10255: %w\n%s", err, out)
		}
		opened := time.Now()
		var history []string
		last := ""
		err := eventually(3*time.Minute, 2*time.Second, func() (bool, string) {
			state, err := alertState(prom, readOnlyAlert)
			if err != nil {
				return false, err.Error()
			}
			if state != last {
				history = append(history, fmt.Sprintf("%s after %s", orNone(state), time.Since(opened).Round(time.Second)))
				last = state
			}
			v, _ := query(prom, `nodeagent_kubelet_readonly_port_open`)
			return state == "firing", fmt.Sprintf("alert states %v; nodeagent_kubelet_readonly_port_open %s", history, sampleValues(v))
		})
		if err != nil {
			return "", err
		}
		if !strings.Contains(strings.Join(history, " "), "pending") {
			return "", fmt.Errorf("the alert fired without being seen pending: %v", history)
		}
		return strings.Join(history, ", ") + " (for: " + readOnlyAlertFor + " in the test, 5m shipped)", nil
	})
	sum.step(t, "read-only port closed: alert resolved", func(t *testing.T) (string, error) {
		if out, err := e.clusterSh("start-kubelet", "--read-only-port", "0"); err != nil {
			return "", fmt.Errorf("cluster.sh start-kubelet --read-only-port 0: %w\n%s", err, out)
		}
		disturbed = false
		closed := time.Now()
		var seen string
		err := eventually(2*time.Minute, 2*time.Second, func() (bool, string) {
			state, err := alertState(prom, readOnlyAlert)
			if err != nil {
				return false, err.Error()
			}
			v, _ := query(prom, `nodeagent_kubelet_readonly_port_open`)
			seen = fmt.Sprintf("alert %s; nodeagent_kubelet_readonly_port_open %s", orNone(state), sampleValues(v))
			return state == "" && len(v) == 1 && v[0].Value[1] == "0", seen
		})
		return fmt.Sprintf("after %s: %s", time.Since(closed).Round(time.Second), seen), err
	})
}

// sampleValues are a vector's values by instance: "[node-1=0]".
func sampleValues(v []sample) string {
	var out []string
	for _, x := range v {
		out = append(out, fmt.Sprintf("%s=%v", x.Metric["instance"], x.Value[1]))
	}
	return "[" + strings.Join(out, " ") + "]"
}

func orNone(s string) string {
	if s == "" {
		return "inactive"
	}
	return s
}

// startDemo runs ordinary pods (a Deployment of two in namespace demo,
// container "work" burning a little CPU and holding memory) until owner
// ends. kube-state-metrics, which the e2e stack runs, reports them.
func (e *e2eEnv) startDemo(t, owner *testing.T) (string, error) {
	ctx := context.Background()
	if _, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}}, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("namespace %s: %w", demoNamespace, err)
	}
	owner.Cleanup(func() {
		_ = e.cs.CoreV1().Namespaces().Delete(context.Background(), demoNamespace, metav1.DeleteOptions{})
		if err := e.waitNamespaceGone(demoNamespace, 3*time.Minute); err != nil {
			owner.Errorf("namespace %s: %v", demoNamespace, err)
		}
	})
	labels := map[string]string{"app": "demo"}
	replicas := int32(2)
	tmpl := pausePod(e.env, false, labels)
	tmpl.Spec.Containers[0].Name = demoContainer
	tmpl.Spec.Containers[0].Command = []string{"/pause", "-alloc-mb=8", "-busy=20ms"}
	// A CPU limit, so that the cgroup has a CFS quota and its throttling
	// is served.
	tmpl.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "demo"},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}
	if _, err := e.cs.AppsV1().Deployments(demoNamespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	pods := waitPods(t, e.cs, demoNamespace, "app=demo", 2, running)
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return fmt.Sprintf("Deployment %s/demo: %s", demoNamespace, strings.Join(names, ", ")), nil
}

// checkDemoSeries: the recording rule (or family) has a series for
// container "work" of every demo pod, with its namespace, pod and node;
// matchers (", name=\"value\"…") select further.
func (e *e2eEnv) checkDemoSeries(prom *monitoring, record, matchers string) (string, error) {
	pods, err := e.cs.CoreV1().Pods(demoNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app=demo"})
	if err != nil {
		return "", err
	}
	if len(pods.Items) == 0 {
		return "", errors.New("no demo pod")
	}
	var seen string
	err = eventually(3*time.Minute, 3*time.Second, func() (bool, string) {
		s, err := query(prom, record+`{namespace="`+demoNamespace+`"`+matchers+`}`)
		if err != nil {
			return false, err.Error()
		}
		got := map[string]string{}
		var all []string
		for _, x := range s {
			all = append(all, fmt.Sprintf("%s/%s/%s node=%s %v", x.Metric["namespace"], x.Metric["pod"], x.Metric["container"], x.Metric["node"], x.Value[1]))
			if x.Metric["container"] == demoContainer && x.Metric["node"] == e.env["KUBELET_NODE_NAME"] {
				got[x.Metric["pod"]] = fmt.Sprint(x.Value[1])
			}
		}
		sort.Strings(all)
		seen = strings.Join(all, "; ")
		if len(all) == 0 {
			seen = "no series"
		}
		for _, p := range pods.Items {
			if _, ok := got[p.Name]; !ok {
				return false, seen
			}
		}
		return true, seen
	})
	return seen, err
}
