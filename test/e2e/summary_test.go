package e2e

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

// summary collects one row per step of a long end-to-end test and prints
// them as a table when the test ends, so that a run's outcome reads at a
// glance beside the log.
type summary struct {
	mu   sync.Mutex
	rows []summaryRow
}

type summaryRow struct {
	step, result, detail string
	took                 time.Duration
}

// step runs fn as subtest name and records its outcome: PASS with the
// detail fn returns, FAIL with fn's error (or "see the log" when the
// subtest failed by itself), SKIP. fn's error fails the subtest. It
// reports whether the step passed.
func (s *summary) step(t *testing.T, name string, fn func(t *testing.T) (string, error)) bool {
	t.Helper()
	var detail string
	var err error
	var skipped bool
	start := time.Now()
	ok := t.Run(name, func(t *testing.T) {
		defer func() {
			// t.Fatal and t.Skip inside fn end it here; the row is
			// written below.
			skipped = t.Skipped()
			if err != nil {
				t.Error(err)
			}
		}()
		detail, err = fn(t)
	})
	result := "PASS"
	switch {
	case err != nil:
		result, detail = "FAIL", err.Error()
	case !ok:
		result = "FAIL"
		if detail == "" {
			detail = "see the log above"
		}
	case skipped:
		result = "SKIP"
	}
	s.add(name, result, detail, time.Since(start))
	return ok && err == nil
}

// skip records a step that did not run and why.
func (s *summary) skip(name, why string) { s.add(name, "SKIP", why, 0) }

func (s *summary) add(step, result, detail string, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, summaryRow{step: step, result: result, detail: detail, took: took})
}

// print writes the table: step, result, time, detail (one line each; long
// details are cut at 240 characters, the log has them whole).
func (s *summary) print(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tRESULT\tTIME\tDETAIL")
	for _, r := range s.rows {
		d := strings.Join(strings.Fields(r.detail), " ")
		if len(d) > 240 {
			d = d[:237] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.step, r.result, r.took.Round(time.Second), d)
	}
	tw.Flush()
}
