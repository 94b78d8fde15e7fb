package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// promGet GETs a Prometheus API path and decodes its data into v.
func promGet(t *testing.T, s *monitoring, path string, query url.Values, v any) {
	t.Helper()
	if err := promGetErr(s, path, query, v); err != nil {
		t.Fatal(err)
	}
}

// promGetErr is promGet returning the error.
func promGetErr(s *monitoring, path string, query url.Values, v any) error {
	u := s.prometheusURL + path + "?" + query.Encode()
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	var envelope struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil || envelope.Status != "success" {
		return fmt.Errorf("GET %s: %s %v %s", u, resp.Status, err, envelope.Error)
	}
	if err := json.Unmarshal(envelope.Data, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// sample is one series of an instant query's vector.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// promQuery runs an instant query that returns a vector.
func promQuery(t *testing.T, s *monitoring, q string, v *[]sample) {
	t.Helper()
	var data struct {
		ResultType string   `json:"resultType"`
		Result     []sample `json:"result"`
	}
	promGet(t, s, "/api/v1/query", url.Values{"query": {q}}, &data)
	if data.ResultType != "vector" {
		t.Fatalf("%s: result type %q", q, data.ResultType)
	}
	*v = data.Result
}

type target struct {
	Labels    map[string]string `json:"labels"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
	ScrapeURL string            `json:"scrapeUrl"`
}

// TestPrometheusTargetsUp: every job of the test Prometheus has a target,
// each target is up after a few scrapes, and up{} agrees.
func TestPrometheusTargetsUp(t *testing.T) {
	mon := needMonitoring(t)
	var active []target
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var data struct {
			ActiveTargets []target `json:"activeTargets"`
		}
		promGet(t, mon, "/api/v1/targets", url.Values{"state": {"active"}}, &data)
		active = data.ActiveTargets
		if allUp(active, mon.jobs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	perJob := map[string]int{}
	for _, tg := range active {
		perJob[tg.Labels["job"]]++
		if tg.Health != "up" {
			t.Errorf("%s (%s): %s %s", tg.Labels["job"], tg.ScrapeURL, tg.Health, tg.LastError)
		}
	}
	for _, j := range mon.jobs {
		if perJob[j] == 0 {
			t.Errorf("job %s has no target", j)
		}
	}
	if len(active) == 0 {
		t.Fatal("no target compared")
	}

	var up []sample
	promQuery(t, mon, "up", &up)
	var ups []string
	for _, s := range up {
		if s.Value[1] != "1" {
			t.Errorf("up%v = %v", s.Metric, s.Value[1])
		}
		ups = append(ups, s.Metric["job"])
	}
	sort.Strings(ups)
	if len(up) != len(active) {
		t.Errorf("%d up series for %d targets: %v", len(up), len(active), ups)
	}
	t.Logf("%d targets of %d jobs up: %s", len(active), len(mon.jobs), strings.Join(ups, ", "))
}

func allUp(active []target, jobs []string) bool {
	seen := map[string]bool{}
	for _, tg := range active {
		if tg.Health != "up" {
			return false
		}
		seen[tg.Labels["job"]] = true
	}
	return len(seen) == len(jobs)
}

// TestKubeStateMetricsSeesTheCluster: through Prometheus, kube-state-metrics
// reports the node and the static pods that the kubelet mirrors into the
// API server.
func TestKubeStateMetricsSeesTheCluster(t *testing.T) {
	env := need(t)
	mon := needMonitoring(t)
	queries := map[string]int{
		fmt.Sprintf(`kube_node_info{node=%q}`, env["KUBELET_NODE_NAME"]):                    1,
		fmt.Sprintf(`kube_pod_info{namespace="default",node=%q}`, env["KUBELET_NODE_NAME"]): len(strings.Fields(env["KUBELET_STATIC_PODS"])),
	}
	for q, want := range queries {
		var got []sample
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
			promQuery(t, mon, q, &got)
			if len(got) == want || time.Now().After(deadline) {
				break
			}
		}
		if len(got) != want {
			t.Errorf("%s: %d series; want %d", q, len(got), want)
		}
	}
}
