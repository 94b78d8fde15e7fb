package collectors

import (
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestGoldenCasesLint runs promlint over every golden exposition: a finding
// that no collector declares in KnownLintProblems is a naming bug.
func TestGoldenCasesLint(t *testing.T) {
	t.Parallel()
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fams := parseExposition(t, mustRead(t, c.golden))
			var mfs []*dto.MetricFamily
			for _, mf := range fams {
				mfs = append(mfs, mf)
			}
			slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
			problems, err := Lint(mfs, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("%s: %s", p.Metric, p.Text)
			}
		})
	}
}
