// Package collectors owns the Collector interface, the registry of every
// collector nodeagent knows (filled from each collector file's init), and the
// Scraper that runs the enabled ones per scrape under a deadline.
//
// One file per collector family; each file writes its metric names in full
// where they are emitted, so one search finds any metric's source.
package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/internal/exposition"
	"github.com/nodeagent/nodeagent/internal/podmeta"
)

// Layer groups collectors by what they describe; each layer is served on its
// own path (docs/architecture.md#paths-and-jobs) so stock dashboards find it
// by scrape job.
type Layer string

// The layers. /metrics serves node, cadvisor and security; kubelet-layer
// collectors are passthroughs served only on their own path, because their
// families (go_*, process_*) would collide with ours.
const (
	LayerNode     Layer = "node"
	LayerCadvisor Layer = "cadvisor"
	LayerKubelet  Layer = "kubelet"
	LayerSecurity Layer = "security"
)

// Layers lists every layer in serving order.
var Layers = []Layer{LayerNode, LayerCadvisor, LayerKubelet, LayerSecurity}

// Collector produces one collector's metrics for one scrape.
//
// Update sends metrics on ch and returns. It must honour ctx: once ctx is
// done the Scraper has already reported the collector failed and drops
// whatever it sends, so Update should return promptly. Sends on ch never block
// for long (the Scraper drains ch), and Update may be called again only after
// the previous call has returned, never concurrently with itself.
//
// Return ErrNoData when there is nothing to report on this host (an absent
// optional file, a subsystem not present): that is success, logged at debug.
// Any other error marks the scrape of this collector failed; metrics sent
// before the error are still served.
type Collector interface {
	Update(ctx context.Context, ch chan<- prometheus.Metric) error
}

// FamilyCollector is an optional interface for collectors with very many
// series (the container layer, kubelet passthrough): it returns complete
// client_model families, which the Scraper serves as they are, skipping the
// per-metric copy and consistency checks of the Update path (about 1.7 µs
// and 11 allocations per series; see docs/performance.md). When a Collector also implements
// FamilyCollector, the Scraper calls only UpdateFamilies (unless it is a
// CompactCollector too, which comes first).
//
// The collector owns correctness: every family has a name, help, type and
// metrics whose label names are consistent and whose label sets are unique;
// metrics are served in the order given; the returned families are never
// modified afterwards. A family name that another collector of the same
// scrape also emits is dropped and counted as an exposition error.
type FamilyCollector interface {
	UpdateFamilies(ctx context.Context) ([]*dto.MetricFamily, error)
}

// CompactCollector is an optional interface for the collectors with the
// most series (the container layer, the host layer's largest): it returns
// counter, gauge and untyped families in compact form, whose series share label sets and cost a
// sixth of client_model's objects (exposition.CompactFamily), and which
// the text answer writes straight out. The collector owns their
// correctness as a FamilyCollector does; the Scraper checks only that each
// is a counter, gauge or untyped with as many label sets as values, and drops and
// counts one that is not. When a Collector implements CompactCollector,
// the Scraper calls only UpdateCompact.
type CompactCollector interface {
	UpdateCompact(ctx context.Context) ([]*exposition.CompactFamily, error)
}

// ErrNoData says a collector found nothing to report on this host.
var ErrNoData = errors.New("collector returned no data")

// Paths are the host paths collectors read, as node_exporter spells their
// flags; in a container they point at the host's mounts.
type Paths struct {
	ProcFS   string // --path.procfs
	SysFS    string // --path.sysfs
	RootFS   string // --path.rootfs
	UdevData string // --path.udev.data
	CgroupFS string // --path.cgroupfs
}

// Env is what cmd/nodeagent builds once and hands to every collector's
// factory: shared readers, the logger, the clock, and where long-lived
// self-metrics go.
type Env struct {
	Logger *slog.Logger
	Paths  Paths
	Proc   procfs.FS
	Sys    sysfs.FS
	// Now is the clock; tests replace it.
	Now func() time.Time
	// Registerer takes a collector's long-lived nodeagent_* metrics (error
	// counters and the like); they are served on /metrics.
	Registerer prometheus.Registerer
	// PodMetadata maps cgroups to pods and containers. Nil when no kubelet
	// layer runs (bare metal); collectors must then serve what cgroup paths
	// tell.
	PodMetadata podmeta.Source
	// Kubelet is the kubelet client, shared by the kubelet-layer and
	// security collectors. Nil when the kubelet layer is off (no kubelet
	// address known); their factories then build nothing.
	Kubelet Kubelet
	// Enabled says whether the named collector is enabled in this agent,
	// for the rare family two collectors could serve: one leaves it to the
	// other (cpu's node_cpu_frequency_hertz from /proc/cpuinfo, which
	// cpufreq serves from sysfs). Nil, as in tests that build one
	// collector alone, means no other collector is enabled.
	Enabled func(name string) bool
}

// Kubelet is the kubelet as the kubelet-layer and security collectors see
// it. cmd/nodeagent builds one (kubeletclient.Client) and shares it; every
// method bounds its own requests with the client's timeouts and honours ctx.
type Kubelet interface {
	// Metrics fetches a metrics path of the authenticated port (/metrics,
	// /metrics/probes, /metrics/resource) and returns its families
	// unchanged, sorted by name, without timestamps. Families returned
	// along with an error are still good to serve.
	Metrics(ctx context.Context, path string) ([]*dto.MetricFamily, error)
	// ReadOnlyPortOpen probes the unauthenticated read-only port once:
	// (true, nil) open, (false, nil) closed (connection refused), an error
	// when it cannot tell (a timeout, an answer that is not a kubelet's).
	ReadOnlyPortOpen(ctx context.Context) (bool, error)
	// AnonymousAuthEnabled sends one request without credentials to the
	// authenticated port: (false, nil) when it is refused with 401, (true,
	// nil) when the kubelet took it as system:anonymous, an error when it
	// cannot tell.
	AnonymousAuthEnabled(ctx context.Context) (bool, error)
	// SecurityCheckInterval is how often the security checks run again
	// (--kubelet.security-check-interval).
	SecurityCheckInterval() time.Duration
}

// Factory builds a collector once flags are parsed. A nil Collector with a
// nil error, or with an error wrapping ErrNoData, means there is nothing to
// collect on this host (the kubelet layer without a kubelet, no container
// runtime found): the collector is left out, as if disabled, and the
// error's text is kept as the reason (Selection.Absent).
type Factory func(Env) (Collector, error)

// FlagApp is where a collector registers its own flags: a *kingpin.Application
// in production, and the same type in tests, so each test gets a fresh one.
type FlagApp = *kingpin.Application

// Registration describes one collector to the registry.
type Registration struct {
	Name           string
	Layer          Layer
	DefaultEnabled bool
	// OffWithKubelet turns a DefaultEnabled collector off when a kubelet is
	// configured (Env.Kubelet is set: --kubelet.url, or NODE_IP/NODE_NAME
	// from the downward API), unless the user enabled it explicitly with
	// --collector.<name>. It is for collectors that belong to a bare-metal
	// host run by systemd but not to a Kubernetes node's DaemonSet pod,
	// which has no host D-Bus socket and whose users did not ask for them
	// (node_exporter has them off).
	OffWithKubelet bool
	// Setup registers the collector's own flags on app, writing into a Config
	// struct of the collector's file, and returns the Factory that reads it.
	Setup func(app FlagApp) Factory
	// KnownLintProblems are promlint findings this collector's names have
	// on purpose: they are node_exporter's, cAdvisor's or the kubelet's
	// names, which dashboards depend on. Anything else promlint reports on
	// nodeagent's output is a bug.
	KnownLintProblems []LintException
	// Passthrough marks a collector that passes one source's metrics
	// through (a kubelet path, kube-proxy, the container runtime): it is
	// served alone on /metrics/<Name>, never merged into /metrics (its
	// go_* and process_* are the source's), and that path tells the
	// source's state: 503 when the collector fails, 404 when it returns
	// ErrNoData (no such source here), so that Prometheus' up for the
	// path is the source's.
	Passthrough bool
}

// registry is the only package-level state: filled by init functions, read-only after.
var registry = map[string]Registration{}

// Register adds a collector to the registry. Layer packages call it from
// init, one call per collector file; a malformed or duplicate registration
// is a programming error and panics at start-up.
func Register(r Registration) {
	if r.Name == "" || r.Setup == nil || !slices.Contains(Layers, r.Layer) {
		panic(fmt.Sprintf("collectors: invalid registration %+v", r))
	}
	if _, dup := registry[r.Name]; dup {
		panic("collectors: collector registered twice: " + r.Name)
	}
	registry[r.Name] = r
}

// Lookup returns the registration of the collector named name.
func Lookup(name string) (Registration, bool) {
	r, ok := registry[name]
	return r, ok
}

// Registrations returns every known collector, sorted by name.
func Registrations() []Registration {
	out := make([]Registration, 0, len(registry))
	for _, r := range registry {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Registration) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Selection is the outcome of flag parsing: which collectors are enabled and
// the factories to build them.
type Selection struct {
	entries []selEntry
	absent  map[string]string
}

type selEntry struct {
	reg     Registration
	enabled *bool
	setByUs *bool // true when the user gave --collector.X or --no-collector.X
	factory Factory
}

// AddFlags registers --collector.<name> (kingpin adds --no-collector.<name>),
// --collector.disable-defaults and every collector's own flags on app, for
// the given registrations.
func AddFlags(app FlagApp, regs []Registration) *Selection {
	s := &Selection{}
	for _, r := range regs {
		e := selEntry{reg: r, enabled: new(bool), setByUs: new(bool)}
		state := "disabled"
		switch {
		case r.DefaultEnabled && r.OffWithKubelet:
			state = "enabled without a kubelet, disabled on Kubernetes nodes"
		case r.DefaultEnabled:
			state = "enabled"
		}
		app.Flag("collector."+r.Name,
			fmt.Sprintf("Enable the %s collector (layer %s, default: %s).", r.Name, r.Layer, state)).
			Default(fmt.Sprint(r.DefaultEnabled)).IsSetByUser(e.setByUs).BoolVar(e.enabled)
		e.factory = r.Setup(app)
		s.entries = append(s.entries, e)
	}
	return s
}

// Instance is one built, enabled collector.
type Instance struct {
	Name      string
	Layer     Layer
	Collector Collector
	// Passthrough is the registration's.
	Passthrough bool
}

// Build applies --collector.disable-defaults (only collectors the user
// enabled explicitly stay on) and the kubelet-dependent defaults
// (Registration.OffWithKubelet), and builds every enabled collector. A
// factory that fails is a startup error naming the collector.
func (s *Selection) Build(env Env, disableDefaults bool) ([]Instance, error) {
	var out []Instance
	var errs []error
	s.absent = map[string]string{}
	enabled := map[string]bool{}
	for _, e := range s.entries {
		on := *e.enabled
		if !*e.setByUs && (disableDefaults || e.reg.OffWithKubelet && env.Kubelet != nil) {
			on = false
		}
		enabled[e.reg.Name] = on
	}
	env.Enabled = func(name string) bool { return enabled[name] }
	for _, e := range s.entries {
		if !enabled[e.reg.Name] {
			s.absent[e.reg.Name] = fmt.Sprintf("collector %s is disabled (enable it with --collector.%s)", e.reg.Name, e.reg.Name)
			continue
		}
		c, err := e.factory(env)
		switch {
		case errors.Is(err, ErrNoData):
			s.absent[e.reg.Name] = err.Error()
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("collector %s: %w", e.reg.Name, err))
			continue
		case c == nil:
			s.absent[e.reg.Name] = ""
			continue
		}
		out = append(out, Instance{Name: e.reg.Name, Layer: e.reg.Layer, Collector: c, Passthrough: e.reg.Passthrough})
	}
	return out, errors.Join(errs...)
}

// Absent says, after Build, why each registered collector it did not build
// is missing: disabled, or its factory's reason (empty when it gave none).
func (s *Selection) Absent() map[string]string { return s.absent }
