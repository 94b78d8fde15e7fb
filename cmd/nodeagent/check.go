package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nodeagent/nodeagent/collectors"
)

// checkOptions are the check-metrics subcommand's settings.
type checkOptions struct {
	files  []string
	strict bool
}

func addCheckFlags(cmd *kingpin.CmdClause) *checkOptions {
	o := &checkOptions{}
	cmd.Flag("strict", "Report every promlint problem, also on names inherited from node_exporter, cAdvisor or the kubelet.").BoolVar(&o.strict)
	cmd.Arg("files", "Files in Prometheus text format; none reads standard input.").StringsVar(&o.files)
	return o
}

// run checks each file; the exit code is 1 when any file fails to parse or
// has lint problems.
func (o *checkOptions) run(stdin io.Reader, stdout, stderr io.Writer) int {
	code := 0
	files := o.files
	if len(files) == 0 {
		files = []string{"-"}
	}
	for _, f := range files {
		problems, err := o.checkFile(f, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", f, err)
			code = 1
			continue
		}
		for _, p := range problems {
			fmt.Fprintf(stdout, "%s: %s\n", f, p)
			code = 1
		}
	}
	return code
}

// checkFile checks one file; "-" is standard input.
func (o *checkOptions) checkFile(name string, stdin io.Reader) ([]string, error) {
	in := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	mfs, err := parseText(in)
	if err != nil {
		return nil, err
	}
	problems, err := collectors.Lint(mfs, o.strict)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(problems))
	for i, p := range problems {
		out[i] = fmt.Sprintf("%s: %s", p.Metric, p.Text)
	}
	return out, nil
}

// parseText parses the Prometheus text format into families sorted by name.
func parseText(r io.Reader) ([]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing exposition: %w", err)
	}
	mfs := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		mfs = append(mfs, mf)
	}
	slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return mfs, nil
}
