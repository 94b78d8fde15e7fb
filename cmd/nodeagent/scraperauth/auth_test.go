package scraperauth

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nodeagent/nodeagent/internal/fakeapiserver"
	"github.com/nodeagent/nodeagent/internal/kubeapi"
	"github.com/nodeagent/nodeagent/internal/testclock"
	"github.com/nodeagent/nodeagent/internal/testlog"
)

// Identities of the tests' fake API server.
const (
	promToken   = "prometheus-token"
	promUser    = "system:serviceaccount:monitoring:prometheus-k8s"
	nobodyToken = "nobody-token"
	nobodyUser  = "system:serviceaccount:default:nobody"
	// groupToken's user has no grant of its own; its group has.
	groupToken = "group-token"
	groupUser  = "system:serviceaccount:monitoring:other"
	groupName  = "system:serviceaccounts:monitoring"
)

var testConfig = Config{Enabled: true, CacheTTL: 2 * time.Minute, DenyCacheTTL: 30 * time.Second, CacheSize: 16, Timeout: 5 * time.Second}

type env struct {
	api   *fakeapiserver.Server
	auth  *Authenticator
	clock *testclock.Clock
	reg   *prometheus.Registry
	logs  *testlog.Buffer
	srv   *httptest.Server
}

// newEnv starts a fake API server with the tests' identities and a TLS
// server whose handler answers "ok" behind the authenticator; /healthz is
// public, /unknown is a path the handler does not serve.
func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	e := &env{api: fakeapiserver.New(t), clock: testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		reg: prometheus.NewRegistry(), logs: &testlog.Buffer{}}
	e.api.AddToken(promToken, fakeapiserver.User{Name: promUser, UID: "uid-1", Groups: []string{"system:serviceaccounts", groupName, "system:authenticated"}})
	e.api.AddToken(nobodyToken, fakeapiserver.User{Name: nobodyUser, Groups: []string{"system:serviceaccounts", "system:authenticated"}})
	e.api.AddToken(groupToken, fakeapiserver.User{Name: groupUser, Groups: []string{groupName}})
	e.api.Allow(promUser, "/metrics", "/metrics/*")
	e.api.Allow(groupName, "/metrics/node")
	restCfg, err := kubeapi.Options{Kubeconfig: e.api.Kubeconfig}.Config()
	if err != nil {
		t.Fatal(err)
	}
	e.auth, err = New(cfg, Deps{REST: restCfg, Registerer: e.reg, Logger: e.logs.Logger(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	e.srv = httptest.NewTLSServer(e.auth.Wrap(ok, Routes{
		Public: []string{"/healthz"},
		Serves: func(r *http.Request) bool { return r.URL.Path != "/unknown" },
	}))
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", e.logs.String())
		}
	})
	return e
}

type reply struct {
	code   int
	body   string
	header http.Header
}

// get requests path with "Authorization: <auth>" (none when empty).
func (e *env) get(t *testing.T, path, auth string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header}
}

func bearer(token string) string { return "Bearer " + token }

func (e *env) calls() (tokenReviews, accessReviews int) {
	return e.api.Calls(fakeapiserver.TokenReviews), e.api.Calls(fakeapiserver.SubjectAccessReviews)
}

func TestStatusCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig)
	for _, tc := range []struct {
		name, path, auth string
		want             int
		wantBody         string
		wantChallenge    string
	}{
		{"allowed", "/metrics/node", bearer(promToken), http.StatusOK, "ok", ""},
		{"allowed by a wildcard rule", "/metrics/cadvisor", bearer(promToken), http.StatusOK, "ok", ""},
		{"allowed through a group", "/metrics/node", bearer(groupToken), http.StatusOK, "ok", ""},
		{"scheme is case-insensitive", "/metrics", "bearer " + promToken, http.StatusOK, "ok", ""},
		{"no token", "/metrics", "", http.StatusUnauthorized, "no bearer token", `Bearer realm="nodeagent"`},
		{"basic auth is no token", "/metrics", "Basic cHJvbWV0aGV1czpzZWNyZXQ=", http.StatusUnauthorized, "no bearer token", `Bearer realm="nodeagent"`},
		{"empty token", "/metrics", "Bearer ", http.StatusUnauthorized, "no bearer token", `Bearer realm="nodeagent"`},
		{"unknown token", "/metrics", bearer("made-up"), http.StatusUnauthorized, "does not authenticate", `Bearer realm="nodeagent", error="invalid_token"`},
		{"denied", "/metrics/node", bearer(nobodyToken), http.StatusForbidden,
			`forbidden: user "system:serviceaccount:default:nobody" may not get nonResourceURL "/metrics/node"; grant it with a ClusterRole rule {nonResourceURLs: ["/metrics/node"], verbs: ["get"]}`, ""},
		{"group grant does not cover other paths", "/metrics/cadvisor", bearer(groupToken), http.StatusForbidden, `may not get nonResourceURL "/metrics/cadvisor"`, ""},
		{"landing page needs its own grant", "/", bearer(promToken), http.StatusForbidden, `nonResourceURLs: ["/"]`, ""},
		{"public path without token", "/healthz", "", http.StatusOK, "ok", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.get(t, tc.path, tc.auth)
			if r.code != tc.want || !strings.Contains(r.body, tc.wantBody) {
				t.Errorf("GET %s: %d %q; want %d containing %q", tc.path, r.code, r.body, tc.want, tc.wantBody)
			}
			if got := r.header.Get("WWW-Authenticate"); got != tc.wantChallenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.wantChallenge)
			}
		})
	}
	if strings.Contains(e.logs.String(), promToken) || strings.Contains(e.logs.String(), nobodyToken) {
		t.Errorf("a token appears in the log:\n%s", e.logs.String())
	}
}

// TestUnknownPathCostsNoAccessReview: an authenticated request for a path
// the handler does not serve gets its 404 without a SubjectAccessReview.
func TestUnknownPathCostsNoAccessReview(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig)
	if r := e.get(t, "/unknown", bearer(promToken)); r.code != http.StatusOK { // the test handler answers "ok" to anything routed to it
		t.Fatalf("unknown path: %d %q", r.code, r.body)
	}
	if r := e.get(t, "/unknown", bearer("made-up")); r.code != http.StatusUnauthorized {
		t.Errorf("unknown path with a bad token: %d, want 401 (authentication comes first)", r.code)
	}
	if tr, sar := e.calls(); tr != 2 || sar != 0 {
		t.Errorf("%d TokenReviews, %d SubjectAccessReviews; want 2 and 0", tr, sar)
	}
	if got := testutil.ToFloat64(e.auth.metrics.requests.WithLabelValues(resultNotFound)); got != 1 {
		t.Errorf("not_found requests %v, want 1", got)
	}
}

func TestPlainHTTPGetsNoTokenChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig)
	plain := httptest.NewServer(e.auth.Wrap(http.NotFoundHandler(), Routes{}))
	defer plain.Close()
	req, _ := http.NewRequest(http.MethodGet, plain.URL+"/metrics", nil)
	req.Header.Set("Authorization", bearer(promToken))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bearer token over plain HTTP: %d, want 403", resp.StatusCode)
	}
	if tr, sar := e.calls(); tr+sar != 0 {
		t.Errorf("%d reviews for a plain-HTTP request, want none", tr+sar)
	}
}

// TestAPIServerGone: no answer and nothing cached is 503, never 200 and
// never 401; when the API server is back, the same request passes.
func TestAPIServerGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig)
	e.api.Stop()
	for _, tok := range []string{promToken, nobodyToken, "made-up"} {
		if r := e.get(t, "/metrics", bearer(tok)); r.code != http.StatusServiceUnavailable || r.body == "ok" {
			t.Errorf("API server down, token %s: %d %q; want 503", tok, r.code, r.body)
		}
	}
	if !e.logs.Contains("connection refused") {
		t.Errorf("the log does not say why:\n%s", e.logs.String())
	}
	e.api.Restart()
	if r := e.get(t, "/metrics", bearer(promToken)); r.code != http.StatusOK {
		t.Errorf("API server back: %d %q, want 200", r.code, r.body)
	}
	if got := testutil.ToFloat64(e.auth.metrics.requests.WithLabelValues(resultError)); got != 3 {
		t.Errorf("error requests %v, want 3", got)
	}
	if got := testutil.ToFloat64(e.auth.metrics.reviews.WithLabelValues(reviewToken, "error")); got != 3 {
		t.Errorf("failed TokenReviews %v, want 3", got)
	}
}

func TestAPIServerFailing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig)
	// Authenticated first, so that the failing review is the
	// SubjectAccessReview of another path.
	if r := e.get(t, "/metrics", bearer(promToken)); r.code != http.StatusOK {
		t.Fatalf("before the failure: %d", r.code)
	}
	e.api.Fail(http.StatusInternalServerError)
	if r := e.get(t, "/metrics/node", bearer(promToken)); r.code != http.StatusServiceUnavailable {
		t.Errorf("SubjectAccessReview answered 500: %d %q, want 503", r.code, r.body)
	}
	e.api.Fail(0)
	if r := e.get(t, "/metrics/node", bearer(promToken)); r.code != http.StatusOK {
		t.Errorf("healed: %d %q, want 200 (a failure is not cached)", r.code, r.body)
	}
}

func TestAPIServerSlow(t *testing.T) {
	t.Parallel()
	cfg := testConfig
	cfg.Timeout = 200 * time.Millisecond
	e := newEnv(t, cfg)
	e.api.SetDelay(5 * time.Second)
	start := time.Now()
	r := e.get(t, "/metrics", bearer(promToken))
	if r.code != http.StatusServiceUnavailable {
		t.Errorf("slow API server: %d %q, want 503", r.code, r.body)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the answer took %s; the review timeout is %s", d, cfg.Timeout)
	}
}

// TestNodeagentNotAllowedToReview: when nodeagent's own ClusterRole lacks
// create on tokenreviews, scrapes get 503 and the log says which rule to
// add.
func TestNodeagentNotAllowedToReview(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig)
	e.api.Forbid(fakeapiserver.TokenReviews, true)
	if r := e.get(t, "/metrics", bearer(promToken)); r.code != http.StatusServiceUnavailable {
		t.Errorf("%d %q, want 503", r.code, r.body)
	}
	want := `grant its ClusterRole {apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"]}`
	if !e.logs.Contains(strings.ReplaceAll(want, `"`, `\"`)) { // logfmt escapes quotes
		t.Errorf("the log lacks %q:\n%s", want, e.logs.String())
	}
}

func TestCacheAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig)
	for range 3 {
		if r := e.get(t, "/metrics/node", bearer(promToken)); r.code != http.StatusOK {
			t.Fatalf("%d %q", r.code, r.body)
		}
	}
	if tr, sar := e.calls(); tr != 1 || sar != 1 {
		t.Errorf("3 identical requests made %d TokenReviews and %d SubjectAccessReviews, want 1 and 1", tr, sar)
	}
	for _, review := range []string{reviewToken, reviewAccess} {
		if got := testutil.ToFloat64(e.auth.metrics.cacheHits.WithLabelValues(review)); got != 2 {
			t.Errorf("%s cache hits %v, want 2", review, got)
		}
	}
	// A cached answer still serves while the API server is away …
	e.api.Stop()
	if r := e.get(t, "/metrics/node", bearer(promToken)); r.code != http.StatusOK {
		t.Errorf("cached, API server down: %d, want 200", r.code)
	}
	// … until it expires.
	e.clock.Advance(testConfig.CacheTTL + time.Second)
	if r := e.get(t, "/metrics/node", bearer(promToken)); r.code != http.StatusServiceUnavailable {
		t.Errorf("expired, API server down: %d, want 503", r.code)
	}
	e.api.Restart()
	if r := e.get(t, "/metrics/node", bearer(promToken)); r.code != http.StatusOK {
		t.Errorf("expired, API server back: %d, want 200", r.code)
	}
	if tr, sar := e.calls(); tr != 2 || sar != 2 {
		// Once before and once after the restart; the attempt while it
		// was down never reached it.
		t.Errorf("%d TokenReviews and %d SubjectAccessReviews reached the API server, want 2 and 2", tr, sar)
	}
}

// TestCacheDenied: a denial is remembered for the deny TTL, so a grant
// added meanwhile takes effect after it.
func TestCacheDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig)
	for range 2 {
		if r := e.get(t, "/metrics", bearer(nobodyToken)); r.code != http.StatusForbidden {
			t.Fatalf("%d %q, want 403", r.code, r.body)
		}
	}
	if _, sar := e.calls(); sar != 1 {
		t.Errorf("2 denied requests made %d SubjectAccessReviews, want 1", sar)
	}
	e.api.Allow(nobodyUser, "/metrics")
	if r := e.get(t, "/metrics", bearer(nobodyToken)); r.code != http.StatusForbidden {
		t.Errorf("within the deny TTL: %d, want the cached 403", r.code)
	}
	e.clock.Advance(testConfig.DenyCacheTTL + time.Second)
	if r := e.get(t, "/metrics", bearer(nobodyToken)); r.code != http.StatusOK {
		t.Errorf("after the deny TTL: %d %q, want 200", r.code, r.body)
	}
	if tr, sar := e.calls(); tr != 1 || sar != 2 {
		t.Errorf("%d TokenReviews and %d SubjectAccessReviews, want 1 (the token is still cached) and 2", tr, sar)
	}
}

func TestCacheUnauthenticated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig)
	const late = "issued-later"
	for range 2 {
		if r := e.get(t, "/metrics", bearer(late)); r.code != http.StatusUnauthorized {
			t.Fatalf("%d, want 401", r.code)
		}
	}
	if tr, _ := e.calls(); tr != 1 {
		t.Errorf("2 requests with one bad token made %d TokenReviews, want 1", tr)
	}
	e.api.AddToken(late, fakeapiserver.User{Name: promUser})
	e.clock.Advance(testConfig.DenyCacheTTL + time.Second)
	if r := e.get(t, "/metrics", bearer(late)); r.code != http.StatusOK {
		t.Errorf("after the deny TTL: %d %q, want 200", r.code, r.body)
	}
}

// TestCacheBounded: with room for two tokens, a third evicts the least
// recently used one, which costs a review again.
func TestCacheBounded(t *testing.T) {
	t.Parallel()
	cfg := testConfig
	cfg.CacheSize = 2
	e := newEnv(t, cfg)
	tokens := []string{"t1", "t2", "t3"}
	for _, tok := range tokens {
		e.api.AddToken(tok, fakeapiserver.User{Name: "user-" + tok})
		e.api.Allow("user-"+tok, "/metrics")
		if r := e.get(t, "/metrics", bearer(tok)); r.code != http.StatusOK {
			t.Fatalf("%s: %d", tok, r.code)
		}
	}
	if tr, _ := e.calls(); tr != 3 {
		t.Fatalf("%d TokenReviews for 3 tokens", tr)
	}
	e.get(t, "/metrics", bearer("t3")) // cached: the most recent
	if tr, _ := e.calls(); tr != 3 {
		t.Errorf("t3 again: %d TokenReviews, want 3 (cached)", tr)
	}
	e.get(t, "/metrics", bearer("t1")) // evicted by t3
	if tr, _ := e.calls(); tr != 4 {
		t.Errorf("t1 again: %d TokenReviews, want 4 (evicted)", tr)
	}
}

// TestGarbageDoesNotEvictGood: rejected tokens have their own cache, so a
// flood of them does not push out the scraper's.
func TestGarbageDoesNotEvictGood(t *testing.T) {
	t.Parallel()
	cfg := testConfig
	cfg.CacheSize = 2
	e := newEnv(t, cfg)
	e.get(t, "/metrics", bearer(promToken))
	for i := range 10 {
		if r := e.get(t, "/metrics", bearer(fmt.Sprintf("garbage-%d", i))); r.code != http.StatusUnauthorized {
			t.Fatalf("garbage: %d", r.code)
		}
	}
	before, _ := e.calls()
	if r := e.get(t, "/metrics", bearer(promToken)); r.code != http.StatusOK {
		t.Fatalf("%d", r.code)
	}
	if after, _ := e.calls(); after != before {
		t.Errorf("the scraper's token was reviewed again after 10 garbage tokens (%d → %d TokenReviews)", before, after)
	}
}

// TestConcurrentRequestsShareOneReview: identical requests arriving while
// the first one's reviews are under way wait for them instead of sending
// their own.
func TestConcurrentRequestsShareOneReview(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig)
	e.api.SetDelay(300 * time.Millisecond)
	const n = 20
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes[i] = e.get(t, "/metrics/node", bearer(promToken)).code })
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: %d", i, c)
		}
	}
	if tr, sar := e.calls(); tr != 1 || sar != 1 {
		t.Errorf("%d concurrent identical requests made %d TokenReviews and %d SubjectAccessReviews, want 1 and 1", n, tr, sar)
	}
}

func TestRequestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig)
	e.get(t, "/metrics", bearer(promToken))
	e.get(t, "/metrics", bearer(promToken))
	e.get(t, "/metrics", "")
	e.get(t, "/metrics", bearer("made-up"))
	e.get(t, "/metrics", bearer(nobodyToken))
	e.get(t, "/healthz", "")
	want := `
# HELP nodeagent_http_auth_requests_total Requests that needed a Kubernetes bearer token (--web.kubernetes-auth), by outcome: allowed, unauthenticated (401), denied (403), error (503: no answer from the API server), not_found (authenticated, unknown path).
# TYPE nodeagent_http_auth_requests_total counter
nodeagent_http_auth_requests_total{result="allowed"} 2
nodeagent_http_auth_requests_total{result="denied"} 1
nodeagent_http_auth_requests_total{result="error"} 0
nodeagent_http_auth_requests_total{result="not_found"} 0
nodeagent_http_auth_requests_total{result="unauthenticated"} 2
# HELP nodeagent_http_auth_reviews_total TokenReviews and SubjectAccessReviews sent to the Kubernetes API server, by whether they got an answer (ok) or not (error).
# TYPE nodeagent_http_auth_reviews_total counter
nodeagent_http_auth_reviews_total{result="error",review="subjectaccessreview"} 0
nodeagent_http_auth_reviews_total{result="error",review="tokenreview"} 0
nodeagent_http_auth_reviews_total{result="ok",review="subjectaccessreview"} 2
nodeagent_http_auth_reviews_total{result="ok",review="tokenreview"} 3
`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(want), "nodeagent_http_auth_requests_total", "nodeagent_http_auth_reviews_total"); err != nil {
		t.Error(err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	bad := Config{Enabled: true, CacheTTL: 0, DenyCacheTTL: -time.Second, CacheSize: 0, Timeout: 0}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error for an all-zero config")
	}
	for _, flag := range []string{"cache-ttl", "deny-cache-ttl", "cache-size", "timeout"} {
		if !strings.Contains(err.Error(), "--web.kubernetes-auth."+flag) {
			t.Errorf("error does not name --web.kubernetes-auth.%s: %v", flag, err)
		}
	}
	if err := testConfig.Validate(); err != nil {
		t.Errorf("good config: %v", err)
	}
}
