package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

func TestCheckMetrics(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantOut  string
	}{
		{"clean file", []string{"testdata/check/clean.good.prom"}, "", 0, ""},
		{"lint problem", []string{"testdata/check/camelcase.bad.prom"}, "", 1, "myapp_queueLength: metric names should be written in 'snake_case'"},
		{"parse error", []string{"testdata/check/garbage.bad.prom"}, "", 1, "garbage.bad.prom: parsing exposition"},
		{"missing file", []string{"testdata/check/absent.prom"}, "", 1, "no such file"},
		{"stdin", nil, "# HELP x_total A counter.\n# TYPE x_total gauge\nx_total 1\n", 1, "non-counter metrics should not have \"_total\" suffix"},
		{"several files, one bad", []string{"testdata/check/clean.good.prom", "testdata/check/camelcase.bad.prom"}, "", 1, "camelcase.bad.prom"},
		{"strict on a clean file", []string{"--strict", "testdata/check/clean.good.prom"}, "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			code := run(context.Background(), append([]string{"check-metrics"}, tc.args...), strings.NewReader(tc.stdin), &out, &out)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d; output %q", code, tc.wantCode, out.String())
			}
			if tc.wantOut == "" && out.Len() != 0 || !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}

// TestCheckMetricsOnServedOutput runs the subcommand over what the agent
// serves, as `make test` does with the built binary.
func TestCheckMetricsOnServedOutput(t *testing.T) {
	t.Parallel()
	addr := startAgent(t)
	_, body := get(t, nil, "http://"+addr+"/metrics")
	f := writeFile(t, t.TempDir(), "served.prom", []byte(body))
	var out bytes.Buffer
	if code := run(context.Background(), []string{"check-metrics", f}, nil, &out, &out); code != 0 {
		t.Errorf("served output fails check-metrics (exit %d):\n%s", code, out.String())
	}
	_ = os.Remove(f)
}
