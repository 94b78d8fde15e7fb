package promfetch

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/internal/collectortest"
	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// TestDecodeUnchanged: the kubelet's real /metrics and
// /metrics/resource, decoded and encoded again, are byte for byte what the
// kubelet sent, less timestamps: names, help, types, labels and values pass
// through unchanged.
func TestDecodeUnchanged(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"k8s-1.37-local_metrics.txt", "k8s-1.37-local_metrics-resource.txt", "k8s-1.37-local_metrics-cadvisor.txt"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := fakekubelet.Payload(t, name)
			mfs, err := Decode(in, "text/plain; version=0.0.4; charset=utf-8")
			if err != nil {
				t.Fatal(err)
			}
			want := timestampRE.ReplaceAllString(string(in), "$1")
			if diff := cmp.Diff(want, string(collectortest.Encode(t, mfs...))); diff != "" {
				t.Errorf("re-encoded %s differs (-kubelet +ours):\n%s", name, diff)
			}
		})
	}
}

// timestampRE matches an explicit sample timestamp at the end of a line.
var timestampRE = regexp.MustCompile(`(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})? \S+) -?[0-9]+$`)

func TestDecodeRepairs(t *testing.T) {
	t.Parallel()
	in := `# TYPE kubelet_running_pods gauge
kubelet_running_pods 3 1782468875486
# TYPE kubelet_http_requests_total counter
kubelet_http_requests_total{path="pods"} 1
kubelet_http_requests_total{path="metrics"} 2
kubelet_http_requests_total{path="pods"} 7
`
	mfs, err := Decode([]byte(in), "text/plain; version=0.0.4")
	if !errors.Is(err, ErrBadBody) || !errors.Is(err, ErrRepaired) || !strings.Contains(err.Error(), "family kubelet_http_requests_total has 1 repeated series; dropped") {
		t.Fatalf("error %v; want the repeated series reported", err)
	}
	want := `# TYPE kubelet_http_requests_total counter
kubelet_http_requests_total{path="pods"} 1
kubelet_http_requests_total{path="metrics"} 2
# TYPE kubelet_running_pods gauge
kubelet_running_pods 3
`
	if diff := cmp.Diff(want, string(collectortest.Encode(t, mfs...))); diff != "" {
		t.Errorf("families (-want +got):\n%s", diff)
	}
}

// FuzzDecode: any body and Content-Type decode without panicking into
// families that can be served (no family twice, no timestamp), or into an
// error wrapping ErrBadBody.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("# HELP kubelet_node_name The node's name.\n# TYPE kubelet_node_name gauge\nkubelet_node_name{node=\"n\"} 1 1700000000000\n"), "text/plain; version=0.0.4")
	f.Add([]byte("a{b=\"c\"} 1\na{b=\"c\"} 2\n"), "text/plain")
	f.Add([]byte("\x0a\x08\x0a\x01a\x18\x01\x22\x00"), "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")
	f.Add([]byte("# TYPE a counter\na_total 1\n# EOF\n"), "application/openmetrics-text; version=1.0.0")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		mfs, err := Decode(body, contentType)
		if err != nil && !errors.Is(err, ErrBadBody) {
			t.Fatalf("error %v does not wrap ErrBadBody", err)
		}
		// Only a repaired body comes with families: garbage yields nothing
		// that a passthrough could half serve.
		if err != nil && !errors.Is(err, ErrRepaired) && len(mfs) > 0 {
			t.Fatalf("error %v came with %d families", err, len(mfs))
		}
		seen := map[string]bool{}
		for _, mf := range mfs {
			if seen[mf.GetName()] {
				t.Fatalf("family %s twice", mf.GetName())
			}
			seen[mf.GetName()] = true
			for _, m := range mf.GetMetric() {
				if m.TimestampMs != nil {
					t.Fatal("timestamp left in")
				}
			}
		}
	})
}
