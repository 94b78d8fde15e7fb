package node

import (
	"slices"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/version"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The family carries nodeagent's build, under node_exporter's name and
// labels.
func TestNodeExporterBuildInfo(t *testing.T) {
	t.Parallel()
	c := collectortest.MustBuild(t, "node_exporter_build_info", collectortest.TempEnv(t, t.TempDir()))
	out, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	mfs := collectortest.Parse(t, out)
	mf := mfs["node_exporter_build_info"]
	if len(mfs) != 1 || mf == nil || len(mf.GetMetric()) != 1 {
		t.Fatalf("want one node_exporter_build_info series, got:\n%s", out)
	}
	m := mf.GetMetric()[0]
	want := map[string]string{
		"version": version.Version, "revision": version.GetRevision(), "branch": version.Branch,
		"goversion": version.GoVersion, "goos": version.GoOS, "goarch": version.GoArch, "tags": version.GetTags(),
	}
	for _, l := range m.GetLabel() {
		if want[l.GetName()] != l.GetValue() {
			t.Errorf("label %s=%q, want nodeagent's %q", l.GetName(), l.GetValue(), want[l.GetName()])
		}
	}
	if len(m.GetLabel()) != len(want) || m.GetGauge().GetValue() != 1 {
		t.Errorf("series %v, want the %d build labels and value 1", m, len(want))
	}
}

// TestNodeExporterConformanceBuildInfo compares the family's name, help,
// type and label names with node_exporter's own (the generic conformance
// drops node_exporter_* families, which describe the exporter, not the
// host). Label values differ by design: they are nodeagent's build.
func TestNodeExporterConformanceBuildInfo(t *testing.T) {
	t.Parallel()
	bin := collectortest.NodeExporterBin(t)
	theirs := collectortest.ScrapeNodeExporterAll(t, bin, []string{"--web.listen-address=127.0.0.1:0", "--collector.disable-defaults"})
	c := collectortest.MustBuild(t, "node_exporter_build_info", collectortest.TempEnv(t, t.TempDir()))
	out, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	ours := collectortest.Parse(t, out)
	const name = "node_exporter_build_info"
	o, th := ours[name], theirs[name]
	if o == nil || th == nil {
		t.Fatalf("%s: nodeagent serves it: %v, node_exporter: %v", name, o != nil, th != nil)
	}
	if o.GetHelp() != th.GetHelp() || o.GetType() != th.GetType() {
		t.Errorf("help %q type %s, node_exporter: help %q type %s", o.GetHelp(), o.GetType(), th.GetHelp(), th.GetType())
	}
	labels := func(mf *dto.MetricFamily) []string {
		var out []string
		for _, l := range mf.GetMetric()[0].GetLabel() {
			out = append(out, l.GetName())
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(labels(o), labels(th)) || len(o.GetMetric()) != len(th.GetMetric()) {
		t.Errorf("labels %v (%d series), node_exporter %v (%d series)", labels(o), len(o.GetMetric()), labels(th), len(th.GetMetric()))
	}
	t.Logf("compared %s: help, type and labels %v", name, labels(th))
}
