package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// passwordHash is bcrypt("scrape-secret") at the minimum cost 4, so tests
// under the race detector on a loaded machine do not wait on bcrypt (as in
// testdata/web-config/basic-auth-only.good.yml).
const passwordHash = "$2a$04$tkPsm5/nYkaVr1b/CTqkmeQiQaam9hMAg0Utsl.zZ1B9r3BMA0or."

type tlsFixture struct {
	ca, otherCA         *fakekubelet.CA
	dir, config         string
	clientCert, clientK []byte
	rogueCert, rogueK   []byte
}

// newTLSFixture writes a web-config with TLS, required client certificates
// and basic auth, plus the certificates it names.
func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	f := &tlsFixture{ca: fakekubelet.NewCA(t, "nodeagent-test-ca"), otherCA: fakekubelet.NewCA(t, "rogue-ca"), dir: t.TempDir()}
	srvCert, srvKey := f.ca.Issue(t, "nodeagent", x509.ExtKeyUsageServerAuth)
	writeFile(t, f.dir, "server.crt", srvCert)
	writeFile(t, f.dir, "server.key", srvKey)
	writeFile(t, f.dir, "client-ca.crt", f.ca.PEM)
	f.clientCert, f.clientK = f.ca.Issue(t, "prometheus", x509.ExtKeyUsageClientAuth)
	f.rogueCert, f.rogueK = f.otherCA.Issue(t, "prometheus", x509.ExtKeyUsageClientAuth)
	f.config = writeFile(t, f.dir, "web-config.yml", fmt.Appendf(nil, `tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: client-ca.crt
basic_auth_users:
  prometheus: %s
`, passwordHash))
	return f
}

func TestTLSWebConfig(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	addr := startAgent(t, "--web.config.file="+f.config)
	url := "https://" + addr + "/metrics/node"

	t.Run("plain HTTP refused", func(t *testing.T) {
		code, body := get(t, &http.Client{Timeout: 30 * time.Second}, "http://"+addr+"/metrics/node")
		if code != http.StatusBadRequest || strings.Contains(body, "node_load1") {
			t.Errorf("plain HTTP got %d %q, want 400 and no metrics", code, body)
		}
	})
	t.Run("no client certificate refused", func(t *testing.T) {
		if _, err := tlsClient(t, f.ca, nil, nil).Get(url); err == nil {
			t.Error("request without a client certificate succeeded")
		}
	})
	t.Run("client certificate from another CA refused", func(t *testing.T) {
		if _, err := tlsClient(t, f.ca, f.rogueCert, f.rogueK).Get(url); err == nil {
			t.Error("request with a rogue client certificate succeeded")
		}
	})
	c := tlsClient(t, f.ca, f.clientCert, f.clientK)
	for _, tc := range []struct {
		name, user, pass string
		want             int
	}{
		{"no password", "", "", http.StatusUnauthorized},
		{"wrong password", "prometheus", "guess", http.StatusUnauthorized},
		{"wrong user", "admin", "scrape-secret", http.StatusUnauthorized},
		{"right credentials", "prometheus", "scrape-secret", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if served := strings.Contains(body.String(), "node_load1 0.21"); served != (tc.want == http.StatusOK) {
				t.Errorf("metrics served = %v with status %d", served, resp.StatusCode)
			}
		})
	}
}

// TestTLSCertificateRotation shows that a rotated serving certificate is
// used for new connections without a restart.
func TestTLSCertificateRotation(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	addr := startAgent(t, "--web.config.file="+f.config)
	serverCN := func() string {
		c := tlsClient(t, f.ca, f.clientCert, f.clientK)
		c.Transport.(*http.Transport).DisableKeepAlives = true
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/healthz", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if cn := serverCN(); cn != "nodeagent" {
		t.Fatalf("serving certificate CN %q, want nodeagent", cn)
	}
	cert, key := f.ca.Issue(t, "nodeagent-rotated", x509.ExtKeyUsageServerAuth)
	writeFile(t, f.dir, "server.key", key)
	writeFile(t, f.dir, "server.crt", cert)
	if cn := serverCN(); cn != "nodeagent-rotated" {
		t.Errorf("after rotation the serving certificate CN is %q, want nodeagent-rotated", cn)
	}
}

func TestBadWebConfigIsStartupError(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/web-config/*.bad.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad web-config fixtures: %v", err)
	}
	wantProblem := map[string]string{
		"malformed-yaml.bad.yml":    "yaml",
		"unknown-field.bad.yml":     "client_auth",
		"missing-cert.bad.yml":      "does-not-exist.crt",
		"bad-password-hash.bad.yml": "hash",
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			code := run(context.Background(), append(append([]string{}, fixtureArgs...), "--web.config.file="+file), nil, &stderr, &stderr)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			msg := stderr.String()
			if !strings.Contains(msg, file) {
				t.Errorf("message does not name the file %s: %s", file, msg)
			}
			if want := wantProblem[filepath.Base(file)]; want == "" || !strings.Contains(msg, want) {
				t.Errorf("message does not say the problem (%q): %s", want, msg)
			}
		})
	}
}

func TestUnreadableCertificateIsStartupError(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	crt := filepath.Join(f.dir, "server.crt")
	if err := os.WriteFile(crt, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	code := run(context.Background(), append(append([]string{}, fixtureArgs...), "--web.config.file="+f.config), nil, &stderr, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), f.config) || !strings.Contains(stderr.String(), "X509KeyPair") {
		t.Errorf("exit %d, message %q; want 1 naming %s and the certificate problem", code, stderr.String(), f.config)
	}
}

func TestGoodWebConfigFixturesValidate(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/web-config/*.good.yml")
	if len(files) == 0 {
		t.Fatal("no good web-config fixtures")
	}
	for _, file := range files {
		opts := parseServe(t, append(append([]string{}, fixtureArgs...), "--web.config.file="+file)...)
		if err := opts.validate(); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}

func TestBasicAuthWithoutTLS(t *testing.T) {
	t.Parallel()
	addr := startAgent(t, "--web.config.file=testdata/web-config/basic-auth-only.good.yml")
	c := &http.Client{Timeout: 30 * time.Second}
	if code, _ := get(t, c, "http://"+addr+"/metrics"); code != http.StatusUnauthorized {
		t.Errorf("without credentials: %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	req.SetBasicAuth("prometheus", "scrape-secret")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with credentials: %d, want 200", resp.StatusCode)
	}
}

func TestRunFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string
	}{
		{"unknown collector", []string{"--collector.nope"}, 2, "collector.nope"},
		{"unknown collector disabled", []string{"--no-collector.nope"}, 2, "collector.nope"},
		{"pprof off loopback", []string{"--debug.pprof-address=0.0.0.0:6060"}, 1, "loopback"},
		{"every bad option at once", []string{"--scrape.timeout=0s", "--scrape.max-concurrency=0"}, 1, "--scrape.max-concurrency must be positive"},
		{"missing procfs", []string{"--path.procfs=/nonexistent/proc", "--path.sysfs=/sys"}, 1, "/nonexistent/proc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			args := tc.args
			if !strings.HasPrefix(args[0], "--path.") {
				args = append(append([]string{}, fixtureArgs...), args...)
			}
			code := run(context.Background(), args, nil, &stdout, &stderr)
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantMsg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.wantCode, tc.wantMsg)
			}
		})
	}
}

func TestRunVersionAndHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--version", "--help"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{arg}, nil, &stdout, &stderr); code != 0 {
			t.Errorf("%s: exit %d, stderr %s", arg, code, stderr.String())
		}
		if !strings.Contains(stdout.String()+stderr.String(), "nodeagent") {
			t.Errorf("%s printed nothing about nodeagent", arg)
		}
	}
}

// TestGracefulShutdown cancels the agent (as SIGTERM does) while a scrape
// is in flight: the scrape completes and run returns cleanly.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	opts := parseServe(t, fixtureArgs...)
	a, err := newAgent(opts, &testlog.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	// The start-up collection passes; the scrape's collection blocks.
	slow := &collectortest.Fake{Name: "slow", Gate: gate, FreeCalls: 1, Value: 1}
	other := &collectortest.Fake{Name: "other", Value: 1}
	a.scraper, a.handler = newTestHandlerFor(t, 0, 10*time.Second, slow, other)
	l := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, listenersOf(l)) }()

	type reply struct {
		code int
		body string
	}
	// The start-up collection (of both collectors) is done before the
	// scrape, which asks for one collector so that it cannot join it.
	waitUntil(t, func() bool { return len(a.scraper.NotReady()) == 0 })
	replies := make(chan reply, 1)
	go func() {
		resp, err := http.Get("http://" + l.Addr().String() + "/metrics/node?collect[]=slow")
		if err != nil {
			replies <- reply{code: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		replies <- reply{resp.StatusCode, b.String()}
	}()
	waitUntil(t, func() bool { return slow.Calls() >= 2 })
	cancel()
	time.Sleep(50 * time.Millisecond) // shutdown has begun and waits for the scrape
	close(gate)
	r := <-replies
	if r.code != http.StatusOK || !strings.Contains(r.body, "test_slow_value 1") {
		t.Errorf("in-flight scrape during shutdown: %d %q", r.code, r.body)
	}
	if err := <-done; err != nil {
		t.Errorf("run returned %v", err)
	}
}

func TestPprofOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	addr := startAgent(t)
	if code, _ := get(t, &http.Client{Timeout: 30 * time.Second}, "http://"+addr+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof on the metrics port: %d, want 404", code)
	}
	l := listen(t)
	pprofAddr := l.Addr().String()
	l.Close()
	startAgent(t, "--debug.pprof-address="+pprofAddr)
	var code int
	waitUntil(t, func() bool {
		resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		code = resp.StatusCode
		return true
	})
	if code != http.StatusOK {
		t.Errorf("pprof with --debug.pprof-address: %d, want 200", code)
	}
}

// TestHealthAddress: with TLS and client certificates required on the main
// port, probes still reach /healthz and /readyz on --web.health-address,
// which serves nothing else.
func TestHealthAddress(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	l := listen(t)
	healthAddr := l.Addr().String()
	l.Close()
	startAgent(t, "--web.config.file="+f.config, "--web.health-address="+healthAddr)
	c := &http.Client{Timeout: 30 * time.Second}
	var code int
	waitUntil(t, func() bool {
		resp, err := c.Get("http://" + healthAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		code = resp.StatusCode
		return code == http.StatusOK
	})
	if c, _ := get(t, c, "http://"+healthAddr+"/healthz"); c != http.StatusOK {
		t.Errorf("/healthz on the health address: %d", c)
	}
	for _, p := range []string{"/metrics", "/metrics/node", "/"} {
		if c, _ := get(t, c, "http://"+healthAddr+p); c != http.StatusNotFound {
			t.Errorf("%s on the health address: %d, want 404", p, c)
		}
	}
}

func TestHeapProfiling(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pprof, godebug string
		want           bool
	}{
		{"", "", false},
		{"127.0.0.1:6060", "", true},
		{"", "memprofilerate=1", true},
		{"", "gctrace=1, memprofilerate=0", true},
		{"", "gctrace=1,madvdontneed=1", false},
		{"", "xmemprofilerate=1", false},
	} {
		if got := heapProfiling(tc.pprof, tc.godebug); got != tc.want {
			t.Errorf("pprof %q, GODEBUG %q: %v, want %v", tc.pprof, tc.godebug, got, tc.want)
		}
	}
}

func TestGOMAXPROCS(t *testing.T) {
	t.Parallel()
	host := []collectors.Instance{{Name: "cpu", Layer: collectors.LayerNode}, {Name: "machine", Layer: collectors.LayerCadvisor}, {Name: "kubelet", Layer: collectors.LayerKubelet}}
	all := append(append([]collectors.Instance{}, host...), collectors.Instance{Name: "cadvisor", Layer: collectors.LayerCadvisor})
	for _, tc := range []struct {
		name      string
		env       string
		instances []collectors.Instance
		want      int
	}{
		{"no cadvisor collector", "", host, 1},
		{"the cadvisor collector", "", all, 0},
		{"the environment decides", "4", host, 0},
	} {
		if got := autoGOMAXPROCS(tc.env, tc.instances); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
