package cadvisor

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/cgroup"
	"github.com/nodeagent/nodeagent/internal/exposition"
	"github.com/nodeagent/nodeagent/internal/podmeta"

	"github.com/nodeagent/nodeagent/collectors"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "cadvisor",
		Layer:          collectors.LayerCadvisor,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &cadvisorConfig{}
			cfg.addFlags(app)
			return func(env collectors.Env) (collectors.Collector, error) { return newCadvisorCollector(env, *cfg) }
		},
	})
}

// cadvisorConfig holds the container collector's flags.
type cadvisorConfig struct {
	hostCgroups      string
	sandboxImage     string
	skipSandboxes    bool
	skipQoS          bool
	dropID, dropName bool
	metricInclude    string
	metricExclude    string
	netDeviceExclude string
	concurrency      int
	maxOpenFiles     int
	specRefresh      time.Duration
	subtreeZeros     bool
}

// defaultHostCgroupsWithKubelet serves, outside the kubepods tree, what the
// kubelet's cAdvisor serves: the kubelet's own cgroup.
const defaultHostCgroupsWithKubelet = `/system\.slice/kubelet\.service`

func (c *cadvisorConfig) addFlags(app collectors.FlagApp) {
	app.Flag("collector.cadvisor.host-cgroups",
		"Regexp (whole id) of the cgroups outside the kubepods tree to serve: slices, services, scopes. Empty means all of them on a host without a kubelet, and only "+defaultHostCgroupsWithKubelet+" (as the kubelet serves) when pod metadata comes from a kubelet.").
		Default("").StringVar(&c.hostCgroups)
	app.Flag("collector.cadvisor.sandbox-image",
		"image label of pod sandbox (pause) cgroups. The kubelet's /pods does not name the sandbox image; set the runtime's pause image (for example registry.k8s.io/pause:3.10.1) to label sandboxes as the kubelet does. Empty by default.").
		Default("").StringVar(&c.sandboxImage)
	app.Flag("collector.cadvisor.skip-sandboxes",
		"Leave out pod sandbox (pause) cgroups, and with them the pods' network series, which cAdvisor attributes to the sandbox.").
		Default("false").BoolVar(&c.skipSandboxes)
	app.Flag("collector.cadvisor.skip-qos",
		"Leave out the root, kubepods and QoS-class (burstable, besteffort) cgroups.").
		Default("false").BoolVar(&c.skipQoS)
	app.Flag("collector.cadvisor.drop-id-label",
		"Serve container series without the id label (the cgroup path). Cgroups that then look alike are served once, the first by path.").
		Default("false").BoolVar(&c.dropID)
	app.Flag("collector.cadvisor.drop-name-label",
		"Serve container series without the name label (the runtime container ID). Cgroups that then look alike are served once, the first by path.").
		Default("false").BoolVar(&c.dropName)
	app.Flag("collector.cadvisor.metric-include",
		"Regexp (whole name) of the container_* families to serve; files that only excluded families need are not read.").
		Default(".*").StringVar(&c.metricInclude)
	app.Flag("collector.cadvisor.metric-exclude",
		"Regexp (whole name) of the container_* families to leave out.").
		Default("").StringVar(&c.metricExclude)
	app.Flag("collector.cadvisor.network-device-exclude",
		"Regexp (whole name) of network interfaces left out of container_network_*; the default is cAdvisor's.").
		Default(`(lo|veth|docker|nerdctl).*`).StringVar(&c.netDeviceExclude)
	app.Flag("collector.cadvisor.read-concurrency",
		"How many goroutines read cgroups in parallel; 0 means one per CPU (GOMAXPROCS).").
		Default("0").IntVar(&c.concurrency)
	app.Flag("collector.cadvisor.max-open-files",
		"How many cgroup file descriptors to keep open across scrapes (re-read from offset 0, which costs a fraction of open+read+close). Each costs about 6 KiB of kernel memory charged to nodeagent's cgroup; files beyond it are opened per read. 0 keeps none open.").
		Default("8192").IntVar(&c.maxOpenFiles)
	app.Flag("collector.cadvisor.spec-refresh-interval",
		"How often each cgroup's limit files (cpu.max, cpu.weight, memory.max, memory.min, memory.swap.max, pids.max), which change only when a pod is resized, are re-read; the container_spec_* series are at most this old (cAdvisor's are up to 5s). Spread over the interval per cgroup. 0 re-reads them every scrape.").
		Default("30s").DurationVar(&c.specRefresh)
	app.Flag("collector.cadvisor.subtree-zeros",
		"Serve memory.swap.current, memory.events and the PSI files (cpu.pressure, memory.pressure, io.pressure) as zero, without reading them, in the cgroups below one where they read zero: each counts a cgroup's whole subtree (memory.events unless the hierarchy is mounted with memory_localevents, or before Linux 5.2, where it is read everywhere). --no-collector.cadvisor.subtree-zeros reads them in every cgroup.").
		Default("true").BoolVar(&c.subtreeZeros)
}

// specFiles are the limit files, which change only when a pod is resized.
var specFiles = cgroup.Files(cgroup.FileCPUMax, cgroup.FileCPUPeriodV1, cgroup.FileCPUWeight, cgroup.FileMemoryMax,
	cgroup.FileMemoryMin, cgroup.FileMemorySwapMax, cgroup.FilePidsMax)

// wholeRegexp compiles s anchored at both ends; "" matches nothing.
func wholeRegexp(flag, s string) (*regexp.Regexp, error) {
	if s == "" {
		return nil, nil
	}
	re, err := regexp.Compile("^(?:" + s + ")$")
	if err != nil {
		return nil, fmt.Errorf("--collector.cadvisor.%s: %w", flag, err)
	}
	return re, nil
}

// cadvisorCollector serves container_* metrics of every cgroup v2 cgroup
// with the kubelet's /metrics/cadvisor names, help, types and labels. See
// docs/container-metrics.md.
type cadvisorCollector struct {
	logger       *slog.Logger
	cgroupPath   string
	procPath     string
	proc         procfs.FS
	now          func() time.Time
	meta         podmeta.Source
	families     []containerFamily
	want         cgroup.FileSet // files read every scrape (their descriptors are cached)
	specWant     cgroup.FileSet // limit files, read every specRefresh
	specRefresh  time.Duration
	subtreeZeros bool           // --collector.cadvisor.subtree-zeros
	subtree      cgroup.FileSet // files served as zero below a cgroup where they are (cadvisor_subtree.go)
	hostRE       *regexp.Regexp
	netExcludeRE *regexp.Regexp
	sandboxImage string
	skipSandbox  bool
	skipQoS      bool
	dropID       bool
	dropName     bool
	workers      int
	network      bool // a container_network_* family is served
	budget       *cgroup.Budget
	readErrors   prometheus.Counter
	shapes       labelShapes

	mu        sync.Mutex // one scrape at a time; guards everything below
	fs        *cgroup.FS
	walker    *cgroup.Walker
	watchLost bool // the walker's giving up on inotify was logged
	states    map[string]*cgState
	bufs      [][]byte
	series    []seriesBuf // one per build worker, kept between scrapes
	devices   *blockDevices
	levels    [][]*cgState // readSubtreeTotals' cgroups by depth, kept between scrapes
}

// cgState is what nodeagent keeps about one cgroup between scrapes: its
// open Group (cached descriptors), its creation time, its label sets; and
// what one scrape read from it.
type cgState struct {
	entry     cgroup.Entry
	group     *cgroup.Group
	createdAt time.Time // zero until known
	specDue   time.Time // when the limit files are read next
	seen      bool      // listed by this scrape's walk

	// This scrape's reading.
	stats    cgroup.Stats
	parent   *cgState       // the nearest ancestor read in this scrape, or nil
	inner    bool           // an ancestor of another cgroup read in this scrape
	early    cgroup.FileSet // files readSubtreeTotals read
	zero     cgroup.FileSet // subtree files that hold zero here and below
	gone     bool
	err      error
	net      *netSample
	ioLabels []*ioLabels // one per stats.IO line
	netPID   int         // the process whose network namespace is netKey
	netKey   string
	netProc  procfs.Proc // netPID in procfs, once found

	// Identity and label sets, rebuilt when the identity changes.
	id     identity
	labels *labelSet
}

func newCadvisorCollector(env collectors.Env, cfg cadvisorConfig) (*cadvisorCollector, error) {
	var errs []error
	compile := func(flag, s string) *regexp.Regexp {
		re, err := wholeRegexp(flag, s)
		errs = append(errs, err)
		return re
	}
	hostCgroups := cfg.hostCgroups
	if hostCgroups == "" {
		hostCgroups = ".*"
		if env.PodMetadata != nil {
			hostCgroups = defaultHostCgroupsWithKubelet
		}
	}
	hostRE := compile("host-cgroups", hostCgroups)
	includeRE := compile("metric-include", cfg.metricInclude)
	excludeRE := compile("metric-exclude", cfg.metricExclude)
	netRE := compile("network-device-exclude", cfg.netDeviceExclude)
	if cfg.concurrency < 0 {
		errs = append(errs, fmt.Errorf("--collector.cadvisor.read-concurrency must not be negative, got %d", cfg.concurrency))
	}
	if cfg.specRefresh < 0 {
		errs = append(errs, fmt.Errorf("--collector.cadvisor.spec-refresh-interval must not be negative, got %s", cfg.specRefresh))
	}
	if cfg.maxOpenFiles < 0 {
		errs = append(errs, fmt.Errorf("--collector.cadvisor.max-open-files must not be negative, got %d", cfg.maxOpenFiles))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := env.Now
	if now == nil {
		now = time.Now
	}
	c := &cadvisorCollector{
		logger:       logger,
		cgroupPath:   env.Paths.CgroupFS,
		procPath:     env.Paths.ProcFS,
		proc:         env.Proc,
		now:          now,
		meta:         env.PodMetadata,
		hostRE:       hostRE,
		netExcludeRE: netRE,
		sandboxImage: cfg.sandboxImage,
		skipSandbox:  cfg.skipSandboxes,
		skipQoS:      cfg.skipQoS,
		dropID:       cfg.dropID,
		dropName:     cfg.dropName,
		workers:      cfg.concurrency,
		specRefresh:  cfg.specRefresh,
		subtreeZeros: cfg.subtreeZeros,
		budget:       cgroup.NewBudget(cfg.maxOpenFiles),
		shapes:       newLabelShapes(cfg.dropID, cfg.dropName),
		states:       map[string]*cgState{},
		devices:      newBlockDevices(env.Paths.ProcFS),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodeagent_cadvisor_cgroup_errors_total",
			Help: "nodeagent: cgroups whose files could not be read or parsed in a scrape (the rest of the scrape is served).",
		}),
	}
	if c.workers == 0 {
		c.workers = runtime.GOMAXPROCS(0)
	}
	// Keep at most half of RLIMIT_NOFILE for cached descriptors: the rest
	// is for connections, pprof, procfs reads and uncached cgroup reads.
	// (Go raises the soft limit to the hard limit at start.)
	var rl unix.Rlimit
	if cfg.maxOpenFiles > 0 && unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur/2 < uint64(cfg.maxOpenFiles) {
		logger.Info("capping --collector.cadvisor.max-open-files at half of the open-files limit", "flag", cfg.maxOpenFiles, "cap", rl.Cur/2)
		c.budget = cgroup.NewBudget(int(rl.Cur / 2))
	}
	for _, f := range allContainerFamilies() {
		if (includeRE == nil || !includeRE.MatchString(f.name)) || (excludeRE != nil && excludeRE.MatchString(f.name)) {
			continue
		}
		c.families = append(c.families, f)
		c.want |= f.files &^ specFiles
		c.specWant |= f.files & specFiles
		c.network = c.network || strings.HasPrefix(f.name, "container_network_")
	}
	if env.Registerer != nil {
		openFiles := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nodeagent_cadvisor_open_files",
			Help: "nodeagent: cgroup file descriptors kept open across scrapes (--collector.cadvisor.max-open-files).",
		}, func() float64 { return float64(c.budget.Open()) })
		for _, m := range []prometheus.Collector{c.readErrors, openFiles} {
			if err := env.Registerer.Register(m); err != nil {
				return nil, fmt.Errorf("registering cadvisor self-metrics: %w", err)
			}
		}
	}
	return c, nil
}

func (c *cadvisorCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendFamilies(ctx, ch, c.UpdateFamilies)
}

// UpdateFamilies is UpdateCompact's families in client_model form.
func (c *cadvisorCollector) UpdateFamilies(ctx context.Context) ([]*dto.MetricFamily, error) {
	compact, err := c.UpdateCompact(ctx)
	mfs := make([]*dto.MetricFamily, len(compact))
	for i, f := range compact {
		mfs[i] = f.MetricFamily()
	}
	return mfs, err
}

// maxReportedErrors bounds how many per-cgroup errors one scrape returns;
// the rest are counted.
const maxReportedErrors = 10

// UpdateCompact walks the hierarchy, reads every served cgroup (in
// parallel), labels them from pod metadata and builds the families.
func (c *cadvisorCollector) UpdateCompact(ctx context.Context) ([]*exposition.CompactFamily, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.openFS(); err != nil {
		return nil, err
	}
	entries, walkErr := c.walk()
	if entries == nil {
		return nil, walkErr
	}
	now := c.now()
	scrape := c.sync(entries)
	if err := c.readAll(ctx, scrape, now); err != nil {
		return nil, err
	}
	snap := c.snapshot()
	served, unknown := c.identify(scrape, snap)
	if unknown && c.meta != nil {
		c.meta.Unknown()
	}
	c.prepareIO(served)
	netErrs := c.readNetwork(ctx, served)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	memTotal, swapTotal := c.machineMemory()
	mfs := c.build(served, float64(now.Unix()), memTotal, swapTotal)

	errs := []error{walkErr}
	failed := 0
	for _, s := range scrape {
		if s.err != nil {
			failed++
			if failed <= maxReportedErrors {
				errs = append(errs, s.err) // names the file
			}
		}
	}
	if failed > maxReportedErrors {
		errs = append(errs, fmt.Errorf("and %d more cgroups failed", failed-maxReportedErrors))
	}
	c.readErrors.Add(float64(failed))
	errs = append(errs, netErrs...)
	return mfs, errors.Join(errs...)
}

// openFS validates --path.cgroupfs until it is a cgroup v2 hierarchy (or a
// hybrid host's, read with memory from v1); on a cgroup v1 host every
// scrape fails with the fix in the message (the scraper logs it once per
// change) while the other layers are served.
func (c *cadvisorCollector) openFS() error {
	if c.fs != nil {
		return nil
	}
	fs, err := cgroup.NewFS(c.cgroupPath)
	if err != nil {
		return fmt.Errorf("--path.cgroupfs=%s: %w", c.cgroupPath, err)
	}
	if fs.MemoryV1() != "" || fs.V1("cpu") != "" || fs.V1("pids") != "" {
		c.logger.Info("hybrid cgroup host: containers are read from the cgroup v2 hierarchy, what its cgroups lack from the v1 hierarchies",
			"v2", fs.Root(), "memory", fs.MemoryV1(), "cpu", fs.V1("cpu"), "pids", fs.V1("pids"))
	}
	c.fs = &fs
	c.walker = fs.NewWalker()
	// The memory controller's subtree files are served as zero only where
	// this scrape also reads memory.current, which tells that the
	// controller (and so the files) is still there.
	if c.subtreeZeros {
		c.subtree = fs.SubtreeTotals() & c.want
		if !c.want.Has(cgroup.FileMemoryCurrent) {
			c.subtree &^= cgroup.MemoryControllerFiles
		}
		if c.subtree != 0 {
			c.logger.Debug("files that count a cgroup's subtree are read below a cgroup only where they are not zero there (--collector.cadvisor.subtree-zeros)", "files", c.subtree.String())
		}
	}
	// The walk is repeated only when a cgroup directory was made or
	// removed since the last (cgroup.Walker.WatchChanges); without
	// inotify every scrape walks, as it always did.
	if err := c.walker.WatchChanges(); err != nil {
		c.logger.Info("inotify unavailable: the cgroup tree is listed on every scrape", "path", fs.Root(), "err", err)
	}
	return nil
}

// walk lists the cgroups, and says once when the walker stopped watching
// for changes.
func (c *cadvisorCollector) walk() ([]cgroup.Entry, error) {
	entries, err := c.walker.Walk()
	if watching, why := c.walker.Watching(); !watching && why != nil && !c.watchLost {
		c.watchLost = true
		c.logger.Info("stopped watching the cgroup tree for changes: it is listed on every scrape from now on", "path", c.fs.Root(), "err", why)
	}
	return entries, err
}

// sync matches the walk with the kept states: new cgroups get a state,
// recreated ones (same path, new inode) a fresh one, and the states of
// cgroups no longer listed are closed. It returns the cgroups to read, in
// walk order, after the host-cgroup and QoS filters.
func (c *cadvisorCollector) sync(entries []cgroup.Entry) []*cgState {
	for _, s := range c.states {
		s.seen = false
	}
	out := make([]*cgState, 0, len(entries))
	for _, e := range entries {
		if !c.wanted(&e) {
			continue
		}
		s := c.states[e.Path]
		if s != nil && s.entry.Ino != e.Ino {
			s.group.Close()
			s = nil
		}
		if s == nil {
			s = &cgState{group: c.fs.Open(e.Path, e.Ino, c.budget)}
			c.states[e.Path] = s
		}
		s.entry, s.seen = e, true
		out = append(out, s)
	}
	for path, s := range c.states {
		if !s.seen {
			s.group.Close()
			delete(c.states, path)
		}
	}
	return out
}

// wanted applies the filters that the path alone decides.
func (c *cadvisorCollector) wanted(e *cgroup.Entry) bool {
	switch e.Kind {
	case cgroup.KindRoot, cgroup.KindKubepods, cgroup.KindQoS:
		return !c.skipQoS
	case cgroup.KindHost:
		return c.hostRE != nil && c.hostRE.MatchString(e.Path)
	case cgroup.KindContainer:
		// A runtime's container outside the kubepods tree (plain Docker on
		// a host) is a host cgroup for filtering.
		return e.PodUID != "" || (c.hostRE != nil && c.hostRE.MatchString(e.Path))
	}
	return true
}

// forEachParallel calls fn(w, i) for every i in [0, n) on at most workers
// goroutines; w (below workers) names the goroutine, for scratch space of
// its own. Each goroutine takes the next index from a shared counter, so
// slow items do not hold up a fixed share. It stops early once ctx is done.
func forEachParallel(ctx context.Context, n, workers int, fn func(w, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range max(1, min(workers, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				fn(w, i)
			}
		}()
	}
	wg.Wait()
}

// readAll reads every cgroup on c.workers goroutines.
func (c *cadvisorCollector) readAll(ctx context.Context, scrape []*cgState, now time.Time) error {
	for len(c.bufs) < c.workers {
		c.bufs = append(c.bufs, make([]byte, 16<<10))
	}
	for _, s := range scrape {
		s.gone, s.err, s.net = false, nil, nil
		s.parent, s.inner, s.early, s.zero = nil, false, 0, 0
	}
	if c.subtree != 0 {
		c.readSubtreeTotals(ctx, scrape)
	}
	forEachParallel(ctx, len(scrape), c.workers, func(w, i int) {
		c.readOne(scrape[i], &c.bufs[w], now)
	})
	return ctx.Err()
}

func (c *cadvisorCollector) readOne(s *cgState, buf *[]byte, now time.Time) {
	if s.gone {
		return
	}
	if s.createdAt.IsZero() {
		if t, err := s.group.Created(); err == nil {
			s.createdAt = t
		}
	}
	want := c.want
	if !now.Before(s.specDue) {
		want |= c.specWant
		s.specDue = c.nextSpecRead(s, now)
	}
	// A hybrid host's throttling counters are a file of their own (v1's
	// cpu.stat), served only where the quota, read with the limits, is
	// set: most pods have none, and skipping it spares a read per cgroup
	// (and its descriptor, given back).
	if v1 := cgroup.Files(cgroup.FileCPUStatV1); want&v1 != 0 && s.stats.Present.Has(cgroup.FileCPUMax) && !s.stats.CPUMax.HasQuota {
		want &^= v1
		if s.stats.Present&v1 != 0 {
			s.stats.Present &^= v1
			s.group.Release(v1)
		}
	}
	zeros := c.inherited(s)
	err := s.group.Read(want&^(s.early|zeros), c.want, buf, &s.stats)
	if zeros != 0 {
		if !s.stats.Present.Has(cgroup.FileMemoryCurrent) {
			// The memory controller is gone, and its files with it.
			gone := zeros & cgroup.MemoryControllerFiles
			s.stats.Present &^= gone
			zeros &^= gone
		}
		s.stats.SetZero(zeros)
		s.group.Release(zeros)
	}
	switch {
	case errors.Is(err, cgroup.ErrVanished):
		s.gone = true
	case err != nil && s.err != nil:
		s.err = errors.Join(s.err, err)
	case err != nil:
		s.err = err
	}
}

// nextSpecRead spreads the limit-file reads of cgroups first seen together
// (every cgroup, after a restart) over the interval: a cgroup's first
// interval is cut to between half and all of it, by a hash of its path.
func (c *cadvisorCollector) nextSpecRead(s *cgState, now time.Time) time.Time {
	if c.specRefresh <= 0 {
		return now
	}
	if !s.specDue.IsZero() {
		return now.Add(c.specRefresh)
	}
	h := fnv.New64a()
	h.Write([]byte(s.entry.Path))
	frac := float64(h.Sum64()%1024) / 1024
	return now.Add(time.Duration(float64(c.specRefresh) * (0.5 + frac/2)))
}

func (c *cadvisorCollector) snapshot() *podmeta.Snapshot {
	if c.meta == nil {
		return nil
	}
	return c.meta.Snapshot()
}

// machineMemory returns MemTotal and SwapTotal in bytes, which cAdvisor
// serves as the root cgroup's memory and swap limits; -1 when unknown.
func (c *cadvisorCollector) machineMemory() (memTotal, swapTotal float64) {
	memTotal, swapTotal = -1, -1
	if c.proc == (procfs.FS{}) {
		return
	}
	mi, err := c.proc.Meminfo()
	if err != nil {
		c.logger.Debug("reading meminfo for the root cgroup's limits", "path", c.procPath, "err", err)
		return
	}
	if mi.MemTotalBytes != nil {
		memTotal = float64(*mi.MemTotalBytes)
	}
	if mi.SwapTotalBytes != nil {
		swapTotal = float64(*mi.SwapTotalBytes)
	}
	return
}

// build turns the served cgroups into families, in parallel across
// families; a family no cgroup has data for is left out.
func (c *cadvisorCollector) build(served []*cgState, now, memTotal, swapTotal float64) []*exposition.CompactFamily {
	env := buildEnv{now: now, memTotal: memTotal, swapTotal: swapTotal, cpuV1: c.fs.CPUFromV1()}
	out := make([]*exposition.CompactFamily, len(c.families))
	for len(c.series) < c.workers {
		c.series = append(c.series, seriesBuf{})
	}
	var same sameLabels
	forEachParallel(context.Background(), len(c.families), c.workers, func(w, i int) {
		f, sb := &c.families[i], &c.series[w]
		sb.reset()
		for _, s := range served {
			f.emit(sb, s, &env)
		}
		out[i] = sb.family(f, &same)
	})
	return slices.DeleteFunc(out, func(f *exposition.CompactFamily) bool { return f == nil })
}
