package collectors

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// LintException excuses one promlint finding on names we inherit.
type LintException struct {
	// Pattern is a regexp of whole family names, compiled when linting
	// (most runs never lint: the agent keeps no compiled program for it).
	Pattern string
	// Problem is a substring of promlint's text; empty excuses any problem.
	Problem string
	// Why names the upstream the name comes from.
	Why string
}

// Inherited excuses problem (a substring of promlint's text, empty for any)
// on families whose whole name matches pattern.
func Inherited(pattern, problem, why string) LintException {
	return LintException{Pattern: pattern, Problem: problem, Why: why}
}

// Lint runs promlint over mfs and returns the problems that no registered
// collector declares as inherited. strict reports every problem.
func Lint(mfs []*dto.MetricFamily, strict bool) ([]promlint.Problem, error) {
	var exceptions []LintException
	if !strict {
		for _, r := range registry {
			exceptions = append(exceptions, r.KnownLintProblems...)
		}
	}
	return lint(mfs, exceptions)
}

func lint(mfs []*dto.MetricFamily, exceptions []LintException) ([]promlint.Problem, error) {
	names := make([]*regexp.Regexp, len(exceptions))
	for i, e := range exceptions {
		re, err := regexp.Compile("^(?:" + e.Pattern + ")$")
		if err != nil {
			return nil, fmt.Errorf("lint exception %q (%s): %w", e.Pattern, e.Why, err)
		}
		names[i] = re
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		return nil, fmt.Errorf("linting: %w", err)
	}
	return slices.DeleteFunc(problems, func(p promlint.Problem) bool {
		for i, e := range exceptions {
			if names[i].MatchString(p.Metric) && strings.Contains(p.Text, e.Problem) {
				return true
			}
		}
		return false
	}), nil
}
