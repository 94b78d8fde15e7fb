package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/fakeapiserver"
	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/selfsigned"
)

const (
	scraperToken = "prometheus-k8s-token"
	scraperUser  = "system:serviceaccount:monitoring:prometheus-k8s"
	nobodyToken  = "nobody-token"
)

// newAuthAPI is a fake API server that knows Prometheus' token (granted
// /metrics and /metrics/*, as the documented ClusterRole) and one token
// with no grant.
func newAuthAPI(t *testing.T) *fakeapiserver.Server {
	t.Helper()
	api := fakeapiserver.New(t)
	api.AddToken(scraperToken, fakeapiserver.User{Name: scraperUser, Groups: []string{"system:serviceaccounts", "system:authenticated"}})
	api.AddToken(nobodyToken, fakeapiserver.User{Name: "system:serviceaccount:default:nobody"})
	api.Allow(scraperUser, "/metrics", "/metrics/*")
	return api
}

// do sends a GET with an optional bearer token.
func do(t *testing.T, c *http.Client, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// skipVerify is how kube-prometheus' ServiceMonitor scrapes the
// self-signed mode: TLS, insecureSkipVerify, a bearer token.
func skipVerify() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // what the ServiceMonitor does
		DisableKeepAlives: true,
	}}
}

// TestKubernetesAuthSelfSigned: --web.kubernetes-auth without a web config
// serves TLS with a generated certificate; Prometheus' token is checked
// against the API server named by --kubeconfig.
func TestKubernetesAuthSelfSigned(t *testing.T) {
	t.Parallel()
	api := newAuthAPI(t)
	env := map[string]string{"NODE_IP": "10.1.2.3", "NODE_NAME": "node-a"}
	_, addr, logs := runAgentWith(t, func(o *serveOptions) {
		o.getenv = func(k string) string { return env[k] }
	}, "--web.kubernetes-auth", "--kubeconfig="+api.Kubeconfig,
		// NODE_IP would point the kubelet layer at 10.1.2.3.
		"--kubelet.url=https://127.0.0.1:"+strconv.Itoa(fakekubelet.ClosedPort(t)))
	c := skipVerify()
	base := "https://" + addr

	resp, body := do(t, c, base+"/metrics/node", scraperToken)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "node_load1 0.21") {
		t.Fatalf("Prometheus' token: %d %.200q", resp.StatusCode, body)
	}

	t.Run("certificate", func(t *testing.T) {
		leaf := resp.TLS.PeerCertificates[0]
		host, err := os.Hostname()
		if err != nil {
			t.Fatal(err)
		}
		names := selfsigned.Names(leaf)
		for _, want := range []string{"10.1.2.3", "node-a", host, "127.0.0.1", "::1", "localhost"} {
			if !slices.Contains(names, want) {
				t.Errorf("certificate names %v lack %s", names, want)
			}
		}
		if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("key %T, want ECDSA P-256", leaf.PublicKey)
		}
		if fp := selfsigned.Fingerprint(leaf); !logs.Contains("sha256_fingerprint=" + fp) {
			t.Errorf("the log does not give the served certificate's fingerprint %s:\n%s", fp, logs.String())
		}
		// A client that verifies and pins nothing refuses it.
		if _, err := (&http.Client{Timeout: 30 * time.Second}).Get(base + "/healthz"); err == nil {
			t.Error("a verifying client accepted the self-signed certificate")
		}
	})

	t.Run("status codes", func(t *testing.T) {
		for _, tc := range []struct {
			path, token string
			want        int
			wantBody    string
		}{
			{"/metrics/cadvisor", scraperToken, http.StatusOK, "container_cpu_usage_seconds_total"},
			{"/metrics", scraperToken, http.StatusOK, `nodeagent_http_auth_requests_total{result="allowed"}`},
			{"/metrics/node", "", http.StatusUnauthorized, "no bearer token"},
			{"/metrics/node", "made-up", http.StatusUnauthorized, "does not authenticate"},
			{"/metrics/node", nobodyToken, http.StatusForbidden, `may not get nonResourceURL "/metrics/node"`},
			// The landing page is behind the token too, and needs its own grant.
			{"/", scraperToken, http.StatusForbidden, `nonResourceURLs: ["/"]`},
			{"/", "", http.StatusUnauthorized, "no bearer token"},
			{"/nothing-here", scraperToken, http.StatusNotFound, ""},
			{"/healthz", "", http.StatusOK, "ok"},
			{"/readyz", "", http.StatusOK, "ready"},
		} {
			var resp *http.Response
			var body string
			waitUntil(t, func() bool { // /readyz waits for the first collection
				resp, body = do(t, c, base+tc.path, tc.token)
				return resp.StatusCode != http.StatusServiceUnavailable
			})
			if resp.StatusCode != tc.want || !strings.Contains(body, tc.wantBody) {
				t.Errorf("GET %s (token %q): %d %.300q; want %d containing %q", tc.path, tc.token, resp.StatusCode, body, tc.want, tc.wantBody)
			}
		}
	})

	t.Run("plain HTTP", func(t *testing.T) {
		before := api.Calls(fakeapiserver.TokenReviews)
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics/node", nil)
		req.Header.Set("Authorization", "Bearer "+scraperToken)
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), "node_load1") {
			t.Errorf("plain HTTP: %d %q, want 400 and no metrics", resp.StatusCode, b)
		}
		if after := api.Calls(fakeapiserver.TokenReviews); after != before {
			t.Errorf("a token sent over plain HTTP was reviewed (%d → %d TokenReviews)", before, after)
		}
	})
}

// writeMTLSConfig writes a web config with a serving certificate and
// required client certificates from ca (no basic auth, which
// --web.kubernetes-auth refuses).
func writeMTLSConfig(t *testing.T, ca *fakekubelet.CA, dir string) string {
	t.Helper()
	cert, key := ca.Issue(t, "nodeagent", x509.ExtKeyUsageServerAuth)
	writeFile(t, dir, "server.crt", cert)
	writeFile(t, dir, "server.key", key)
	writeFile(t, dir, "client-ca.crt", ca.PEM)
	return writeFile(t, dir, "web-config.yml", []byte(`tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: client-ca.crt
`))
}

// TestKubernetesAuthWithWebConfig: with a web config, its certificate is
// served (and re-read when rotated) and its client certificates are
// required; the bearer token is checked too: both apply.
func TestKubernetesAuthWithWebConfig(t *testing.T) {
	t.Parallel()
	api := newAuthAPI(t)
	ca := fakekubelet.NewCA(t, "nodeagent-test-ca")
	dir := t.TempDir()
	config := writeMTLSConfig(t, ca, dir)
	_, addr, logs := runAgent(t, "--web.kubernetes-auth", "--kubeconfig="+api.Kubeconfig, "--web.config.file="+config)
	url := "https://" + addr + "/metrics/node"
	clientCert, clientKey := ca.Issue(t, "prometheus", x509.ExtKeyUsageClientAuth)
	withCert := tlsClient(t, ca, clientCert, clientKey)
	withCert.Transport.(*http.Transport).DisableKeepAlives = true

	resp, body := do(t, withCert, url, scraperToken)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "node_load1") {
		t.Errorf("client certificate and token: %d %.200q", resp.StatusCode, body)
	}
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "nodeagent" {
		t.Errorf("served certificate CN %q, want the configured one", cn)
	}
	if logs.Contains("self-signed") {
		t.Error("a self-signed certificate was generated although the web config has one")
	}
	if resp, _ := do(t, withCert, url, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("client certificate, no token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := do(t, withCert, url, nobodyToken); resp.StatusCode != http.StatusForbidden {
		t.Errorf("client certificate, unauthorised token: %d, want 403", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+scraperToken)
	if _, err := tlsClient(t, ca, nil, nil).Do(req); err == nil {
		t.Error("token without a client certificate got through the handshake")
	}

	cert, key := ca.Issue(t, "nodeagent-rotated", x509.ExtKeyUsageServerAuth)
	writeFile(t, dir, "server.key", key)
	writeFile(t, dir, "server.crt", cert)
	resp, _ = do(t, withCert, url, scraperToken)
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "nodeagent-rotated" || resp.StatusCode != http.StatusOK {
		t.Errorf("after rotation: CN %q, status %d; want nodeagent-rotated, 200", cn, resp.StatusCode)
	}
}

// TestKubernetesAuthNeverPlain: configurations that would take bearer
// tokens over plain HTTP, or that cannot work, are startup errors.
func TestKubernetesAuthNeverPlain(t *testing.T) {
	t.Parallel()
	api := newAuthAPI(t)
	withBasicAuth := newTLSFixture(t).config // TLS, client certificates and basic auth
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"web config without TLS", []string{"--web.config.file=testdata/web-config/headers-only.good.yml"},
			"--web.kubernetes-auth needs TLS, but --web.config.file testdata/web-config/headers-only.good.yml configures no certificate"},
		{"basic auth without TLS", []string{"--web.config.file=testdata/web-config/basic-auth-only.good.yml"}, "configures no certificate"},
		{"basic auth with TLS", []string{"--web.config.file=" + withBasicAuth}, "both need the Authorization header"},
		{"vsock in the self-signed mode", []string{"--web.listen-address=vsock://:9812"}, "vsock listeners with --web.kubernetes-auth need a certificate"},
		{"bad cache settings", []string{"--web.kubernetes-auth.cache-size=0", "--web.kubernetes-auth.timeout=0s"}, "--web.kubernetes-auth.cache-size must be positive"},
		{"unreadable kubeconfig", []string{"--kubeconfig=/nonexistent/kubeconfig"}, "/nonexistent/kubeconfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{}, fixtureArgs...), "--web.kubernetes-auth")
			if !strings.HasPrefix(strings.Join(tc.args, " "), "--kubeconfig") {
				args = append(args, "--kubeconfig="+api.Kubeconfig)
			}
			var stderr bytes.Buffer
			if code := run(context.Background(), append(args, tc.args...), nil, &stderr, &stderr); code != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

// TestKubernetesAuthHealthAddress: the plain health address serves the
// probes and nothing that takes a token.
func TestKubernetesAuthHealthAddress(t *testing.T) {
	t.Parallel()
	api := newAuthAPI(t)
	l := listen(t)
	healthAddr := l.Addr().String()
	l.Close()
	startAgent(t, "--web.kubernetes-auth", "--kubeconfig="+api.Kubeconfig, "--web.health-address="+healthAddr)
	c := &http.Client{Timeout: 30 * time.Second}
	waitUntil(t, func() bool {
		resp, err := c.Get("http://" + healthAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	for _, p := range []string{"/metrics", "/metrics/node", "/"} {
		if resp, _ := do(t, c, "http://"+healthAddr+p, scraperToken); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s with a token on the health address: %d, want 404", p, resp.StatusCode)
		}
	}
	if n := api.Calls(fakeapiserver.TokenReviews); n != 0 {
		t.Errorf("%d TokenReviews for requests to the plain health address, want 0", n)
	}
}

// TestKubernetesAuthAPIServerDown: with the API server gone, scrapes get
// 503 (Prometheus' up is 0), never the metrics; when it is back, 200.
func TestKubernetesAuthAPIServerDown(t *testing.T) {
	t.Parallel()
	api := newAuthAPI(t)
	addr := startAgent(t, "--web.kubernetes-auth", "--kubeconfig="+api.Kubeconfig)
	api.Stop()
	c := skipVerify()
	resp, body := do(t, c, "https://"+addr+"/metrics/node", scraperToken)
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "node_load1") {
		t.Errorf("API server down: %d %.200q, want 503", resp.StatusCode, body)
	}
	api.Restart()
	if resp, _ := do(t, c, "https://"+addr+"/metrics/node", scraperToken); resp.StatusCode != http.StatusOK {
		t.Errorf("API server back: %d, want 200", resp.StatusCode)
	}
	if resp, _ := do(t, c, "https://"+addr+"/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz needs no API server: %d", resp.StatusCode)
	}
}
