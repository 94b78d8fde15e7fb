package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "textfile",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &textfileConfig{}
			app.Flag("collector.textfile.directory", "Directory whose *.prom files are served; a glob selects several. Repeatable.").
				Default("").StringsVar(&cfg.directories)
			return func(env collectors.Env) (collectors.Collector, error) { return newTextfileCollector(env, *cfg), nil }
		},
	})
}

type textfileConfig struct {
	directories []string
}

// textfileCollector serves the metrics of every *.prom file in the textfile
// directories, merged the way node_exporter merges them, plus
// node_textfile_mtime_seconds per file read and node_textfile_scrape_error.
//
// node_exporter's merge is partly its own code (help texts) and partly its
// registry's consistency checks (a family's first help and type win, a
// series seen before is dropped). We run the same checks through a private
// registry, so the same metrics survive; unlike node_exporter, which only
// logs what its registry dropped, we also set node_textfile_scrape_error,
// because a dropped series is an error in the files an operator wants to
// be alerted about.
type textfileCollector struct {
	dirs   []string
	logger *slog.Logger
	// modTime is the file's mtime; tests replace it for stable goldens.
	modTime func(os.FileInfo) time.Time

	mtime, scrapeError *prometheus.Desc

	mu       sync.Mutex
	reported map[string]string // file → the error last logged for it
}

func newTextfileCollector(env collectors.Env, cfg textfileConfig) *textfileCollector {
	return &textfileCollector{
		dirs:    cfg.directories,
		logger:  env.Logger,
		modTime: os.FileInfo.ModTime,
		mtime: prometheus.NewDesc("node_textfile_mtime_seconds",
			"Unixtime mtime of textfiles successfully read.", []string{"file"}, nil),
		scrapeError: prometheus.NewDesc("node_textfile_scrape_error",
			"1 if there was an error opening or reading a file, 0 otherwise", nil, nil),
		reported: map[string]string{},
	}
}

// textfileFamily is one family as parsed from one file.
type textfileFamily struct {
	mf   *dto.MetricFamily
	file string
}

// textfileScrape is the state of one Update.
type textfileScrape struct {
	families []textfileFamily
	files    map[string][]string // family name → files it was read from, in order
	mtimes   map[string]time.Time
	helps    map[string]textfileHelp
	problems map[string]string // file (or directory) → error, for logging
	errored  bool
}

// textfileHelp is the help bookkeeping of one family name.
type textfileHelp struct {
	first    string // the explicit help later families must have
	conflict bool   // a family disagreed; every later one is dropped
}

func (s *textfileScrape) fail(file string, err error) {
	s.errored = true
	if prev, ok := s.problems[file]; ok {
		s.problems[file] = prev + "; " + err.Error()
		return
	}
	s.problems[file] = err.Error()
}

func (c *textfileCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	s := &textfileScrape{
		files:    map[string][]string{},
		mtimes:   map[string]time.Time{},
		helps:    map[string]textfileHelp{},
		problems: map[string]string{},
	}
	for _, dir := range c.expandDirs() {
		entries, err := os.ReadDir(dir)
		if err != nil && dir != "" {
			s.fail(dir, fmt.Errorf("reading textfile directory: %w", err))
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			if strings.HasSuffix(e.Name(), ".prom") {
				c.readFile(s, filepath.Join(dir, e.Name()))
			}
		}
	}
	c.defaultHelp(s)

	mfs := c.merge(s)
	if err := collectors.SendFamilies(ctx, ch, func(context.Context) ([]*dto.MetricFamily, error) { return mfs, nil }); err != nil {
		return err
	}
	files := make([]string, 0, len(s.mtimes))
	for f := range s.mtimes {
		files = append(files, f)
	}
	slices.Sort(files)
	for _, f := range files {
		// Whole seconds, as node_exporter serves them.
		ch <- prometheus.MustNewConstMetric(c.mtime, prometheus.GaugeValue,
			float64(s.mtimes[f].UnixNano()/int64(time.Second)), hostfile.ValidLabel(f))
	}
	errVal := 0.0
	if s.errored {
		errVal = 1
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeError, prometheus.GaugeValue, errVal)
	c.logProblems(s.problems)
	return nil
}

// expandDirs expands each directory flag as a glob; a pattern that matches
// nothing (or is not a valid pattern) is taken as a directory name, so that
// a missing directory is reported.
func (c *textfileCollector) expandDirs() []string {
	var dirs []string
	for _, pattern := range c.dirs {
		matches, err := filepath.Glob(pattern)
		if err != nil || len(matches) == 0 {
			matches = []string{pattern}
		}
		dirs = append(dirs, matches...)
	}
	return dirs
}

// readFile parses one file and adds its families, applying node_exporter's
// help-text rule: a family whose explicit help differs from the first help
// seen for its name is dropped and counted as an error, and so is every
// later family of that name.
func (c *textfileCollector) readFile(s *textfileScrape, path string) {
	mfs, mtime, err := parseTextfile(path, c.modTime)
	if err != nil {
		s.fail(path, err)
		if mfs == nil {
			return
		}
	}
	names := make([]string, 0, len(mfs))
	for name := range mfs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		mf := mfs[name]
		if err := s.checkHelp(mf); err != nil {
			s.fail(path, err)
			continue
		}
		s.files[name] = append(s.files[name], path)
		s.families = append(s.families, textfileFamily{mf: mf, file: path})
	}
	if err == nil {
		s.mtimes[path] = mtime
	}
}

// checkHelp implements node_exporter's help bookkeeping: the explicit help
// of the first family of a name (or of the last consistent one) is what
// later explicit helps must equal; after one mismatch, every later family of
// that name is rejected too.
func (s *textfileScrape) checkHelp(mf *dto.MetricFamily) error {
	name := mf.GetName()
	h, seen := s.helps[name]
	if seen && (h.conflict || (mf.Help != nil && h.first != mf.GetHelp())) {
		h.conflict = true
		s.helps[name] = h
		return fmt.Errorf("metric %s: help %q differs from %q read before; family dropped", name, mf.GetHelp(), h.first)
	}
	if mf.Help != nil {
		s.helps[name] = textfileHelp{first: mf.GetHelp()}
	}
	return nil
}

// defaultHelp gives families without a HELP line node_exporter's help,
// naming every file the family was read from.
func (c *textfileCollector) defaultHelp(s *textfileScrape) {
	for _, f := range s.families {
		if f.mf.Help == nil {
			help := "Metric read from " + strings.Join(s.files[f.mf.GetName()], ", ")
			f.mf.Help = &help
		}
	}
}

// parseTextfile parses one file. A file with client-side timestamps is
// rejected whole, as node_exporter does. The mtime is taken after parsing,
// so that a file that fails never looks fresh.
func parseTextfile(path string, modTime func(os.FileInfo) time.Time) (map[string]*dto.MetricFamily, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("opening textfile: %w", err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("parsing textfile: %w", err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.TimestampMs != nil {
				return nil, time.Time{}, errors.New("textfile contains unsupported client-side timestamps, skipping entire file")
			}
		}
	}
	fi, err := f.Stat()
	if err != nil {
		return mfs, time.Time{}, fmt.Errorf("stat textfile: %w", err)
	}
	return mfs, modTime(fi), nil
}

// merge converts the families to metrics as node_exporter does (labels a
// family's series lack are added with empty values) and replays them, in
// file order, through a private registry whose consistency checks drop
// exactly what node_exporter's registry drops.
func (c *textfileCollector) merge(s *textfileScrape) []*dto.MetricFamily {
	if len(s.families) == 0 {
		return nil // the common case, no directory given: no registry to build
	}
	var ms collectors.MetricSlice
	for _, f := range s.families {
		for _, err := range convertTextfileFamily(f.mf, &ms) {
			s.fail(f.file, err)
		}
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(ms); err != nil {
		s.fail("", err) // cannot happen: an unchecked collector registers always
		return nil
	}
	mfs, err := reg.Gather()
	// Gather returns a MultiError, or the error itself when there is one.
	var multi prometheus.MultiError
	if !errors.As(err, &multi) && err != nil {
		multi = prometheus.MultiError{err}
	}
	for _, e := range multi {
		s.fail(c.blame(s, e), fmt.Errorf("series dropped: %w", e))
	}
	return mfs
}

// blame names the files an inconsistency comes from: those of the family
// named in the registry's error.
func (c *textfileCollector) blame(s *textfileScrape, err error) string {
	msg := err.Error()
	var files []string
	for name, fs := range s.files {
		if strings.Contains(msg, `"`+name+`"`) || strings.Contains(msg, " "+name+" ") {
			files = append(files, fs...)
		}
	}
	slices.Sort(files)
	return strings.Join(slices.Compact(files), ", ")
}

// convertTextfileFamily appends mf's series to ms as const metrics.
func convertTextfileFamily(mf *dto.MetricFamily, ms *collectors.MetricSlice) []error {
	var all []string
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if !slices.Contains(all, l.GetName()) {
				all = append(all, l.GetName())
			}
		}
	}
	var errs []error
	for _, m := range mf.GetMetric() {
		names := make([]string, 0, len(all))
		values := make([]string, 0, len(all))
		for _, l := range m.GetLabel() {
			names = append(names, l.GetName())
			values = append(values, l.GetValue())
		}
		for _, n := range all {
			if !slices.Contains(names, n) {
				names = append(names, n)
				values = append(values, "")
			}
		}
		desc := prometheus.NewDesc(mf.GetName(), mf.GetHelp(), names, nil)
		var (
			metric prometheus.Metric
			err    error
		)
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			metric, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, m.GetCounter().GetValue(), values...)
		case dto.MetricType_GAUGE:
			metric, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, m.GetGauge().GetValue(), values...)
		case dto.MetricType_UNTYPED:
			metric, err = prometheus.NewConstMetric(desc, prometheus.UntypedValue, m.GetUntyped().GetValue(), values...)
		case dto.MetricType_SUMMARY:
			quantiles := map[float64]float64{}
			for _, q := range m.GetSummary().GetQuantile() {
				quantiles[q.GetQuantile()] = q.GetValue()
			}
			metric, err = prometheus.NewConstSummary(desc, m.GetSummary().GetSampleCount(), m.GetSummary().GetSampleSum(), quantiles, values...)
		case dto.MetricType_HISTOGRAM:
			buckets := map[float64]uint64{}
			for _, b := range m.GetHistogram().GetBucket() {
				buckets[b.GetUpperBound()] = b.GetCumulativeCount()
			}
			metric, err = prometheus.NewConstHistogram(desc, m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum(), buckets, values...)
		default:
			err = fmt.Errorf("unsupported metric type %s", mf.GetType())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("metric %s: %w", mf.GetName(), err))
			continue
		}
		*ms = append(*ms, metric)
	}
	return errs
}

// logProblems logs each file's error when it differs from the one logged
// for that file in the previous scrape, and at debug level otherwise, so a
// file that stays broken does not flood the log every scrape.
func (c *textfileCollector) logProblems(problems map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for file, msg := range problems {
		if c.reported[file] == msg {
			c.logger.Debug("textfile: file still has errors", "file", file, "err", msg)
			continue
		}
		c.logger.Error("textfile: error reading metrics file; node_textfile_scrape_error is 1", "file", file, "err", msg)
	}
	for file := range c.reported {
		if _, still := problems[file]; !still {
			c.logger.Info("textfile: file read without errors again", "file", file)
		}
	}
	c.reported = problems
}
