package fakeapiserver

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestHandleAddsARoute: a route added with Handle gets the built-in
// ones' caller authentication, counting and faults.
func TestHandleAddsARoute(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.Handle("GET /version", func(_ *Server, w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"major":"1","minor":"37"}`)
	})
	ca, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	get := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/version", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name  string
		token string
		fail  int
		want  int
	}{
		{"client token", s.ClientToken, 0, http.StatusOK},
		{"no token", "", 0, http.StatusUnauthorized},
		{"failing", s.ClientToken, http.StatusServiceUnavailable, http.StatusServiceUnavailable},
	} {
		s.Fail(tc.fail)
		if got := get(tc.token); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := s.Calls("GET /version"); n != 3 {
		t.Errorf("%d calls counted, want 3", n)
	}
}

func TestMatchURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rule, path string
		want       bool
	}{
		{"/metrics", "/metrics", true},
		{"/metrics", "/metrics/node", false},
		{"/metrics/*", "/metrics/node", true},
		{"/metrics/*", "/metrics", false},
		{"*", "/anything", true},
		{"/metrics*", "/metricsx", true},
	} {
		if got := matchURL(tc.rule, tc.path); got != tc.want {
			t.Errorf("matchURL(%q, %q) = %v, want %v", tc.rule, tc.path, got, tc.want)
		}
	}
}

// TestClusterRoutes: the cluster's side answers as the API server does,
// through a client that only has the kubeconfig.
func TestClusterRoutes(t *testing.T) {
	t.Parallel()
	s := New(t)
	ca, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.ClientToken)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const metricsPath = "/apis/metrics.k8s.io/v1beta1/nodes/node-1"
	s.SetNodeMetrics("node-1", "250m", "1Gi")
	s.AddDeployment(Workload{Namespace: "monitoring", Name: "kube-state-metrics", Labels: map[string]string{"app.kubernetes.io/name": "kube-state-metrics"}, Replicas: 1, Ready: 1})
	s.AddDeployment(Workload{Namespace: "default", Name: "web", Labels: map[string]string{"app.kubernetes.io/name": "web"}})
	s.AllowResource(s.ClientUser, ResourceRule{Verb: "get", Group: "", Resource: "nodes/metrics"})
	type step struct {
		name         string
		setup        func()
		method, path string
		body         string
		code         int
		contains     string
	}
	steps := []step{
		{"version", nil, "GET", "/version", "", 200, GitVersion},
		{"APIService missing", nil, "GET", "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io", "", 404, `"name":"v1beta1.metrics.k8s.io"`},
		{"Metrics API without APIService", nil, "GET", metricsPath, "", 404, "could not find the requested resource"},
		{"APIService not available", func() {
			s.SetAPIService(APIService{Name: "v1beta1.metrics.k8s.io", ServiceNamespace: "kube-system", ServiceName: "metrics-server", Reason: "MissingEndpoints", Message: "endpoints for service/metrics-server in \"kube-system\" have no addresses"})
		}, "GET", "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io", "", 200, `"reason":"MissingEndpoints"`},
		{"Metrics API unavailable", nil, "GET", metricsPath, "", 503, "unable to handle the request"},
		{"Metrics API available", func() {
			s.SetAPIService(APIService{Name: "v1beta1.metrics.k8s.io", ServiceNamespace: "kube-system", ServiceName: "metrics-server", Available: true, Reason: "Passed"})
		}, "GET", metricsPath, "", 200, `"cpu":"250m"`},
		{"unknown node", nil, "GET", "/apis/metrics.k8s.io/v1beta1/nodes/node-2", "", 404, `nodes.metrics.k8s.io \"node-2\" not found`},
		{"label selector", nil, "GET", "/apis/apps/v1/deployments?labelSelector=app.kubernetes.io%2Fname%3Dkube-state-metrics", "", 200, `"readyReplicas":1`},
		{"SSAR allowed", nil, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
			`{"spec":{"resourceAttributes":{"verb":"get","resource":"nodes","subresource":"metrics","name":"node-1"}}}`, 201, `"allowed":true`},
		{"SSAR denied", nil, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
			`{"spec":{"resourceAttributes":{"verb":"get","resource":"nodes","subresource":"pods","name":"node-1"}}}`, 201, `"allowed":false`},
		{"whoami", nil, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", `{}`, 201, s.ClientUser},
		{"forbidden by name", func() { s.Forbid(APIServices, true) }, "GET", "/apis/apiregistration.k8s.io/v1/apiservices/x", "", 403,
			`cannot get resource \"apiservices\" in API group \"apiregistration.k8s.io\"`},
	}
	for _, st := range steps {
		if st.setup != nil {
			st.setup()
		}
		code, body := call(st.method, st.path, st.body)
		if code != st.code || !strings.Contains(body, st.contains) {
			t.Errorf("%s: %d %s, want %d containing %s", st.name, code, body, st.code, st.contains)
		}
	}
	code, body := call("GET", "/apis/apps/v1/deployments?labelSelector=app.kubernetes.io%2Fname%3Dkube-state-metrics", "")
	if code != 200 || strings.Contains(body, `"web"`) {
		t.Errorf("the label selector let another Deployment through: %s", body)
	}
}
