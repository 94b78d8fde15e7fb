package kubelet

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/collectors"
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

func init() {
	// Each passthrough X is served on /metrics/X only: its go_* and
	// process_* families are the kubelet's, not ours (docs/architecture.md#paths-and-jobs).
	for _, p := range []struct {
		name, path string
		on         bool
		lint       []collectors.LintException
	}{
		// kubelet_node_name and all kubelet_*: kubernetes-mixin's job="kubelet".
		{"kubelet", "/metrics", true, kubeletLintProblems},
		// prober_probe_total.
		{"probes", "/metrics/probes", true, nil},
		// metrics-server's source; opt-in.
		{"resource", "/metrics/resource", false, nil},
	} {
		collectors.Register(collectors.Registration{
			Name:           p.name,
			Layer:          collectors.LayerKubelet,
			DefaultEnabled: p.on,
			Setup: func(collectors.FlagApp) collectors.Factory {
				return func(env collectors.Env) (collectors.Collector, error) {
					if env.Kubelet == nil {
						return nil, nil // no kubelet on this host
					}
					return &kubeletPassthrough{kubelet: env.Kubelet, path: p.path}, nil
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
	kubelet collectors.Kubelet
	path    string
}

// UpdateFamilies fetches the kubelet's families. Thousands of series pass
// through as client_model families, never as prometheus.Metrics.
func (c *kubeletPassthrough) UpdateFamilies(ctx context.Context) ([]*dto.MetricFamily, error) {
	return c.kubelet.Metrics(ctx, c.path)
}

func (c *kubeletPassthrough) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendFamilies(ctx, ch, c.UpdateFamilies)
}
