package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// SchemaVersion is the version of the JSON output's schema
// (docs/troubleshooting.md). Adding a field keeps it; renaming or removing
// one, or changing a field's meaning, increments it.
const SchemaVersion = 1

// Report is one run's results.
type Report struct {
	// Node is the node's name as the checks used it.
	Node   string
	Checks []Result
	// Symptom is doctor why's conclusion; nil for a plain run.
	Symptom *Conclusion
	// Version is nodeagent's version; Duration how long the run took.
	Version  string
	Duration time.Duration
	// FlagsFrom names the running agent whose flags doctor used ("pid
	// 4242"); empty when it used its own command line only.
	FlagsFrom string
}

// Counts returns how many checks have each verdict.
func (r *Report) Counts() map[Verdict]int {
	n := map[Verdict]int{OK: 0, Warn: 0, Fail: 0, Skipped: 0}
	for _, c := range r.Checks {
		n[c.Verdict]++
	}
	return n
}

// ExitCode is 1 when a check failed, else 0 (warnings do not fail).
func (r *Report) ExitCode() int {
	if r.Counts()[Fail] > 0 {
		return 1
	}
	return 0
}

// The JSON output. Field names are part of the schema.
type jsonReport struct {
	Version          int          `json:"version"`
	NodeagentVersion string       `json:"nodeagent_version"`
	Node             string       `json:"node"`
	FlagsFrom        string       `json:"flags_from"`
	DurationSeconds  float64      `json:"duration_seconds"`
	Checks           []jsonCheck  `json:"checks"`
	Summary          jsonSummary  `json:"summary"`
	Symptom          *jsonSymptom `json:"symptom"`
}

type jsonCheck struct {
	ID      string  `json:"id"`
	Layer   Layer   `json:"layer"`
	Verdict Verdict `json:"verdict"`
	Detail  string  `json:"detail"`
	Fix     string  `json:"fix"`
}

type jsonSummary struct {
	OK       int `json:"ok"`
	Warn     int `json:"warn"`
	Fail     int `json:"fail"`
	Skipped  int `json:"skipped"`
	ExitCode int `json:"exit_code"`
}

type jsonSymptom struct {
	Name    string   `json:"name"`
	Chain   []string `json:"chain"`
	Verdict Verdict  `json:"verdict"`
	Check   string   `json:"check"`
	Layer   Layer    `json:"layer"`
	Detail  string   `json:"detail"`
	Fix     string   `json:"fix"`
}

// WriteJSON writes the report in the documented schema, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	n := r.Counts()
	out := jsonReport{
		Version:          SchemaVersion,
		NodeagentVersion: r.Version,
		Node:             r.Node,
		FlagsFrom:        r.FlagsFrom,
		DurationSeconds:  r.Duration.Seconds(),
		Checks:           make([]jsonCheck, len(r.Checks)),
		Summary:          jsonSummary{OK: n[OK], Warn: n[Warn], Fail: n[Fail], Skipped: n[Skipped], ExitCode: r.ExitCode()},
	}
	for i, c := range r.Checks {
		out.Checks[i] = jsonCheck(c)
	}
	if s := r.Symptom; s != nil {
		out.Symptom = &jsonSymptom{Name: s.Symptom, Chain: s.Chain, Verdict: s.Verdict, Check: s.Check, Layer: s.Layer, Detail: s.Detail, Fix: s.Fix}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// WriteTable writes the report for a terminal: one line per check under
// its layer, the fix below what is not ok, the summary, and doctor why's
// conclusion.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	title := "nodeagent doctor"
	if r.Symptom != nil {
		title += " why " + r.Symptom.Symptom
	}
	fmt.Fprintf(&b, "%s: node %s, %d checks in %s", title, r.Node, len(r.Checks), r.Duration.Round(10*time.Millisecond))
	if r.FlagsFrom != "" {
		fmt.Fprintf(&b, ", with the flags of the running agent (%s)", r.FlagsFrom)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "VERDICT\tCHECK\tDETAIL\n")
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Verdict, c.ID, c.Detail)
		if c.Fix != "" && c.Verdict != OK {
			fmt.Fprintf(tw, "\t\tfix: %s\n", c.Fix)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	n := r.Counts()
	fmt.Fprintf(&b, "summary: %d ok, %d warn, %d fail, %d skipped\n", n[OK], n[Warn], n[Fail], n[Skipped])
	if s := r.Symptom; s != nil {
		switch {
		case s.Check == "":
			fmt.Fprintf(&b, "conclusion: %s\n", s.Detail)
		default:
			what := "silent layer"
			if s.Verdict == Warn {
				what = "nothing fails; the first warning is in layer"
			}
			fmt.Fprintf(&b, "conclusion: %s %s (%s): %s\n", what, s.Layer, s.Check, s.Detail)
			if s.Fix != "" {
				fmt.Fprintf(&b, "fix: %s\n", s.Fix)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
