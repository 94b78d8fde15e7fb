package collectors

import (
	"maps"
	"slices"
	"testing"
)

// TestGoldenCasesLint runs promlint over every golden exposition: a problem
// is a bug unless the collector declares it in KnownLintProblems as
// inherited from node_exporter, cAdvisor or the kubelet. Golden cases show
// families the end-to-end lint never sees (its fixture tree has no ZFS, no
// IPVS, ...).
func TestGoldenCasesLint(t *testing.T) {
	t.Parallel()
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			mfs := parseExposition(t, mustRead(t, c.golden))
			problems, err := Lint(slices.Collect(maps.Values(mfs)), false)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("%s: %s", p.Metric, p.Text)
			}
		})
	}
}
