package node

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// TestNodeMixinSystemdAlerts proves that node-mixin's systemd alerts, as
// kube-prometheus ships them (testdata/node-mixin), work unchanged on the
// systemd collector's output: the collector scrapes a fake manager once a
// "minute" while a service crash-loops, the series it serves become
// promtool's input, and `promtool test rules` requires
// NodeSystemdServiceFailed for the failed unit and
// NodeSystemdServiceCrashlooping for the restarting one, at the times
// their for: clauses allow, and no alert for any other unit or on a
// healthy host. promtool comes from PROMTOOL_BIN (make node-mixin-rules
// builds it); without it the test is skipped.
func TestNodeMixinSystemdAlerts(t *testing.T) {
	promtool := os.Getenv("PROMTOOL_BIN")
	if promtool == "" {
		t.Skip("PROMTOOL_BIN is not set; make node-mixin-rules builds promtool and sets it")
	}
	dir := t.TempDir()
	rules := nodeMixinRules(t, dir)

	const minutes = 30
	troubled := scrapeMinutes(t, minutes, func(m *fakeManager, minute int) {
		// flaky.service restarts every 20 s.
		setUnitProp(t, m, "flaky.service", "Service", "NRestarts", uint32(3*minute))
	})
	healthy := scrapeMinutes(t, minutes, func(m *fakeManager, minute int) {
		for i := range m.units {
			if m.units[i].active == "failed" || m.units[i].active == "activating" {
				m.units[i].active = "active"
			}
		}
	})

	alert := func(name string, labels map[string]string) map[string]any {
		a := rules[name]
		ann := map[string]string{}
		for k, v := range a.Annotations {
			for _, l := range []string{"name", "instance"} {
				v = strings.ReplaceAll(v, "{{ $labels."+l+" }}", labels[l])
			}
			ann[k] = v
		}
		all := map[string]string{"severity": a.Labels["severity"]}
		for k, v := range labels {
			all[k] = v
		}
		return map[string]any{"exp_labels": all, "exp_annotations": ann}
	}
	instance := map[string]string{"job": "node-exporter", "instance": "bare-metal-1:9812"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range []map[string]string{instance, extra} {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	failed := alert("NodeSystemdServiceFailed", with(map[string]string{"name": "nginx.service", "state": "failed", "type": "forking"}))
	looping := alert("NodeSystemdServiceCrashlooping", with(map[string]string{"name": "flaky.service"}))
	none := []map[string]any{}
	check := func(at, name string, want []map[string]any) map[string]any {
		return map[string]any{"eval_time": at, "alertname": name, "exp_alerts": want}
	}
	tests := map[string]any{
		"rule_files":          []string{"rules.yaml"},
		"evaluation_interval": "1m",
		"tests": []any{
			map[string]any{
				"name":         "a failed unit and a crash-looping service",
				"interval":     "1m",
				"input_series": promtoolSeries(troubled, instance),
				"alert_rule_test": []any{
					// Both conditions hold from the start; for: 5m and 15m.
					check("3m", "NodeSystemdServiceFailed", none),
					check("3m", "NodeSystemdServiceCrashlooping", none),
					check("10m", "NodeSystemdServiceFailed", []map[string]any{failed}),
					check("10m", "NodeSystemdServiceCrashlooping", none),
					check("25m", "NodeSystemdServiceFailed", []map[string]any{failed}),
					check("25m", "NodeSystemdServiceCrashlooping", []map[string]any{looping}),
				},
			},
			map[string]any{
				"name":         "a healthy host",
				"interval":     "1m",
				"input_series": promtoolSeries(healthy, instance),
				"alert_rule_test": []any{
					check("25m", "NodeSystemdServiceFailed", none),
					check("25m", "NodeSystemdServiceCrashlooping", none),
				},
			},
		},
	}
	b, err := yaml.Marshal(tests)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "systemd_test.yaml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "test", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s\ntest file:\n%s", err, out, b)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool did not report SUCCESS:\n%s", out)
	}
	t.Logf("promtool test rules: 8 alert checks over %d troubled and %d healthy series, %d minutes each:\n%s",
		len(troubled), len(healthy), minutes, out)
}

// nodeMixinRule is one alerting rule of node-mixin.
type nodeMixinRule struct {
	Alert       string            `json:"alert"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// nodeMixinRules writes the PrometheusRule's groups to dir/rules.yaml as a
// plain rule file and returns its alerting rules by name; it fails unless
// both systemd alerts are there.
func nodeMixinRules(t *testing.T, dir string) map[string]nodeMixinRule {
	t.Helper()
	var pr struct {
		Spec struct {
			Groups []map[string]any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(collectortest.ReadFile(t, filepath.Join("testdata", "node-mixin", "nodeExporter-prometheusRule.yaml")), &pr); err != nil {
		t.Fatal(err)
	}
	b, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var groups struct {
		Groups []struct {
			Rules []nodeMixinRule `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &groups); err != nil {
		t.Fatal(err)
	}
	out := map[string]nodeMixinRule{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out[r.Alert] = r
			}
		}
	}
	for _, name := range []string{"NodeSystemdServiceFailed", "NodeSystemdServiceCrashlooping"} {
		if _, ok := out[name]; !ok {
			t.Fatalf("node-mixin's rules have no %s", name)
		}
	}
	return out
}

// scrapeMinutes scrapes the systemd collector (restart counts on) over a
// fake manager once per simulated minute, after change(m, minute), and
// returns the node_systemd_unit_state and
// node_systemd_service_restart_total values it served, per series.
func scrapeMinutes(t *testing.T, minutes int, change func(*fakeManager, int)) map[string][]float64 {
	t.Helper()
	bus := startBus(t)
	m := newFakeHost()
	serveManager(t, bus, m)
	c := systemdAt(t, bus) // the defaults: what a bare-metal host runs
	series := map[string][]float64{}
	for minute := range minutes {
		m.mu.Lock()
		change(m, minute)
		m.mu.Unlock()
		out, err := collectortest.Exposition(t, c)
		if err != nil {
			t.Fatalf("scrape at minute %d: %v", minute, err)
		}
		mfs := collectortest.Parse(t, out)
		for _, name := range []string{"node_systemd_unit_state", "node_systemd_service_restart_total"} {
			mf := mfs[name]
			if mf == nil {
				t.Fatalf("minute %d: no %s", minute, name)
			}
			for _, s := range mf.GetMetric() {
				var labels []string
				for _, l := range s.GetLabel() {
					labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				slices.Sort(labels)
				key := name + "{" + strings.Join(labels, ",") + "}"
				series[key] = append(series[key], s.GetGauge().GetValue()+s.GetCounter().GetValue())
			}
		}
	}
	return series
}

// setUnitProp sets a property of a fake unit (m.mu held).
func setUnitProp(t *testing.T, m *fakeManager, unit, iface, name string, v any) {
	t.Helper()
	for _, u := range m.units {
		if u.name == unit {
			u.props[iface][name] = v
			return
		}
	}
	t.Fatalf("no unit %s", unit)
}

// promtoolSeries renders series as promtool input_series, with the
// target labels Prometheus would add.
func promtoolSeries(series map[string][]float64, target map[string]string) []map[string]string {
	var out []map[string]string
	for _, key := range slices.Sorted(func(yield func(string) bool) {
		for k := range series {
			if !yield(k) {
				return
			}
		}
	}) {
		extra := make([]string, 0, len(target))
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range target {
				if !yield(k) {
					return
				}
			}
		}) {
			extra = append(extra, fmt.Sprintf("%s=%q", k, target[k]))
		}
		name, labels, _ := strings.Cut(key, "{")
		values := make([]string, len(series[key]))
		for i, v := range series[key] {
			values[i] = fmt.Sprint(v)
		}
		out = append(out, map[string]string{
			"series": name + "{" + strings.Join(extra, ",") + "," + labels,
			"values": strings.Join(values, " "),
		})
	}
	return out
}
