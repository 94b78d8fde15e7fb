package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nodeagent/nodeagent/internal/testlog"
)

// BenchmarkScrape measures one full HTTP scrape of /metrics through the real
// wiring (flags, registry, the default collectors over the fixture node, self metrics,
// encoding), to show the framework's own cost per scrape.
func BenchmarkScrape(b *testing.B) {
	app := newBenchApp(b)
	for _, path := range []string{"/metrics/node", "/metrics"} {
		b.Run(path, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				app.handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

func newBenchApp(b *testing.B) *agent {
	b.Helper()
	opts := parseServe(b, append(append([]string{}, fixtureArgs[:4]...), "--log.level=error")...)
	a, err := newAgent(opts, &testlog.Buffer{})
	if err != nil {
		b.Fatal(err)
	}
	return a
}
