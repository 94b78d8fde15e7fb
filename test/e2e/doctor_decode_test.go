package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecodeDoctor holds the test's decoding of doctor's JSON (its own
// struct of the documented fields) to the output doctor's golden files
// pin, without a cluster: every golden file decodes with the schema's
// invariants, and a report that breaks one is refused.
func TestDecodeDoctor(t *testing.T) {
	dir := filepath.Join("..", "..", "cmd", "nodeagent", "doctor", "testdata")
	for _, tc := range []struct {
		file, symptomCheck string
		exit               int
	}{
		{"healthy.golden.json", "", 0},
		{"broken.golden.json", "", 1},
		{"why-kubectl-top.golden.json", "metrics-server.apiservice", 1},
	} {
		b, err := os.ReadFile(filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeDoctor(b)
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if len(r.Checks) == 0 || r.Checks[0].ID == "" || r.Checks[0].Verdict == "" {
			t.Errorf("%s: checks %+v", tc.file, r.Checks)
		}
		if r.Summary.ExitCode != tc.exit {
			t.Errorf("%s: exit_code %d; want %d", tc.file, r.Summary.ExitCode, tc.exit)
		}
		got := ""
		if r.Symptom != nil {
			got = r.Symptom.Check
		}
		if got != tc.symptomCheck {
			t.Errorf("%s: symptom check %q; want %q", tc.file, got, tc.symptomCheck)
		}
	}

	healthy, err := os.ReadFile(filepath.Join(dir, "healthy.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, broken := range map[string]string{
		"a field missing":          strings.Replace(string(healthy), `"flags_from"`, `"flags_fromm"`, 1),
		"summary against verdicts": strings.Replace(string(healthy), `"verdict": "ok"`, `"verdict": "fail"`, 1),
		"another schema version":   strings.Replace(string(healthy), `"version": 1`, `"version": 2`, 1),
	} {
		if broken == string(healthy) {
			t.Fatalf("%s: the replacement matched nothing", name)
		}
		if _, err := decodeDoctor([]byte(broken)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}
