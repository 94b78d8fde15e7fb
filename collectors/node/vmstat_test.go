package node

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/collectors/internal/descs"
)

// Golden cases: testdata/vmstat (good, fields, malformed).

// vmstatField is one "name value" line of /proc/vmstat.
type vmstatField struct {
	name  string
	value float64
}

// collectVMStat gathers what parseVMStat passes to its callback.
func collectVMStat(in []byte) ([]vmstatField, error) {
	var out []vmstatField
	err := parseVMStat(in, func(name []byte, v float64) { out = append(out, vmstatField{string(name), v}) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

func TestParseVMStat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []vmstatField
		wantErr  string
	}{
		{"fields", "nr_free_pages 289425\npgfault 93722398\n\noom_kill 0", []vmstatField{{"nr_free_pages", 289425}, {"pgfault", 93722398}, {"oom_kill", 0}}, ""},
		{"empty", "", nil, ""},
		{"missing value", "pgfault\n", nil, `line 1: want "name value"`},
		{"extra column", "pgfault 1 2\n", nil, `line 1: want "name value"`},
		{"bad value", "nr_free_pages 12\npgfault lots\n", nil, "line 2: field pgfault"},
		{"bad name", "pg-fault 1\n", nil, `line 1: want "name value"`},
	} {
		got, err := collectVMStat([]byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: want an error containing %q, got %v", tc.name, tc.wantErr, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(vmstatField{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func FuzzParseVMStat(f *testing.F) {
	f.Add([]byte("nr_free_pages 289425\npgpgin 1028722\npgfault 93722398\noom_kill 0\n"))
	f.Add([]byte("a 1e308\nb -0\nc NaN\nd 0x1p3\n"))
	f.Add([]byte("x\n y z w\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		fields, err := collectVMStat(in)
		if err != nil {
			return
		}
		for _, fl := range fields {
			if !descs.IsMetricNamePart([]byte(fl.name)) {
				t.Errorf("field name %q cannot be a metric name", fl.name)
			}
		}
	})
}
