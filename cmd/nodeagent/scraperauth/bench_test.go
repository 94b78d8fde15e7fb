package scraperauth

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkCachedRequest is the cost the check adds to a scrape once both
// answers are cached (every scrape but one per cache TTL).
func BenchmarkCachedRequest(b *testing.B) {
	e := newEnv(b, testConfig)
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h := e.auth.Wrap(next, Routes{Public: []string{"/healthz"}})
	req := httptest.NewRequest(http.MethodGet, "/metrics/node", nil)
	req.TLS = &tls.ConnectionState{}
	req.Header.Set("Authorization", bearer(promToken))
	h.ServeHTTP(httptest.NewRecorder(), req) // fills the caches
	if tr, sar := e.calls(); tr != 1 || sar != 1 {
		b.Fatalf("warm-up made %d and %d reviews", tr, sar)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
