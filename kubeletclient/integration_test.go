package kubeletclient

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/internal/collectortest"
	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/promfetch"
)

// realClient is a client for the real kubelet with args.
func realClient(t *testing.T, env map[string]string, args ...string) *Client {
	t.Helper()
	cfg := parseConfig(t, append([]string{"--kubelet.url=" + env["KUBELET_URL"], "--kubelet.ca-file=" + env["KUBELET_CA"]}, args...)...)
	c, err := New(cfg, noEnv, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func realCertArgs(env map[string]string) []string {
	return []string{"--kubelet.client-cert-file=" + env["KUBELET_CLIENT_CERT"], "--kubelet.client-key-file=" + env["KUBELET_CLIENT_KEY"]}
}

// TestIntegrationRealKubelet runs the client against a real kubelet v1.37
// (x509 client certificate): its /metrics, the three static pods from
// /pods, and the security checks (the tool sets readOnlyPort: 0 and
// anonymous authentication off).
func TestIntegrationRealKubelet(t *testing.T) {
	env := fakekubelet.RealEnv(t)
	c := realClient(t, env, realCertArgs(env)...)
	ctx := context.Background()

	mfs, err := c.Metrics(ctx, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(collectortest.Encode(t, mfs...)), `kubelet_node_name{node="`+env["KUBELET_NODE_NAME"]+`"} 1`) {
		t.Error("/metrics lacks kubelet_node_name")
	}
	for _, p := range []string{"/metrics/probes", "/metrics/resource"} {
		if _, err := c.Metrics(ctx, p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}

	snap, err := c.Pods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, q := range []string{"burstable", "guaranteed", "besteffort"} {
		want["default/"+q+"-"+env["KUBELET_NODE_NAME"]] = true
	}
	for uid, p := range snap.Pods {
		name := p.Namespace + "/" + p.Name
		if !want[name] {
			continue
		}
		delete(want, name)
		if len(uid) != 32 || strings.Contains(uid, "-") {
			t.Errorf("static pod %s has UID %q; want its config hash", name, uid)
		}
		var work int
		for id, ct := range snap.Containers {
			if ct.PodUID != uid || ct.Name != "work" {
				continue
			}
			work++
			if ct.Image != "registry.k8s.io/pause:3.10" {
				t.Errorf("%s/work image %q", name, ct.Image)
			}
			// The container's cgroup (cgroupfs driver) in the hybrid host's
			// unified hierarchy is named by the same IDs.
			// The Guaranteed pod sits directly under kubepods, the others
			// under their QoS class.
			matches, _ := filepath.Glob("/sys/fs/cgroup/unified/kubepods/pod" + uid + "/" + id)
			more, _ := filepath.Glob("/sys/fs/cgroup/unified/kubepods/*/pod" + uid + "/" + id)
			if matches = append(matches, more...); len(matches) != 1 {
				t.Errorf("%s/work (%s): %d cgroups under /sys/fs/cgroup/unified/kubepods, want 1: %v", name, id, len(matches), matches)
			} else {
				t.Logf("%s/work: %s", name, matches[0])
			}
		}
		if work != 1 {
			t.Errorf("%s has %d running containers named work; want 1", name, work)
		}
	}
	if len(want) > 0 {
		t.Errorf("static pods missing from /pods: %v", want)
	}

	if open, err := c.ReadOnlyPortOpen(ctx); open || err != nil {
		t.Errorf("read-only port: open=%v, %v; want closed (readOnlyPort: 0)", open, err)
	}
	if on, err := c.AnonymousAuthEnabled(ctx); on || err != nil {
		t.Errorf("anonymous auth: enabled=%v, %v; want disabled", on, err)
	}
}

// TestIntegrationRealKubeletTokens: with the kube-apiserver mode, a
// ServiceAccount token is checked by TokenReview and SubjectAccessReview:
// the authorised one reads metrics and pods, the unauthorised one gets the
// kubelet's 403 and our RBAC hint, and a garbage token gets 401.
func TestIntegrationRealKubeletTokens(t *testing.T) {
	env := fakekubelet.RealEnv(t)
	if env["KUBELET_TOKEN_FILE"] == "" {
		t.Skip("the test cluster runs in kubelet mode, without kube-apiserver (INTEGRATION_MODE=apiserver adds it)")
	}
	ctx := context.Background()
	good := realClient(t, env, "--kubelet.token-file="+env["KUBELET_TOKEN_FILE"])
	if _, err := good.Metrics(ctx, "/metrics"); err != nil {
		t.Errorf("authorised token on /metrics: %v", err)
	}
	if _, err := good.Pods(ctx); err != nil {
		t.Errorf("authorised token on /pods (nodes/pods, no nodes/proxy): %v", err)
	}

	// The tool's ClusterRole has no nodes/healthz: the fine-grained
	// subresource and its nodes/proxy fallback are both denied.
	_, _, err := promfetch.Get(ctx, good.target(good.authed, "/healthz", "text/plain"))
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "subresource(s)=[healthz proxy]") || !strings.Contains(err.Error(), `resources: ["nodes/healthz"]`) {
		t.Errorf("authorised token on /healthz: %v; want 403 naming nodes/healthz", err)
	}

	denied := realClient(t, env, "--kubelet.token-file="+env["KUBELET_FORBIDDEN_TOKEN_FILE"])
	_, err = denied.Metrics(ctx, "/metrics")
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("unauthorised token: %v; want ErrForbidden", err)
	}
	for _, w := range []string{"Forbidden (user=system:serviceaccount:default:nobody, verb=get, resource=nodes, subresource(s)=[metrics])",
		`grant system:serviceaccount:default:nobody the ClusterRole rule {apiGroups: [""], resources: ["nodes/metrics"], verbs: ["get"]}`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	t.Logf("403 as the operator sees it: %v", err)

	garbage := fakekubelet.WriteFile(t, t.TempDir(), "token", []byte("not-a-token"))
	_, err = realClient(t, env, "--kubelet.token-file="+garbage).Metrics(ctx, "/metrics")
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("garbage token: %v; want ErrUnauthorized", err)
	}
	t.Logf("401 as the operator sees it: %v", err)
}
