package kubelet

import (
	"fmt"
	"log/slog"

	"github.com/nodeagent/nodeagent/collectors"
)

// defaultKubeProxyURL is kube-proxy's default metricsBindAddress
// (127.0.0.1:10249); the agent runs in the host's network namespace, so
// loopback is the node's.
const defaultKubeProxyURL = "http://127.0.0.1:10249/metrics"

// kube-proxy's names that promlint objects to; its dashboards
// (kubernetes-mixin's proxy.json) use them as they are.
var kubeProxyLintProblems = []collectors.LintException{
	collectors.Inherited("kubeproxy_sync_proxy_rules_iptables_total", `non-counter metrics should not have "_total" suffix`, "kube-proxy's gauge name (pkg/proxy/metrics), passed through"),
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "kube-proxy",
		Layer:          collectors.LayerKubelet,
		DefaultEnabled: true,
		Passthrough:    true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &sourceConfig{name: "kube-proxy", urlFlag: "kube-proxy.url"}
			cfg.addFlags(app, defaultKubeProxyURL,
				"kube-proxy's metrics endpoint, served on /metrics/kube-proxy. On by default where the kubelet layer is on; nothing listening at the default address means no kube-proxy here (404), a URL given here that cannot be fetched is a failure (503).")
			return func(env collectors.Env) (collectors.Collector, error) {
				if !cfg.urlSet && env.Kubelet == nil {
					return nil, fmt.Errorf("%w: kube-proxy is passed through by default on Kubernetes nodes only, and the kubelet layer is off here; give --kube-proxy.url to pass one through anyway", collectors.ErrNoData)
				}
				t, err := cfg.target(cfg.URL, "kube-proxy")
				if err != nil {
					return nil, err
				}
				m, err := newSourceMetrics(env.Registerer)
				if err != nil {
					return nil, err
				}
				logger := env.Logger
				if logger == nil {
					logger = slog.New(slog.DiscardHandler)
				}
				return &sourcePassthrough{
					collector: "kube-proxy", name: "kube-proxy", target: t, candidate: !cfg.urlSet,
					prefixes: []string{"kubeproxy_"},
					hint:     "kube-proxy serves its metrics on metricsBindAddress (127.0.0.1:10249 by default); a CNI that replaces kube-proxy has none. Give --kube-proxy.url, or turn the path off with --no-collector.kube-proxy",
					metrics:  m, logger: logger.With("collector", "kube-proxy"),
				}, nil
			}
		},
		KnownLintProblems: kubeProxyLintProblems,
	})
}
