package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/nodeagent/nodeagent/internal/testlog"
)

// BenchmarkNodeScrape measures one HTTP scrape of /metrics/node with the
// host collectors, as Prometheus would make it: collection, the
// scraper's merge and checks, and text encoding. "fixture" reads the
// testdata/host node; "real-host" this machine's /proc and /sys.
func BenchmarkNodeScrape(b *testing.B) {
	args := []string{"--log.level=error", "--collector.disable-defaults"}
	for _, c := range hostCollectors() {
		args = append(args, "--collector."+c)
	}
	for _, bc := range []struct {
		name  string
		paths []string
	}{
		{"fixture", fixtureArgs[:4]},
		{"real-host", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.paths == nil {
				if _, err := os.Stat("/proc/stat"); err != nil {
					b.Skipf("no /proc on this machine: %v", err)
				}
			}
			a, err := newAgent(parseServe(b, append(append([]string{}, bc.paths...), args...)...), &testlog.Buffer{})
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/metrics/node", nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				a.handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}
