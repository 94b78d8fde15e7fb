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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/internal/exposition"
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
	// NoDataRecheck (--scrape.no-data-recheck): a host-layer collector
	// that found nothing to report (ErrNoData: the subsystem it reads is
	// absent, as ZFS, bonding, InfiniBand or hwmon on most hosts) is run
	// again only this long after, its outcome served meanwhile; 0 runs
	// it every scrape. The other layers' sources (a kubelet, a runtime)
	// are asked every scrape.
	NoDataRecheck time.Duration
	Logger        *slog.Logger
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
	slots   *slots
	workers *goroutines // run collectors
	entries []*entry    // sorted by name
	byName  map[string]*entry

	mu       sync.Mutex
	inflight map[string]*gatherCall // Gathers in flight by collector set

	successDesc *prometheus.Desc // for LastSuccess
	invalid     prometheus.Counter
	requests    *prometheus.CounterVec // by outcome: collected, joined
	runs        *prometheus.CounterVec // by outcome: ran, joined
}

// gatherCall is one Gather in flight, which Gathers for the same collector
// set join.
type gatherCall struct {
	done chan struct{}
	res  Result
	err  error
}

type entry struct {
	Instance
	// labels is the label set of the collector's own series
	// (nodeagent_scrape_collector_*), built once.
	labels  *exposition.LabelSet
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
	// noData is the finished run served instead of running the collector
	// until noDataUntil (ScraperOptions.NoDataRecheck).
	noData      *run
	noDataUntil time.Time
}

// run is one execution of a collector, shared by every scrape that joined it.
type run struct {
	done     chan struct{}
	metrics  []prometheus.Metric
	families []*dto.MetricFamily // from a FamilyCollector
	compact  []*exposition.CompactFamily
	err      error
	duration time.Duration
}

type worker struct {
	since     time.Time
	finished  bool
	abandoned bool
}

// The Scraper's own series, one of each per collector and scrape.
const (
	successHelp  = "nodeagent: whether a collector succeeded in this scrape (1) or failed, timed out or was skipped (0)."
	durationHelp = "nodeagent: how long a collector took in this scrape."
)

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
		slots:  newSlots(opts.MaxConcurrency),
		// Longer than any usual scrape interval, so that the goroutines
		// of one scrape are there for the next.
		workers:     newGoroutines(5 * time.Minute),
		byName:      map[string]*entry{},
		successDesc: prometheus.NewDesc("nodeagent_scrape_collector_success", successHelp, []string{"collector"}, nil),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodeagent_exposition_errors_total",
			Help: "nodeagent: metrics dropped from a response because they were inconsistent (duplicate series, a family with two types).",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeagent_scrape_requests_total",
			Help: "nodeagent: scrapes of a collector set, by whether they ran a collection (collected) or joined the identical one in flight (joined), as an HA pair of Prometheus servers does.",
		}, []string{"outcome"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeagent_scrape_collector_runs_total",
			Help: "nodeagent: collector runs a scrape started (ran), joined because a scrape of another path had started the same collector (joined), or skipped because the host-layer collector found nothing to report less than --scrape.no-data-recheck ago (no_data).",
		}, []string{"outcome"}),
		inflight: map[string]*gatherCall{},
	}
	for _, outcome := range []string{"collected", "joined"} {
		s.requests.WithLabelValues(outcome)
	}
	for _, outcome := range []string{"ran", "joined", "no_data"} {
		s.runs.WithLabelValues(outcome)
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{s.invalid, s.requests, s.runs} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("registering scraper metrics: %w", err)
			}
		}
	}
	for _, in := range instances {
		if _, dup := s.byName[in.Name]; dup {
			return nil, fmt.Errorf("collector %s given twice", in.Name)
		}
		e := &entry{Instance: in, labels: exposition.NewLabelSet([]string{"collector"}, []string{in.Name})}
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
//
// Compact families come back in their client_model form, merged by name:
// the answers of the metrics paths take GatherResult's, which the text
// writer writes straight out.
func (s *Scraper) Gather(deadline time.Time, names []string) ([]*dto.MetricFamily, error) {
	r, err := s.GatherResult(deadline, names)
	return r.All(), err
}

// Result is one Gather's output.
type Result struct {
	// Families are the client_model families, sorted by name; shared
	// between joined callers.
	Families []*dto.MetricFamily
	// Compact are the CompactCollectors' families, sorted by name, none
	// with a name in Families; shared between joined callers.
	Compact []*exposition.CompactFamily
	// Errors holds each requested collector's error in this scrape: nil on
	// success, ErrNoData when it had nothing to report, ErrTimeout or
	// ErrStuck when the deadline cut it. A passthrough path turns it into
	// its status.
	Errors map[string]error
}

// All returns Families and Compact's client_model forms merged by name.
func (r Result) All() []*dto.MetricFamily {
	if len(r.Compact) == 0 {
		return r.Families
	}
	all := make([]*dto.MetricFamily, 0, len(r.Families)+len(r.Compact))
	all = append(all, r.Families...)
	for _, c := range r.Compact {
		all = append(all, c.MetricFamily())
	}
	slices.SortFunc(all, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return all
}

// GatherResult is Gather that also says how each collector fared, with
// the compact families as they are.
func (s *Scraper) GatherResult(deadline time.Time, names []string) (Result, error) {
	key := strings.Join(names, ",")
	s.mu.Lock()
	if c, ok := s.inflight[key]; ok {
		s.requests.WithLabelValues("joined").Inc()
		s.mu.Unlock()
		<-c.done
		return c.res, c.err
	}
	c := &gatherCall{done: make(chan struct{})}
	s.inflight[key] = c
	s.requests.WithLabelValues("collected").Inc()
	s.mu.Unlock()

	c.res, c.err = s.gather(deadline, names)
	s.mu.Lock()
	delete(s.inflight, key)
	s.mu.Unlock()
	close(c.done)
	return c.res, c.err
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
		reported, lastOK := e.reported, e.lastOK
		e.mu.Unlock()
		if !reported {
			continue
		}
		v := 0.0
		if lastOK {
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
	compact  []*exposition.CompactFamily
	err      error
	duration time.Duration
}

// gather is one collection: start (or join) every named collector's run,
// wait for each until the deadline, and build the response.
func (s *Scraper) gather(deadline time.Time, names []string) (Result, error) {
	entries := make([]*entry, 0, len(names))
	for _, n := range names {
		e, ok := s.byName[n]
		if !ok {
			return Result{}, fmt.Errorf("collector %q is not enabled", n)
		}
		entries = append(entries, e)
	}
	// The runs this scrape starts share one context: a deadline is a timer,
	// and one per collector and scrape showed in profiles (4 % of a host
	// scrape).
	runDeadline := deadline
	if limit := time.Now().Add(s.opts.Timeout); runDeadline.After(limit) {
		runDeadline = limit
	}
	ctx, cancel := context.WithDeadline(context.Background(), runDeadline)
	runs := make([]*run, len(entries))
	for i, e := range entries {
		runs[i] = s.start(ctx, e)
	}
	results := s.await(deadline, entries, runs)
	// Once every run is done the context is released at once. A run still
	// going is past its deadline: the context is left to expire by its
	// own timer, so that the collector sees DeadlineExceeded (a timeout,
	// as the kubelet client counts it), never Canceled.
	for _, r := range runs {
		select {
		case <-r.done:
		default:
			go func() {
				<-ctx.Done()
				cancel()
			}()
			return s.respond(results)
		}
	}
	cancel()
	return s.respond(results)
}

// await waits for each run until deadline and reports each collector's
// outcome; a run still going at the deadline is a timeout for this scrape.
//
// The wait does not follow the first caller's request context: a scraper
// that hangs up must not cut short the scrape others joined.
func (s *Scraper) await(deadline time.Time, entries []*entry, runs []*run) []result {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	results := make([]result, 0, len(runs))
	for i, r := range runs {
		res := result{name: entries[i].Name}
		if waitRun(ctx, r) {
			res.metrics, res.families, res.compact, res.err, res.duration = r.metrics, r.families, r.compact, r.err, r.duration
		} else {
			res.err, res.duration = ErrTimeout, time.Since(start)
		}
		s.report(entries[i], res.err)
		results = append(results, res)
	}
	return results
}

// respond turns the results into the response's families: the collectors'
// metrics checked by a registry (an inconsistent metric is dropped and
// counted, the rest served), each collector's success and duration, and
// the FamilyCollectors' families merged in, without timestamps; and each
// collector's error.
func (s *Scraper) respond(results []result) (Result, error) {
	var all []prometheus.Metric
	outcome := Result{Errors: make(map[string]error, len(results))}
	// The two series per collector are compact families (a fifth of a
	// host scrape's series, where client_golang's const metrics and the
	// registry's checks cost several times what the compact form does),
	// by collector name as the registry would sort them.
	byName := func(a, b result) int { return strings.Compare(a.name, b.name) }
	if !slices.IsSortedFunc(results, byName) {
		results = slices.Clone(results)
		slices.SortFunc(results, byName)
	}
	success := &exposition.CompactFamily{Name: "nodeagent_scrape_collector_success", Help: successHelp, Type: dto.MetricType_GAUGE,
		Labels: make([]*exposition.LabelSet, 0, len(results)), Values: make([]float64, 0, len(results))}
	duration := &exposition.CompactFamily{Name: "nodeagent_scrape_collector_duration_seconds", Help: durationHelp, Type: dto.MetricType_GAUGE,
		Labels: make([]*exposition.LabelSet, 0, len(results)), Values: make([]float64, 0, len(results))}
	for _, r := range results {
		outcome.Errors[r.name] = r.err
		ok := 0.0
		if r.err == nil || errors.Is(r.err, ErrNoData) {
			ok = 1
		}
		all = append(all, r.metrics...)
		labels := s.byName[r.name].labels
		success.Labels, success.Values = append(success.Labels, labels), append(success.Values, ok)
		duration.Labels, duration.Values = append(duration.Labels, labels), append(duration.Values, r.duration.Seconds())
	}
	results = append(results, result{name: "scraper", compact: []*exposition.CompactFamily{duration, success}})
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
	mfs, compact, err := mergeFamilies(mfs, results)
	if err != nil {
		s.invalid.Inc()
		errs = append(errs, err)
	}
	StripTimestamps(mfs)
	outcome.Families, outcome.Compact = mfs, compact
	return outcome, errors.Join(errs...)
}

// mergeFamilies adds the families of FamilyCollectors to the registry's
// output, sorted by name, and returns the CompactCollectors' families
// sorted by name apart; a name already present in either is dropped,
// because one response must not carry a family twice, and so is a compact
// family that is not a counter, gauge or untyped with a label set per value.
func mergeFamilies(mfs []*dto.MetricFamily, results []result) ([]*dto.MetricFamily, []*exposition.CompactFamily, error) {
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
	var compact []*exposition.CompactFamily
	for _, r := range results {
		for _, c := range r.compact {
			switch {
			case seen[c.Name]:
				errs = append(errs, fmt.Errorf("collector %s: family %s is already served by another collector; dropped", r.name, c.Name))
				continue
			case c.Type != dto.MetricType_COUNTER && c.Type != dto.MetricType_GAUGE && c.Type != dto.MetricType_UNTYPED:
				errs = append(errs, fmt.Errorf("collector %s: compact family %s is of type %s, not a counter, gauge or untyped; dropped", r.name, c.Name, c.Type))
				continue
			case len(c.Labels) != len(c.Values):
				errs = append(errs, fmt.Errorf("collector %s: compact family %s has %d label sets for %d values; dropped", r.name, c.Name, len(c.Labels), len(c.Values)))
				continue
			}
			seen[c.Name] = true
			compact = append(compact, c)
		}
	}
	slices.SortFunc(compact, func(a, b *exposition.CompactFamily) int { return strings.Compare(a.Name, b.Name) })
	return mfs, compact, errors.Join(errs...)
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

// start returns the collector's run in flight, or starts one that must end
// by ctx's deadline: the scrape's own deadline (Prometheus' timeout less
// the offset, or --scrape.timeout) reaches the collector's Update as its
// context's deadline, never later than --scrape.timeout from the scrape's
// start. A scrape that joins a run started by another path's scrape waits
// for it until its own deadline.
func (s *Scraper) start(ctx context.Context, e *entry) *run {
	r, x := s.newRun(e)
	if x == nil {
		return r
	}
	if stuck := e.stuckWorker(); stuck != nil {
		x.finish(output{err: fmt.Errorf("%w (blocked since %s)", ErrStuck, stuck.since.Format(time.RFC3339))})
		return r
	}
	if s.slots.take(ctx, x) {
		s.workers.Go(func() { s.runFrom(ctx, x) })
	}
	return r
}

// newRun returns the run in flight or served instead, or a new run and
// its execution.
func (s *Scraper) newRun(e *entry) (*run, *execution) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running != nil {
		s.runs.WithLabelValues("joined").Inc()
		return e.running, nil
	}
	if e.noData != nil && time.Now().Before(e.noDataUntil) {
		s.runs.WithLabelValues("no_data").Inc()
		return e.noData, nil
	}
	s.runs.WithLabelValues("ran").Inc()
	r := &run{done: make(chan struct{})}
	e.running = r
	return r, &execution{s: s, e: e, r: r, began: time.Now()}
}

// runFrom runs x, which holds a concurrency slot, then the queued runs
// the slot is handed to, until none is waiting.
func (s *Scraper) runFrom(ctx context.Context, x *execution) {
	for x != nil {
		if !x.execute(ctx) {
			return // the deadline's callback took the slot on
		}
		ctx, x = s.slots.handOff()
	}
}

// releaseSlot frees a slot held by a collector given up at its deadline,
// and runs the queued run it goes to, if any, on another goroutine.
func (s *Scraper) releaseSlot() {
	if ctx, x := s.slots.handOff(); x != nil {
		s.workers.Go(func() { s.runFrom(ctx, x) })
	}
}

// execute runs the collector, with a concurrency slot held, to its end or
// its deadline. It reports whether the caller still holds the slot: a
// collector given up at its deadline has its slot freed then, so that one
// stuck collector cannot starve the others.
func (x *execution) execute(ctx context.Context) (holdsSlot bool) {
	// The duration reported is the collector's own, not its wait for a slot.
	x.began = time.Now()
	x.w = &worker{since: x.began}
	switch c := x.e.Collector.(type) {
	case CompactCollector:
		return x.runCall(ctx, func(o *output) (err error) {
			o.compact, err = c.UpdateCompact(ctx)
			return err
		})
	case FamilyCollector:
		return x.runCall(ctx, func(o *output) (err error) {
			o.families, err = c.UpdateFamilies(ctx)
			return err
		})
	default:
		x.runMetrics(ctx)
		return true
	}
}

// execution is one run of one collector in progress. A FamilyCollector or
// CompactCollector is called on the run's own goroutine, and given up at
// the deadline by a callback of the run's context; a plain Collector's
// Update runs on a worker goroutine while the run's goroutine collects the
// metrics it sends, and gives up at the deadline. A collector left blocked
// is remembered as stuck, so that no second call is made while it blocks.
type execution struct {
	s     *Scraper
	e     *entry
	r     *run
	w     *worker
	began time.Time
}

// finish publishes the run's output to every scrape waiting for it.
func (x *execution) finish(o output) {
	x.r.metrics, x.r.families, x.r.compact, x.r.err, x.r.duration = o.metrics, o.families, o.compact, o.err, time.Since(x.began)
	x.e.mu.Lock()
	x.e.running = nil
	x.e.ranOnce = true
	x.e.noData = nil
	if recheck := x.s.opts.NoDataRecheck; recheck > 0 && x.e.Layer == LayerNode && errors.Is(o.err, ErrNoData) {
		// Served until the recheck: the outcome, no series, and a
		// duration of 0, for nothing ran.
		done := make(chan struct{})
		close(done)
		x.e.noData, x.e.noDataUntil = &run{done: done, err: o.err}, time.Now().Add(recheck)
	}
	x.e.mu.Unlock()
	close(x.r.done)
}

// workerDone is called by the worker when the collector returns, however
// late: a worker that was abandoned clears the collector's stuck mark.
func (x *execution) workerDone() {
	x.e.mu.Lock()
	x.w.finished = true
	if x.w.abandoned {
		x.e.stuck = nil
	}
	x.e.mu.Unlock()
}

// abandon gives up on a worker at the deadline, marking the collector stuck
// until the worker returns.
func (x *execution) abandon() {
	x.e.mu.Lock()
	if !x.w.finished {
		x.w.abandoned = true
		x.e.stuck = x.w
	}
	x.e.mu.Unlock()
	x.finish(output{err: ErrTimeout})
}

// runCall runs a FamilyCollector or CompactCollector: one call that
// returns its families into o, made on this goroutine. Either the call
// returns first, and the run is finished with its output (and runCall
// returns true: the caller still holds the slot), or the deadline comes
// first, and ctx's AfterFunc finishes the run as a timeout and frees the
// slot while the call goes on. (A second goroutine per run, waiting on the
// call, was two goroutine handoffs per collector and scrape.)
func (x *execution) runCall(ctx context.Context, call func(o *output) error) bool {
	stop := context.AfterFunc(ctx, func() {
		x.abandon()
		x.s.releaseSlot()
	})
	var o output
	o.err = x.s.guard(x.e, func() error { return call(&o) })
	x.workerDone()
	if stop() {
		x.finish(o)
		return true
	}
	// Otherwise the deadline's callback has run or is running: it
	// finishes the run as a timeout and frees the slot.
	return false
}

// runMetrics runs a Collector's Update and collects the metrics it sends.
func (x *execution) runMetrics(ctx context.Context) {
	// A small buffer: the collecting goroutine takes metrics as fast as
	// they come, and 49 host collectors per scrape make a large one an
	// allocation that shows.
	ch := make(chan prometheus.Metric, 16)
	errc := make(chan error, 1)
	x.s.workers.Go(func() {
		err := x.s.guard(x.e, func() error { return x.e.Collector.Update(ctx, ch) })
		close(ch)
		errc <- err
		x.workerDone()
	})
	// Sized by the last run, so that a collector's output is not copied
	// again and again while it grows.
	ms := make([]prometheus.Metric, 0, x.e.lastLen)
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				x.e.lastLen = len(ms) // only this goroutine runs the collector now
				x.finish(output{metrics: ms, err: <-errc})
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
			x.abandon()
			return
		}
	}
}

// stuckWorker is the worker of an earlier run that is still blocked, if any.
func (e *entry) stuckWorker() *worker {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stuck
}

// output is what one invocation of a collector produced.
type output struct {
	metrics  []prometheus.Metric
	families []*dto.MetricFamily
	compact  []*exposition.CompactFamily
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
