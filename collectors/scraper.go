package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sync/singleflight"
)

// ErrTimeout marks a collector run that missed its deadline; its output is
// dropped so that no scrape serves half of a collector.
var ErrTimeout = errors.New("collector missed the scrape deadline; its output was dropped")

// ErrStuck marks a collector skipped because its previous run never
// returned: at most one goroutine per collector is ever blocked.
var ErrStuck = errors.New("collector skipped: its previous run has not returned")

// ScraperOptions configures a Scraper.
type ScraperOptions struct {
	// Timeout bounds every collector run (--scrape.timeout).
	Timeout time.Duration
	// MaxConcurrency bounds how many collectors run at once.
	MaxConcurrency int
	Logger         *slog.Logger
	// Registerer takes the Scraper's own long-lived metrics.
	Registerer prometheus.Registerer
}

// Scraper runs enabled collectors. Per scrape the requested collectors run
// concurrently (bounded by MaxConcurrency) under a deadline; a collector past
// it is reported failed and its late output dropped, while the rest are
// served in time.
//
// Scrapes that arrive together share work twice over: a Gather for the same
// collector set joins the one in flight, and a collector already running for
// another path's scrape is joined rather than started again.
type Scraper struct {
	opts    ScraperOptions
	logger  *slog.Logger
	slots   chan struct{}
	entries []*entry // sorted by name
	byName  map[string]*entry
	group   singleflight.Group
	gathers atomic.Int64 // Gather calls so far; tests use it to know all callers arrived

	successDesc  *prometheus.Desc
	durationDesc *prometheus.Desc
	invalid      prometheus.Counter
}

type entry struct {
	Instance
	mu      sync.Mutex
	running *run    // the run in flight, which new scrapes join
	stuck   *worker // a worker abandoned at its deadline that has not returned
	ranOnce bool
	lastErr string // for logging a failure once per change
	lastLen int    // metrics the last completed Update sent; runs are serial
	// reported and lastOK are the outcome of the collector's last scrape,
	// for LastSuccess.
	reported bool
	lastOK   bool
}

// run is one execution of a collector, shared by every scrape that joined it.
type run struct {
	done     chan struct{}
	metrics  []prometheus.Metric
	families []*dto.MetricFamily // from a FamilyCollector
	err      error
	duration time.Duration
}

type worker struct {
	since     time.Time
	finished  bool
	abandoned bool
}

// NewScraper returns a Scraper over the built collectors.
func NewScraper(instances []Instance, opts ScraperOptions) (*Scraper, error) {
	if opts.Timeout <= 0 {
		return nil, fmt.Errorf("scrape timeout must be positive, got %s", opts.Timeout)
	}
	if opts.MaxConcurrency <= 0 {
		return nil, fmt.Errorf("scrape concurrency must be positive, got %d", opts.MaxConcurrency)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scraper{
		opts:   opts,
		logger: opts.Logger,
		slots:  make(chan struct{}, opts.MaxConcurrency),
		byName: map[string]*entry{},
		successDesc: prometheus.NewDesc("nodeagent_scrape_collector_success",
			"nodeagent: whether a collector succeeded in this scrape (1) or failed, timed out or was skipped (0).",
			[]string{"collector"}, nil),
		durationDesc: prometheus.NewDesc("nodeagent_scrape_collector_duration_seconds",
			"nodeagent: how long a collector took in this scrape.",
			[]string{"collector"}, nil),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodeagent_exposition_errors_total",
			Help: "nodeagent: metrics dropped from a response because they were inconsistent (duplicate series, a family with two types).",
		}),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(s.invalid); err != nil {
			return nil, fmt.Errorf("registering scraper metrics: %w", err)
		}
	}
	for _, in := range instances {
		if _, dup := s.byName[in.Name]; dup {
			return nil, fmt.Errorf("collector %s given twice", in.Name)
		}
		e := &entry{Instance: in}
		s.entries = append(s.entries, e)
		s.byName[in.Name] = e
	}
	slices.SortFunc(s.entries, func(a, b *entry) int { return strings.Compare(a.Name, b.Name) })
	return s, nil
}

// Instances returns the enabled collectors, sorted by name.
func (s *Scraper) Instances() []Instance {
	out := make([]Instance, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.Instance
	}
	return out
}

// Gathers is how many Gather calls were made so far, joined ones included:
// tests use it to know that concurrent callers have all arrived.
func (s *Scraper) Gathers() int64 { return s.gathers.Load() }

// Timeout is the longest a collector may run.
func (s *Scraper) Timeout() time.Duration { return s.opts.Timeout }

// Gather runs the named collectors (all of them must be enabled) and returns
// their metrics plus nodeagent_scrape_collector_{success,duration_seconds},
// sorted, without sample timestamps. Collectors that do not finish by
// deadline are reported failed. A Gather with the same names already in
// flight is joined instead of started again; its deadline then applies.
//
// The returned families are shared between joined callers: read, never modify.
// The error reports inconsistent metrics that were left out; the families
// returned with it are complete otherwise and safe to serve.
func (s *Scraper) Gather(deadline time.Time, names []string) ([]*dto.MetricFamily, error) {
	r, err := s.GatherResult(deadline, names)
	return r.Families, err
}

// Result is one Gather's output.
type Result struct {
	// Families are what Gather returns; shared between joined callers.
	Families []*dto.MetricFamily
	// Errors holds each requested collector's error in this scrape: nil on
	// success, ErrNoData when it had nothing to report, ErrTimeout or
	// ErrStuck when the deadline cut it. A passthrough path turns it into
	// its status.
	Errors map[string]error
}

// GatherResult is Gather that also says how each collector fared.
func (s *Scraper) GatherResult(deadline time.Time, names []string) (Result, error) {
	s.gathers.Add(1)
	key := strings.Join(names, ",")
	v, err, _ := s.group.Do(key, func() (any, error) {
		return s.gather(deadline, names)
	})
	r, _ := v.(Result)
	return r, err
}

// LastSuccess returns nodeagent_scrape_collector_success of each named
// collector as of its last scrape, leaving out those never scraped:
// passthroughs are scraped on their own paths, and /metrics reports how
// they fared there.
func (s *Scraper) LastSuccess(names []string) []prometheus.Metric {
	var out []prometheus.Metric
	for _, n := range names {
		e, ok := s.byName[n]
		if !ok {
			continue
		}
		e.mu.Lock()
		reported, ok1 := e.reported, e.lastOK
		e.mu.Unlock()
		if !reported {
			continue
		}
		v := 0.0
		if ok1 {
			v = 1
		}
		out = append(out, prometheus.MustNewConstMetric(s.successDesc, prometheus.GaugeValue, v, n))
	}
	return out
}

type result struct {
	name     string
	metrics  []prometheus.Metric
	families []*dto.MetricFamily
	err      error
	duration time.Duration
}

func (s *Scraper) gather(deadline time.Time, names []string) (Result, error) {
	// The collection does not follow the first caller's request context: a
	// scraper that hangs up must not cut short the scrape others joined.
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	results := make([]result, 0, len(names))
	var entries []*entry
	var runs []*run
	for _, n := range names {
		e, ok := s.byName[n]
		if !ok {
			return Result{}, fmt.Errorf("collector %q is not enabled", n)
		}
		entries = append(entries, e)
		runs = append(runs, s.start(e))
	}
	start := time.Now()
	for i, r := range runs {
		res := result{name: entries[i].Name}
		if waitRun(ctx, r) {
			res.metrics, res.families, res.err, res.duration = r.metrics, r.families, r.err, r.duration
		} else {
			res.err, res.duration = ErrTimeout, time.Since(start)
		}
		s.report(entries[i], res.err)
		results = append(results, res)
	}

	var all []prometheus.Metric
	outcome := Result{Errors: make(map[string]error, len(results))}
	for _, r := range results {
		outcome.Errors[r.name] = r.err
		ok := 0.0
		if r.err == nil || errors.Is(r.err, ErrNoData) {
			ok = 1
		}
		all = append(all, r.metrics...)
		all = append(all,
			prometheus.MustNewConstMetric(s.successDesc, prometheus.GaugeValue, ok, r.name),
			prometheus.MustNewConstMetric(s.durationDesc, prometheus.GaugeValue, r.duration.Seconds(), r.name))
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(MetricSlice(all)); err != nil {
		return Result{}, fmt.Errorf("registering scrape output: %w", err)
	}
	mfs, err := reg.Gather()
	var errs []error
	if err != nil {
		var multi prometheus.MultiError
		n := 1
		if errors.As(err, &multi) {
			n = len(multi)
		}
		s.invalid.Add(float64(n))
		errs = append(errs, err)
	}
	mfs, err = mergeFamilies(mfs, results)
	if err != nil {
		s.invalid.Inc()
		errs = append(errs, err)
	}
	StripTimestamps(mfs)
	outcome.Families = mfs
	return outcome, errors.Join(errs...)
}

// mergeFamilies adds the families of FamilyCollectors to the registry's
// output, sorted by name; a name already present is dropped, because one
// response must not carry a family twice.
func mergeFamilies(mfs []*dto.MetricFamily, results []result) ([]*dto.MetricFamily, error) {
	var errs []error
	added := false
	seen := make(map[string]bool, len(mfs))
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, r := range results {
		for _, mf := range r.families {
			if seen[mf.GetName()] {
				errs = append(errs, fmt.Errorf("collector %s: family %s is already served by another collector; dropped", r.name, mf.GetName()))
				continue
			}
			seen[mf.GetName()] = true
			mfs = append(mfs, mf)
			added = true
		}
	}
	if added {
		slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	}
	return mfs, errors.Join(errs...)
}

// StripTimestamps removes explicit sample timestamps: Prometheus then stamps
// samples with the scrape time, avoiding the out-of-order samples that
// cAdvisor's explicit timestamps cause. It writes only where a timestamp is
// set, so families nobody stamped are never written to.
func StripTimestamps(mfs []*dto.MetricFamily) {
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.TimestampMs != nil {
				m.TimestampMs = nil
			}
		}
	}
}

// waitRun waits for r until ctx is done and says whether r finished. A run
// that has finished always counts, even when the deadline has passed too.
func waitRun(ctx context.Context, r *run) bool {
	select {
	case <-r.done:
		return true
	default:
	}
	select {
	case <-r.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// start returns the collector's run in flight, or starts one.
func (s *Scraper) start(e *entry) *run {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running != nil {
		return e.running
	}
	r := &run{done: make(chan struct{})}
	e.running = r
	go s.execute(e, r)
	return r
}

func (s *Scraper) execute(e *entry, r *run) {
	requested := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	began := requested
	finish := func(o output) {
		r.metrics, r.families, r.err, r.duration = o.metrics, o.families, o.err, time.Since(began)
		e.mu.Lock()
		e.running = nil
		e.ranOnce = true
		e.mu.Unlock()
		close(r.done)
	}

	e.mu.Lock()
	stuck := e.stuck
	e.mu.Unlock()
	if stuck != nil {
		finish(output{err: fmt.Errorf("%w (blocked since %s)", ErrStuck, stuck.since.Format(time.RFC3339))})
		return
	}

	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		finish(output{err: ErrTimeout})
		return
	}
	// The slot is released at the deadline even if the worker stays blocked,
	// so one stuck collector cannot starve the others.
	defer func() { <-s.slots }()
	// The duration reported is the collector's own, not its wait for a slot.
	began = time.Now()

	// The worker runs the collector; this goroutine collects what it sends
	// (or its families) and gives up at the deadline. A worker left behind
	// is remembered as stuck, so that no second one is started while it
	// blocks.
	w := &worker{since: began}
	workerDone := func() {
		e.mu.Lock()
		w.finished = true
		if w.abandoned {
			e.stuck = nil
		}
		e.mu.Unlock()
	}
	abandon := func() {
		e.mu.Lock()
		if !w.finished {
			w.abandoned = true
			e.stuck = w
		}
		e.mu.Unlock()
		finish(output{err: ErrTimeout})
	}

	if fc, ok := e.Collector.(FamilyCollector); ok {
		out := make(chan output, 1)
		go func() {
			var o output
			o.err = s.guard(e, func() (err error) {
				o.families, err = fc.UpdateFamilies(ctx)
				return err
			})
			workerDone()
			out <- o
		}()
		select {
		case o := <-out:
			finish(o)
		case <-ctx.Done():
			abandon()
		}
		return
	}

	// A small buffer: the collecting goroutine takes metrics as fast as
	// they come, and 49 host collectors per scrape make a large one an
	// allocation that shows.
	ch := make(chan prometheus.Metric, 16)
	errc := make(chan error, 1)
	go func() {
		err := s.guard(e, func() error { return e.Collector.Update(ctx, ch) })
		close(ch)
		errc <- err
		workerDone()
	}()
	// Sized by the last run, so that a collector's output is not copied
	// again and again while it grows.
	ms := make([]prometheus.Metric, 0, e.lastLen)
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				e.lastLen = len(ms) // only this goroutine runs the collector now
				finish(output{metrics: ms, err: <-errc})
				return
			}
			ms = append(ms, m)
		case <-ctx.Done():
			// Keep draining, so that a worker that wakes up late can
			// still finish and clear its stuck mark.
			go func() {
				for range ch {
				}
			}()
			abandon()
			return
		}
	}
}

// output is what one invocation of a collector produced.
type output struct {
	metrics  []prometheus.Metric
	families []*dto.MetricFamily
	err      error
}

// guard runs a collector's method and turns a panic into an error.
func (s *Scraper) guard(e *entry, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("collector panicked: %v", p)
			s.logger.Error("collector panicked", "collector", e.Name, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	return f()
}

// report logs a collector's failure once per change of error, and its
// recovery, so a persistent failure does not flood the log every scrape.
func (s *Scraper) report(e *entry, err error) {
	msg := ""
	if err != nil && !errors.Is(err, ErrNoData) {
		msg = err.Error()
	}
	e.mu.Lock()
	prev := e.lastErr
	e.lastErr = msg
	e.reported, e.lastOK = true, msg == ""
	e.mu.Unlock()
	switch {
	case err != nil && errors.Is(err, ErrNoData):
		s.logger.Debug("collector returned no data", "collector", e.Name)
	case msg != "" && msg != prev:
		s.logger.Error("collector failed", "collector", e.Name, "err", err)
	case msg != "":
		s.logger.Debug("collector still failing", "collector", e.Name, "err", err)
	case prev != "":
		s.logger.Info("collector recovered", "collector", e.Name)
	}
}

// NotReady lists the enabled layers whose collectors have not all completed
// a first run (successfully or not); empty means ready.
func (s *Scraper) NotReady() []Layer {
	var out []Layer
	for _, e := range s.entries {
		e.mu.Lock()
		ran := e.ranOnce
		e.mu.Unlock()
		if !ran && !slices.Contains(out, e.Layer) {
			out = append(out, e.Layer)
		}
	}
	return out
}

// MetricSlice replays collected metrics into a registry (the Scraper's
// merge, the textfile collector's node_exporter-compatible checks). It describes
// nothing, so the registry treats it as unchecked and validates each metric
// at Gather time instead.
type MetricSlice []prometheus.Metric

func (MetricSlice) Describe(chan<- *prometheus.Desc) {}

func (ms MetricSlice) Collect(ch chan<- prometheus.Metric) {
	for _, m := range ms {
		ch <- m
	}
}
