package collectors

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func gatherOne(t *testing.T, c prometheus.Collector) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func TestLintExcusesOnlyDeclaredProblems(t *testing.T) {
	t.Parallel()
	// node_memory_MemTotal_bytes is camelCase because node_exporter's is; a
	// new name of ours with the same fault must still be reported.
	inheritedName := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_lint_MemTotal_bytes", Help: "Inherited."})
	ownName := prometheus.NewGauge(prometheus.GaugeOpts{Name: "nodeagent_lintTest_bytes", Help: "Ours."})
	mfs := gatherOne(t, MetricSlice{inheritedName, ownName})

	all, err := lint(mfs, nil)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := lint(mfs, []LintException{Inherited(`test_lint_.*_bytes`, "camelCase", "test")})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || len(kept) != 1 || kept[0].Metric != "nodeagent_lintTest_bytes" {
		t.Errorf("all problems %v, kept after exceptions %v; want only nodeagent_lintTest_bytes kept", all, kept)
	}
}

func TestLintAnchorsPatterns(t *testing.T) {
	t.Parallel()
	load := prometheus.NewGauge(prometheus.GaugeOpts{Name: "nodeagent_lintMe", Help: "camelCase."})
	load15 := prometheus.NewGauge(prometheus.GaugeOpts{Name: "nodeagent_lintMe15", Help: "camelCase."})
	kept, err := lint(gatherOne(t, MetricSlice{load, load15}), []LintException{Inherited(`nodeagent_lintMe`, "", "test")})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || kept[0].Metric != "nodeagent_lintMe15" {
		t.Errorf("kept %v; want only nodeagent_lintMe15: exception patterns must match the whole name", kept)
	}
}

// A pattern that does not compile is an error of Lint, not a panic
// (collectors/all checks the registered collectors' patterns).
func TestLintExceptionPatterns(t *testing.T) {
	t.Parallel()
	if _, err := lint(nil, []LintException{Inherited(`node_(`, "", "test")}); err == nil {
		t.Error("a pattern that does not compile was accepted")
	}
}
