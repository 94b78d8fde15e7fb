package kubeletclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/collectortest"
	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/promfetch"
)

// parseConfig parses --kubelet.* flags as cmd/nodeagent does.
func parseConfig(t testing.TB, args ...string) Config {
	t.Helper()
	var c Config
	app := kingpin.New("test", "")
	c.AddFlags(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("validating %v: %v", args, err)
	}
	return c
}

func noEnv(string) string { return "" }

// newTestClient builds a client against k with args added to its URL and
// CA, and returns it with its registry and log.
func newTestClient(t testing.TB, k *fakekubelet.Kubelet, args ...string) (*Client, *prometheus.Registry, *testlog.Buffer) {
	t.Helper()
	base := []string{"--kubelet.url=" + k.URL}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--kubelet.ca-file=") }) {
		base = append(base, "--kubelet.ca-file="+k.CAFile)
	}
	cfg := parseConfig(t, append(base, args...)...)
	reg := prometheus.NewRegistry()
	logs := &testlog.Buffer{}
	c, err := New(cfg, noEnv, slog.New(slog.NewTextHandler(logs, nil)), reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, reg, logs
}

func certArgs(k *fakekubelet.Kubelet) []string {
	return []string{"--kubelet.client-cert-file=" + k.ClientCertFile, "--kubelet.client-key-file=" + k.ClientKeyFile}
}

// tokenArgs writes token to a file and returns the flag naming it.
func tokenArgs(t testing.TB, token string) (args []string, path string) {
	t.Helper()
	path = fakekubelet.WriteFile(t, t.TempDir(), "token", []byte(token+"\n"))
	return []string{"--kubelet.token-file=" + path}, path
}

func TestAuthModes(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	k.SetToken("good-token", fakekubelet.Identity{User: "system:serviceaccount:monitoring:nodeagent", Allowed: []string{"metrics", "stats", "pods", "healthz"}})
	k.SetToken("metrics-less", fakekubelet.Identity{User: "system:serviceaccount:monitoring:nodeagent", Allowed: []string{"stats"}})
	good, _ := tokenArgs(t, "good-token")
	unknown, _ := tokenArgs(t, "not-a-token")
	weak, _ := tokenArgs(t, "metrics-less")
	otherCA := fakekubelet.NewCA(t, "somebody-elses-ca")
	oc, ok := otherCA.Issue(t, "intruder", x509.ExtKeyUsageClientAuth)
	dir := t.TempDir()
	foreign := []string{
		"--kubelet.client-cert-file=" + fakekubelet.WriteFile(t, dir, "c.crt", oc),
		"--kubelet.client-key-file=" + fakekubelet.WriteFile(t, dir, "c.key", ok),
	}

	for _, tc := range []struct {
		name    string
		args    []string
		path    string
		wantErr error
		want    []string // substrings of the error
	}{
		{name: "client certificate", args: certArgs(k), path: "/metrics"},
		{name: "token", args: good, path: "/metrics"},
		{name: "token on probes", args: good, path: "/metrics/probes"},
		{name: "no credentials", args: []string{"--kubelet.token-file="}, path: "/metrics", wantErr: ErrUnauthorized,
			want: []string{"our credentials were not accepted", `HTTP 401 "Unauthorized"`, "sent no credentials", "--kubelet.token-file"}},
		{name: "unknown token", args: unknown, path: "/metrics", wantErr: ErrUnauthorized,
			want: []string{"our credentials were not accepted", "bearer token from", "authentication.webhook.enabled: true"}},
		{name: "certificate of another CA", args: foreign, path: "/metrics", wantErr: ErrUnauthorized,
			want: []string{"client certificate", "authentication.x509.clientCAFile"}},
		{name: "token without nodes/metrics", args: weak, path: "/metrics", wantErr: ErrForbidden,
			want: []string{
				`"Forbidden (user=system:serviceaccount:monitoring:nodeagent, verb=get, resource=nodes, subresource(s)=[metrics])"`,
				`grant system:serviceaccount:monitoring:nodeagent the ClusterRole rule {apiGroups: [""], resources: ["nodes/metrics"], verbs: ["get"]}`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _, _ := newTestClient(t, k, tc.args...)
			mfs, err := c.Metrics(context.Background(), tc.path)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Metrics: %v", err)
				}
				if len(mfs) == 0 {
					t.Fatal("no families")
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v; want %v", err, tc.wantErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), k.URL+tc.path) {
				t.Errorf("error %q does not name the URL", err)
			}
		})
	}
}

func TestForbiddenPodsNamesFineGrainedRule(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	k.SetToken("t", fakekubelet.Identity{User: "system:serviceaccount:monitoring:nodeagent", Allowed: []string{"metrics"}})
	args, _ := tokenArgs(t, "t")
	c, _, _ := newTestClient(t, k, args...)
	_, err := c.Pods(context.Background())
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("Pods: %v; want ErrForbidden", err)
	}
	for _, w := range []string{`subresource(s)=[pods proxy]`, `resources: ["nodes/pods"]`, "nodes/proxy instead of nodes/pods", "also allows exec"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

// TestTokenRotation: the kubelet stops accepting the old token the moment
// the file holds a new one; the next request must succeed with the new one.
func TestTokenRotation(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	id := fakekubelet.Identity{User: "system:serviceaccount:monitoring:nodeagent", Allowed: []string{"metrics"}}
	k.SetToken("token-1", id)
	args, path := tokenArgs(t, "token-1")
	c, reg, _ := newTestClient(t, k, args...)
	if _, err := c.Metrics(context.Background(), "/metrics"); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	if err := os.WriteFile(path, []byte("token-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k.RevokeToken("token-1")
	k.SetToken("token-2", id)
	if _, err := c.Metrics(context.Background(), "/metrics"); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if n := k.TokenRequests("token-2"); n != 1 {
		t.Errorf("the new token was sent %d times; want 1", n)
	}
	if n := k.TokenRequests("token-1"); n != 2 {
		t.Errorf("the old token was sent %d times; want 2 (before rotation, and the one 401 that made the client re-read the file)", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP nodeagent_kubelet_up nodeagent: whether the last request to this kubelet endpoint succeeded and its answer decoded (1) or not (0).
# TYPE nodeagent_kubelet_up gauge
nodeagent_kubelet_up{endpoint="/metrics"} 1
`), "nodeagent_kubelet_up", "nodeagent_kubelet_request_errors_total"); err != nil {
		t.Error(err)
	}
}

func TestWrongCA(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	other := fakekubelet.WriteFile(t, t.TempDir(), "other-ca.crt", fakekubelet.NewCA(t, "another-ca").PEM)
	c, reg, _ := newTestClient(t, k, append(certArgs(k), "--kubelet.ca-file="+other)...)
	_, err := c.Metrics(context.Background(), "/metrics")
	if !errors.Is(err, ErrTLS) {
		t.Fatalf("error %v; want ErrTLS", err)
	}
	for _, w := range []string{"not signed by a CA in --kubelet.ca-file " + other, `issuer "CN=fake-kubelet-serving-ca"`, "serverTLSBootstrap", "--kubelet.insecure-skip-verify"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP nodeagent_kubelet_request_errors_total nodeagent: failed requests to the kubelet by endpoint and reason (unreachable, timeout, tls, unauthorized, forbidden, status, too_large, bad_body, canceled).
# TYPE nodeagent_kubelet_request_errors_total counter
nodeagent_kubelet_request_errors_total{endpoint="/metrics",reason="tls"} 1
# HELP nodeagent_kubelet_tls_verified nodeagent: whether the kubelet's serving certificate is verified (1) or --kubelet.insecure-skip-verify is set (0).
# TYPE nodeagent_kubelet_tls_verified gauge
nodeagent_kubelet_tls_verified 1
`), "nodeagent_kubelet_request_errors_total", "nodeagent_kubelet_tls_verified"); err != nil {
		t.Error(err)
	}
}

func TestHostnameMismatch(t *testing.T) {
	t.Parallel()
	ca := fakekubelet.NewCA(t, "ca")
	certPEM, keyPEM := ca.Issue(t, "kubelet", x509.ExtKeyUsageServerAuth, "node-7.example", "10.1.2.3")
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := fakekubelet.WriteFile(t, t.TempDir(), "ca.crt", ca.PEM)
	cfg := parseConfig(t, "--kubelet.url="+srv.URL, "--kubelet.ca-file="+caFile, "--kubelet.token-file=")
	c, err := New(cfg, noEnv, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Metrics(context.Background(), "/metrics")
	if !errors.Is(err, ErrTLS) {
		t.Fatalf("error %v; want ErrTLS", err)
	}
	for _, w := range []string{"valid for node-7.example, 10.1.2.3, not for \"127.0.0.1\"", "point --kubelet.url (or NODE_IP/NODE_NAME)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

func TestPlainHTTPOnTheTLSPort(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	cfg := parseConfig(t, "--kubelet.url="+strings.Replace(srv.URL, "http://", "https://", 1), "--kubelet.ca-file=", "--kubelet.token-file=")
	c, err := New(cfg, noEnv, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Metrics(context.Background(), "/metrics")
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "answered plain HTTP") {
		t.Fatalf("error %v; want ErrTLS saying the port speaks plain HTTP", err)
	}
}

func TestInsecureSkipVerify(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	cfg := parseConfig(t, append(certArgs(k), "--kubelet.url="+k.URL, "--kubelet.insecure-skip-verify")...)
	reg := prometheus.NewRegistry()
	logs := &testlog.Buffer{}
	c, err := New(cfg, noEnv, slog.New(slog.NewTextHandler(logs, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Metrics(context.Background(), "/metrics"); err != nil {
		t.Fatalf("insecure mode could not fetch: %v", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "--kubelet.insecure-skip-verify") {
		t.Errorf("no warning naming --kubelet.insecure-skip-verify:\n%s", logs)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP nodeagent_kubelet_tls_verified nodeagent: whether the kubelet's serving certificate is verified (1) or --kubelet.insecure-skip-verify is set (0).
# TYPE nodeagent_kubelet_tls_verified gauge
nodeagent_kubelet_tls_verified 0
`), "nodeagent_kubelet_tls_verified"); err != nil {
		t.Error(err)
	}
}

func TestSlowKubelet(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	k.Handle("/metrics", func(w http.ResponseWriter, r *http.Request) {
		select { // answers never, or when the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Run("own timeout", func(t *testing.T) {
		t.Parallel()
		c, reg, _ := newTestClient(t, k, append(certArgs(k), "--kubelet.timeout=100ms")...)
		_, err := c.Metrics(context.Background(), "/metrics")
		if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "within 100ms") {
			t.Fatalf("error %v; want ErrTimeout naming the timeout", err)
		}
		if got := testutil.ToFloat64(c.metrics.up.WithLabelValues("/metrics")); got != 0 {
			t.Errorf("nodeagent_kubelet_up = %v; want 0", got)
		}
		_ = reg
	})
	t.Run("caller's deadline", func(t *testing.T) {
		t.Parallel()
		c, _, _ := newTestClient(t, k, certArgs(k)...) // --kubelet.timeout stays 10s
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := c.Metrics(ctx, "/metrics"); !errors.Is(err, ErrTimeout) {
			t.Fatalf("error %v; want ErrTimeout", err)
		}
	})
}

func TestBodySizeLimit(t *testing.T) {
	t.Parallel()
	const size = 50 << 20 // 50 MB, over the 32 MiB default
	k := fakekubelet.New(t)
	line := []byte("kubelet_fake_series{n=\"x\"} 1\n")
	chunk := bytes.Repeat(line, (1<<20)/len(line))
	stream := func(w http.ResponseWriter, announce bool) {
		w.Header().Set("Content-Type", fakekubelet.TextFormat)
		if announce {
			w.Header().Set("Content-Length", fmt.Sprint(size/len(chunk)*len(chunk)))
		}
		for range size / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client hung up at its limit
			}
		}
	}
	k.Handle("/metrics", func(w http.ResponseWriter, _ *http.Request) { stream(w, true) })
	k.Handle("/metrics/probes", func(w http.ResponseWriter, _ *http.Request) { stream(w, false) })
	t.Run("announced", func(t *testing.T) {
		t.Parallel()
		c, _, _ := newTestClient(t, k, certArgs(k)...) // the default limit, 32 MiB
		_, err := c.Metrics(context.Background(), "/metrics")
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "announced, limit 33554432") {
			t.Errorf("error %v; want ErrTooLarge refusing the announced length", err)
		}
	})
	t.Run("streamed", func(t *testing.T) {
		t.Parallel()
		// Without a Content-Length the client reads up to the limit; a small
		// one keeps the test cheap.
		c, _, _ := newTestClient(t, k, append(certArgs(k), "--kubelet.max-body-size=1MiB")...)
		_, err := c.Metrics(context.Background(), "/metrics/probes")
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 1048576 bytes") {
			t.Errorf("error %v; want ErrTooLarge at the limit", err)
		}
	})
}

func TestNotMetrics(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	for _, tc := range []struct {
		name, contentType, body, want string
	}{
		{"html error page", "text/html; charset=utf-8", "<html><body>502 Bad Gateway</body></html>", `Content-Type "text/html; charset=utf-8" is not a Prometheus exposition format`},
		{"garbage as text", fakekubelet.TextFormat, "<html>\x00\x01 not metrics", "parsing text/plain"},
		{"no content type", "", "kubelet_node_name 1\n", `Content-Type ""`},
		{"truncated protobuf", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", "\xff\xff\x01garbage", "parsing application/vnd.google.protobuf"},
		// A length prefix of terabytes: expfmt's decoder would try to allocate it.
		{"protobuf claiming a huge message", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", "\xe1\xe1\xe1\xe1\xe1\xe1\x00", "exceeded unmarshaler's maximum"},
	} {
		path := "/metrics/" + strings.ReplaceAll(tc.name, " ", "-")
		k.SetBody(path, tc.contentType, []byte(tc.body))
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _, _ := newTestClient(t, k, certArgs(k)...)
			_, err := c.Metrics(context.Background(), path)
			if !errors.Is(err, ErrBadBody) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), k.URL+path) {
				t.Errorf("error %v; want ErrBadBody naming the URL and %q", err, tc.want)
			}
		})
	}
}

func TestKubeletGoesAwayAndComesBack(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	c, reg, _ := newTestClient(t, k, certArgs(k)...)
	up := func() float64 { return testutil.ToFloat64(c.metrics.up.WithLabelValues("/metrics")) }
	if _, err := c.Metrics(context.Background(), "/metrics"); err != nil || up() != 1 {
		t.Fatalf("first fetch: %v, up %v", err, up())
	}
	k.Stop()
	// The first request may still go out on the kept-alive connection that
	// the stop cut; the next one finds the port closed.
	for i := range 2 {
		_, err := c.Metrics(context.Background(), "/metrics")
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("kubelet down: error %v; want ErrUnreachable", err)
		}
		if up() != 0 {
			t.Error("nodeagent_kubelet_up stayed 1 while the kubelet was down")
		}
		if i == 1 && !strings.Contains(err.Error(), "connection refused, nothing listens there") {
			t.Errorf("kubelet down: error %v; want it to say nothing listens", err)
		}
	}
	k.Restart()
	if _, err := c.Metrics(context.Background(), "/metrics"); err != nil || up() != 1 {
		t.Fatalf("after restart: %v, up %v", err, up())
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP nodeagent_kubelet_request_errors_total nodeagent: failed requests to the kubelet by endpoint and reason (unreachable, timeout, tls, unauthorized, forbidden, status, too_large, bad_body, canceled).
# TYPE nodeagent_kubelet_request_errors_total counter
nodeagent_kubelet_request_errors_total{endpoint="/metrics",reason="unreachable"} 2
`), "nodeagent_kubelet_request_errors_total"); err != nil {
		t.Error(err)
	}
}

// TestProtobufAndTextAgree serves the real capture in the format the client
// asks for first (delimited protobuf) and checks that the families equal
// the text ones, and that the client asked for protobuf.
func TestProtobufAndTextAgree(t *testing.T) {
	t.Parallel()
	text := fakekubelet.Payload(t, "k8s-1.37-local_metrics.txt")
	want, err := promfetch.Decode(text, fakekubelet.TextFormat)
	if err != nil {
		t.Fatal(err)
	}
	var proto bytes.Buffer
	format := expfmt.NewFormat(expfmt.TypeProtoDelim)
	enc := expfmt.NewEncoder(&proto, format)
	for _, mf := range want {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	k := fakekubelet.New(t)
	var accept string
	var mu sync.Mutex
	k.Handle("/metrics", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		accept = r.Header.Get("Accept")
		mu.Unlock()
		w.Header().Set("Content-Type", string(format))
		_, _ = w.Write(proto.Bytes())
	})
	c, _, _ := newTestClient(t, k, certArgs(k)...)
	got, err := c.Metrics(context.Background(), "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if string(collectortest.Encode(t, got...)) != string(collectortest.Encode(t, want...)) {
		t.Error("families decoded from protobuf differ from the text capture's")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.HasPrefix(accept, "application/vnd.google.protobuf") {
		t.Errorf("Accept %q does not prefer protobuf", accept)
	}
}

func TestNewFileErrors(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"token file given but missing", []string{"--kubelet.token-file=" + missing}, "--kubelet.token-file"},
		{"CA file given but missing", []string{"--kubelet.ca-file=" + missing}, "--kubelet.ca-file"},
		{"client certificate missing", []string{"--kubelet.client-cert-file=" + missing, "--kubelet.client-key-file=" + missing}, "kubelet client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := parseConfig(t, append([]string{"--kubelet.url=" + k.URL}, tc.args...)...)
			_, err := New(cfg, noEnv, slog.New(slog.DiscardHandler), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), missing) {
				t.Errorf("New: %v; want an error naming %s and the file", err, tc.want)
			}
		})
	}
}

// TestDefaultFilesOutsideAPod: the in-cluster token and CA do not exist on
// this machine; with the defaults the client still starts, with no
// credentials and the system's CAs, and says so.
func TestDefaultFilesOutsideAPod(t *testing.T) {
	t.Parallel()
	for _, f := range []string{DefaultTokenFile, DefaultCAFile} {
		if _, err := os.Stat(f); err == nil {
			t.Skipf("%s exists: running in a pod", f)
		}
	}
	cfg := parseConfig(t, "--kubelet.url=https://127.0.0.1:1")
	logs := &testlog.Buffer{}
	c, err := New(cfg, noEnv, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.creds.String() != "no credentials" || c.trust != "the system's trusted CAs" {
		t.Errorf("auth %q, trust %q; want no credentials and the system's CAs", c.creds, c.trust)
	}
	for _, w := range []string{"no service-account token file", "no in-cluster CA file"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logs)
		}
	}
}
