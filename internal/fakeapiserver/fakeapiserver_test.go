package fakeapiserver

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
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
