package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

// rulesFile is nodeagent's rule file; the PrometheusRule wraps it.
const rulesFile = "helm/nodeagent/files/nodeagent.rules.yml"

// promtool returns the pinned promtool the Makefile builds (make tools)
// and passes as PROMTOOL_BIN.
func promtool(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PROMTOOL_BIN")
	if p == "" {
		t.Skip("PROMTOOL_BIN is not set: make test builds promtool into bin/tools and sets it")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("PROMTOOL_BIN=%s: %v", p, err)
	}
	return p
}

func runPromtool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// ruleFileGroups are the groups of nodeagent's rule file.
func ruleFileGroups(t *testing.T) []monitoringv1.RuleGroup {
	t.Helper()
	var f struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}
	readYAML(t, rulesFile, &f)
	if len(f.Groups) == 0 {
		t.Fatalf("%s has no groups", rulesFile)
	}
	return f.Groups
}

// TestPrometheusRuleIsRuleFile: the PrometheusRule the base and the chart
// deploy carries exactly the rule file's groups, which the promtool tests
// check.
func TestPrometheusRuleIsRuleFile(t *testing.T) {
	want := ruleFileGroups(t)
	forEachVariant(t, func(t *testing.T, r *rendered) {
		if !r.rule {
			return
		}
		if diff := cmp.Diff(want, r.rules[0].Spec.Groups); diff != "" {
			t.Errorf("PrometheusRule groups differ from %s (-file +rendered):\n%s", rulesFile, diff)
		}
	})
}

// TestRulesPromtoolCheck: promtool check rules over the rule file and over
// the groups of the rendered PrometheusRule.
func TestRulesPromtoolCheck(t *testing.T) {
	r := render(t, variants[0])
	b, err := yaml.Marshal(map[string]any{"groups": r.rules[0].Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	rendered := filepath.Join(t.TempDir(), "prometheusrule-groups.yml")
	if err := os.WriteFile(rendered, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runPromtool(t, "check", "rules", "--lint=all", "--lint-fatal", rulesFile, rendered)
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(out))
}

// TestRulesPromtoolTest: promtool test rules proves each alert fires on a
// matching series and stays silent otherwise; the Go side checks that the
// test file has both cases for every alert of the rule file, so a new
// alert cannot go untested.
func TestRulesPromtoolTest(t *testing.T) {
	const testFile = "testdata/nodeagent.rules.test.yml"
	var tf struct {
		RuleFiles []string `json:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	b, err := os.ReadFile(testFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &tf); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tf.RuleFiles, filepath.Join("..", rulesFile)) {
		t.Fatalf("%s tests %v, not %s", testFile, tf.RuleFiles, rulesFile)
	}
	fires, silent := map[string]int{}, map[string]int{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname]++
			} else {
				silent[a.Alertname]++
			}
		}
	}
	alerts := 0
	for _, g := range ruleFileGroups(t) {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if fires[r.Alert] == 0 || silent[r.Alert] == 0 {
				t.Errorf("alert %s: %d firing and %d silent cases in %s; want both", r.Alert, fires[r.Alert], silent[r.Alert], testFile)
			}
		}
	}
	if alerts == 0 {
		t.Fatal("no alerts in the rule file")
	}
	t.Logf("%d alerts, each with firing and silent cases", alerts)

	out, err := runPromtool(t, "test", "rules", testFile)
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(out))
}

// TestRulesMetricsAndRunbooks: every metric an alert reads is one the
// agent emits (its full name is a string literal in the agent's Go source,
// where the style guide wants it), and every runbook_url is a section of
// docs/runbooks.md that explains meaning, impact, diagnosis and fix.
func TestRulesMetricsAndRunbooks(t *testing.T) {
	src := goSources(t)
	runbook, err := os.ReadFile("../docs/runbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := markdownSections(string(runbook))
	metricRE := regexp.MustCompile(`\bnodeagent_[a-z_]+\b`)
	checked := 0
	for _, g := range ruleFileGroups(t) {
		for _, r := range g.Rules {
			for _, m := range metricRE.FindAllString(r.Expr.String(), -1) {
				checked++
				if !strings.Contains(src, `"`+m+`"`) {
					t.Errorf("%s reads %s, which no Go source of the agent emits", r.Alert, m)
				}
			}
			url := r.Annotations["runbook_url"]
			const base = "https://github.com/nodeagent/nodeagent/blob/main/docs/runbooks.md#"
			anchor, ok := strings.CutPrefix(url, base)
			if !ok {
				t.Errorf("%s: runbook_url %q is not a section of docs/runbooks.md", r.Alert, url)
				continue
			}
			body, ok := sections[anchor]
			if !ok {
				t.Errorf("%s: docs/runbooks.md has no section #%s", r.Alert, anchor)
				continue
			}
			for _, part := range []string{"Meaning", "Impact", "Diagnosis", "Fix"} {
				if !strings.Contains(body, "**"+part+"**") {
					t.Errorf("%s: runbook section #%s lacks **%s**", r.Alert, anchor, part)
				}
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" || r.Labels["severity"] == "" {
				t.Errorf("%s: needs summary, description and severity", r.Alert)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no nodeagent_* metric in the rules")
	}
	t.Logf("%d metric references checked", checked)
}

// goSources is the agent's non-test Go source, concatenated.
func goSources(t *testing.T) string {
	t.Helper()
	var sb strings.Builder
	err := filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "bin" || strings.HasPrefix(d.Name(), ".") && p != "..") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sb.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// markdownSections maps GitHub's heading anchors to the text under them.
func markdownSections(doc string) map[string]string {
	out := map[string]string{}
	cur := ""
	for _, line := range strings.Split(doc, "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			cur = strings.ToLower(strings.Join(strings.Fields(regexp.MustCompile(`[^\w\- ]`).ReplaceAllString(h, "")), "-"))
			out[cur] = ""
			continue
		}
		if cur != "" {
			out[cur] += line + "\n"
		}
	}
	return out
}

// TestPrometheusConfig: promtool check config accepts the plain Prometheus
// example (it rejects duplicate job names), the bare-metal job is named as
// node-mixin's default selector (job="node") expects, and the Kubernetes
// jobs relabel to the jobs the mixins select.
func TestPrometheusConfig(t *testing.T) {
	const file = "prometheus/prometheus.yml"
	var cfg struct {
		ScrapeConfigs []struct {
			JobName        string           `json:"job_name"`
			MetricsPath    string           `json:"metrics_path"`
			RelabelConfigs []map[string]any `json:"relabel_configs"`
		} `json:"scrape_configs"`
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]string{} // resulting job label → metrics path
	for _, sc := range cfg.ScrapeConfigs {
		job := sc.JobName
		for _, rc := range sc.RelabelConfigs {
			if rc["target_label"] == "job" {
				job, _ = rc["replacement"].(string)
			}
		}
		jobs[job+" "+sc.MetricsPath] = sc.JobName
	}
	for _, want := range []string{"node /metrics", "node-exporter /metrics/node", "kubelet /metrics/cadvisor", "kubelet /metrics/kubelet", "kubelet /metrics/probes", "nodeagent /metrics/nodeagent"} {
		if _, ok := jobs[want]; !ok {
			t.Errorf("no scrape config gives job and path %q; have %v", want, jobs)
		}
	}
	out, err := runPromtool(t, "check", "config", "--syntax-only", file)
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(out))
}
