package doctor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/internal/fakeapiserver"
	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

var update = flag.Bool("update", false, "rewrite the golden JSON files in testdata/ from the current output")

// Volatile parts of the JSON output, replaced before the comparison: the
// run's duration and nodeagent's version, the test's temporary
// directories, loopback ports, and the device the temporary directory is
// on.
var (
	durationRE = regexp.MustCompile(`"duration_seconds": [0-9.e-]+`)
	versionRE  = regexp.MustCompile(`"nodeagent_version": "[^"]*"`)
	portRE     = regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)
	deviceRE   = regexp.MustCompile(`on [0-9]+:[0-9]+\)`)
)

func normalise(b []byte, tmp string) []byte {
	b = bytes.ReplaceAll(b, []byte(tmp), []byte("$TMP"))
	b = durationRE.ReplaceAllLiteral(b, []byte(`"duration_seconds": 0`))
	b = versionRE.ReplaceAllLiteral(b, []byte(`"nodeagent_version": "$VERSION"`))
	b = portRE.ReplaceAllLiteral(b, []byte(`127.0.0.1:$PORT`))
	return deviceRE.ReplaceAllLiteral(b, []byte(`on $MAJOR:$MINOR)`))
}

// TestGoldenJSON: the JSON output of a healthy cluster, of a broken one
// and of doctor why equals its golden file byte for byte once the
// volatile parts are normalised, so that any change to the documented
// schema (docs/troubleshooting.md) shows up here. It also checks the
// schema's invariants on every output: the version, the five fields of
// every check, the summary's counts.
func TestGoldenJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(c *cluster)
	}{
		{"healthy", nil},
		{"broken", func(c *cluster) {
			c.api.DeleteAPIService(metricsAPIService)
			c.api.SetAPIService(fakeapiserver.APIService{Name: customAPIService, ServiceNamespace: "monitoring", ServiceName: "prometheus-adapter", Reason: "MissingEndpoints", Message: "endpoints for service/prometheus-adapter in \"monitoring\" have no addresses"})
			c.kubelet.SetToken(c.api.ClientToken, fakekubelet.Identity{User: c.api.ClientUser, Allowed: []string{fakekubelet.Metrics}})
			c.api.Revoke(c.api.ClientUser)
			c.api.AllowResource(c.api.ClientUser, fakeapiserver.ResourceRule{Verb: "get", Resource: "nodes/metrics"})
			c.opts.Prometheus.URL = ""
		}},
		{"why-kubectl-top", func(c *cluster) {
			c.api.DeleteAPIService(metricsAPIService)
			c.opts.Symptom = "kubectl-top"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			if tc.setup != nil {
				tc.setup(c)
			}
			r, _ := c.run()
			var buf bytes.Buffer
			if err := r.WriteJSON(&buf); err != nil {
				t.Fatal(err)
			}
			checkSchema(t, buf.Bytes())
			got := normalise(buf.Bytes(), filepath.Dir(c.host.dir))
			golden := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// checkSchema decodes the output generically and checks what
// docs/troubleshooting.md promises of schema version 1.
func checkSchema(t *testing.T, b []byte) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "nodeagent_version", "node", "flags_from", "duration_seconds", "checks", "summary", "symptom"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("no top-level %q", k)
		}
	}
	if doc["version"] != float64(1) {
		t.Errorf("version %v, want 1", doc["version"])
	}
	checks, _ := doc["checks"].([]any)
	if len(checks) == 0 {
		t.Fatal("no checks")
	}
	counts := map[string]float64{}
	for _, c := range checks {
		m := c.(map[string]any)
		if len(m) != 5 {
			t.Errorf("check %v has %d fields, want id, layer, verdict, detail, fix", m, len(m))
		}
		for _, k := range []string{"id", "layer", "verdict", "detail", "fix"} {
			if s, ok := m[k].(string); !ok || (k != "fix" && s == "") || strings.Contains(s, "\n") {
				t.Errorf("check %v: %q is not a one-line string", m["id"], k)
			}
		}
		counts[m["verdict"].(string)]++
	}
	summary := doc["summary"].(map[string]any)
	for _, v := range []string{"ok", "warn", "fail", "skipped"} {
		if summary[v] != counts[v] {
			t.Errorf("summary %s = %v, counted %v", v, summary[v], counts[v])
		}
	}
	wantExit := 0.0
	if counts["fail"] > 0 {
		wantExit = 1
	}
	if summary["exit_code"] != wantExit {
		t.Errorf("summary exit_code %v, want %v", summary["exit_code"], wantExit)
	}
	t.Logf("schema checked on %d checks", len(checks))
}
