package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/promfetch"
)

// The kubelet's own names that promlint objects to; dashboards and alerts
// (kubernetes-mixin) use them as they are.
var kubeletLintProblems = []collectors.LintException{
	collectors.Inherited("kubelet_cpu_manager_exclusive_cpu_allocation_count", `should not have "_count" suffix`, "the kubelet's name (pkg/kubelet/metrics), passed through"),
	collectors.Inherited("kubelet_evented_pleg_connection_(error|success)_count", "", "the kubelet's counter names (pkg/kubelet/metrics), passed through"),
	collectors.Inherited("kubelet_pleg_discard_events", `should have "_total" suffix`, "the kubelet's counter name (pkg/kubelet/metrics), passed through"),
	collectors.Inherited("kubelet_(server|client)_expiration_renew_errors", `should have "_total" suffix`, "the kubelet's counter names (pkg/kubelet/certificate), passed through"),
	collectors.Inherited("kubelet_topology_manager_admission_duration_ms", "abbreviated units", "the kubelet's histogram name (pkg/kubelet/metrics), passed through"),
	collectors.Inherited("volume_manager_total_volumes", `should not have "_total" suffix`, "the kubelet's gauge name (pkg/kubelet/volumemanager/metrics), passed through"),
	// With webhook authentication (a kubelet in a cluster), seen on the real kubelet by make integration.
	collectors.Inherited("authentication_token_cache_active_fetch_count", `should not have "_count" suffix`, "the kubelet's gauge name (k8s.io/apiserver token cache), passed through"),
}

// sliLintProblems: the published /metrics/slis capture the tests pass
// through (internal/fakekubelet/testdata) types kubernetes_healthchecks_total
// as a gauge; the kubelet's source declares a counter, which promlint
// accepts.
var sliLintProblems = []collectors.LintException{
	collectors.Inherited("kubernetes_healthchecks_total", `non-counter metrics should not have "_total" suffix`, "the kubelet's SLI family (k8s.io/component-base/metrics/prometheus/slis), typed gauge in the published capture, passed through"),
}

func init() {
	// Each passthrough X is served on /metrics/X only: its go_* and
	// process_* families are the kubelet's, not ours (docs/architecture.md#paths-and-jobs).
	for _, p := range []struct {
		name, path string
		on         bool
		// optional: kubelets may lack the path (404), which then means
		// "not here" rather than "the kubelet is down".
		optional bool
		lint     []collectors.LintException
	}{
		// kubelet_node_name and all kubelet_*: kubernetes-mixin's job="kubelet".
		{"kubelet", "/metrics", true, false, kubeletLintProblems},
		// prober_probe_total.
		{"probes", "/metrics/probes", true, false, nil},
		// metrics-server's source; opt-in.
		{"resource", "/metrics/resource", false, false, nil},
		// kubernetes_healthcheck{name,type}: kube-prometheus scrapes it with
		// metrics_path="/metrics/slis". Kubelets before 1.26 (or 1.26 with
		// the ComponentSLIs gate off) answer 404.
		{"slis", "/metrics/slis", true, true, sliLintProblems},
	} {
		collectors.Register(collectors.Registration{
			Name:           p.name,
			Layer:          collectors.LayerKubelet,
			DefaultEnabled: p.on,
			Passthrough:    true,
			Setup: func(collectors.FlagApp) collectors.Factory {
				return func(env collectors.Env) (collectors.Collector, error) {
					if env.Kubelet == nil {
						return nil, nil // no kubelet on this host
					}
					logger := env.Logger
					if logger == nil {
						logger = slog.New(slog.DiscardHandler)
					}
					return &kubeletPassthrough{kubelet: env.Kubelet, path: p.path, optional: p.optional, logger: logger.With("collector", p.name)}, nil
				}
			},
			KnownLintProblems: p.lint,
		})
	}
}

// kubeletPassthrough serves one of the kubelet's metrics paths unchanged in
// names, types, labels and values, without timestamps. Each scrape asks the
// kubelet once; scrapes that arrive together share that one request, as
// the Scraper joins a collector's run in flight.
type kubeletPassthrough struct {
	kubelet  collectors.Kubelet
	path     string
	optional bool
	repaired repairLog
	logger   *slog.Logger
}

// UpdateFamilies fetches the kubelet's families. Thousands of series pass
// through as client_model families, never as prometheus.Metrics.
//
// Any failure fails the collector, and its path answers 503 saying why;
// a 404 on an optional path is ErrNoData (the path answers 404). A body
// repaired of repeated series is served, and logged.
func (c *kubeletPassthrough) UpdateFamilies(ctx context.Context) ([]*dto.MetricFamily, error) {
	mfs, err := c.kubelet.Metrics(ctx, c.path)
	switch {
	case err == nil:
		c.repaired.clear()
		return mfs, nil
	case errors.Is(err, promfetch.ErrRepaired):
		c.repaired.warn(c.logger, err)
		return mfs, nil
	case c.optional && errors.Is(err, promfetch.ErrNotFound):
		return nil, fmt.Errorf("%w: this kubelet does not serve %s (kubelets before 1.26, or with the ComponentSLIs feature gate off, have none): %w", collectors.ErrNoData, c.path, err)
	}
	return nil, err
}

func (c *kubeletPassthrough) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendFamilies(ctx, ch, c.UpdateFamilies)
}

// Source is where the families come from, for the messages of the path.
func (c *kubeletPassthrough) Source() string {
	if l, ok := c.kubelet.(interface{ URLOf(path string) string }); ok {
		return l.URLOf(c.path)
	}
	return "the kubelet's " + c.path
}

// repairLog logs a body repaired of repeated series once per change of
// message: the source sends the same flaw every scrape.
type repairLog struct {
	mu   sync.Mutex
	last string
}

func (r *repairLog) warn(logger *slog.Logger, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if msg := err.Error(); msg != r.last {
		r.last = msg
		logger.Warn("served the source's metrics without repeated families or series it sent", "err", err)
	}
}

func (r *repairLog) clear() {
	r.mu.Lock()
	r.last = ""
	r.mu.Unlock()
}
