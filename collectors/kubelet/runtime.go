package kubelet

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/nodeagent/nodeagent/collectors"
)

// runtimeKind is a container runtime whose metrics endpoint can be passed
// through on /metrics/runtime.
type runtimeKind struct {
	name string
	// socket is its CRI socket, below --path.rootfs.
	socket string
	// scope is the prefix of its containers' cgroups under the systemd
	// cgroup driver (cri-containerd-<id>.scope, crio-<id>.scope).
	scope string
	// url is where its metrics are once turned on as docs/sources.md says.
	url string
	// prefixes are families only it serves: the check that what answers
	// at url is this runtime.
	prefixes []string
	hint     string
}

var runtimeKinds = []runtimeKind{
	{
		name:     "containerd",
		socket:   "run/containerd/containerd.sock",
		scope:    "cri-containerd-",
		url:      "http://127.0.0.1:1338/v1/metrics",
		prefixes: []string{"containerd_"},
		hint:     `containerd serves metrics only with [metrics] address = "127.0.0.1:1338" in /etc/containerd/config.toml (docs/sources.md); or give --runtime.metrics-url`,
	},
	{
		name:     "CRI-O",
		socket:   "run/crio/crio.sock",
		scope:    "crio-",
		url:      "http://127.0.0.1:9090/metrics",
		prefixes: []string{"crio_", "container_runtime_crio_"},
		hint:     `CRI-O serves metrics only with enable_metrics = true (and metrics_host = "127.0.0.1") in [crio.metrics] (docs/sources.md); or give --runtime.metrics-url`,
	},
}

// The runtimes' names that promlint objects to; their own dashboards use
// them as they are. containerd's per-task container_* families (cgroup
// statistics, labelled container_id and namespace) are not cAdvisor's:
// they stay on /metrics/runtime, a job of their own.
var runtimeLintProblems = []collectors.LintException{
	collectors.Inherited("container_(cpu_kernel|cpu_throttled_time|cpu_total|cpu_user|per_cpu)_nanoseconds", `use base unit "seconds"`, "containerd's task metrics (pkg/cgroups metrics), passed through"),
	collectors.Inherited("container_(cpu_throttle_periods|cpu_throttled_periods|memory_kernel_failcnt|memory_kerneltcp_failcnt|memory_swap_failcnt|memory_usage_failcnt)_total", `non-counter metrics should not have "_total" suffix`, "containerd's task metrics, gauges named _total, passed through"),
	collectors.Inherited("container_runtime_crio_operations", `counter metrics should have "_total" suffix`, "CRI-O's counter name before its crio_* names, passed through"),
	collectors.Inherited("container_runtime_crio_operations_latency_microseconds", `use base unit "seconds"`, "CRI-O's summary name before its crio_* names, passed through"),
	collectors.Inherited("http_request_duration_microseconds", `use base unit "seconds"`, "client_golang's old HTTP handler summary, passed through from CRI-O"),
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "runtime",
		Layer:          collectors.LayerKubelet,
		DefaultEnabled: true,
		Passthrough:    true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &sourceConfig{name: "runtime", urlFlag: "runtime.metrics-url"}
			cfg.addFlags(app, "",
				"The container runtime's metrics endpoint, served on /metrics/runtime: containerd's http://127.0.0.1:1338/v1/metrics or CRI-O's http://127.0.0.1:9090/metrics once turned on. Empty: found from the CRI socket under --path.rootfs or the containers' cgroups, and then 404 while nothing listens; a URL given here that cannot be fetched is a failure (503).")
			return func(env collectors.Env) (collectors.Collector, error) {
				logger := env.Logger
				if logger == nil {
					logger = slog.New(slog.DiscardHandler)
				}
				logger = logger.With("collector", "runtime")
				s := &sourcePassthrough{collector: "runtime", name: "the container runtime", logger: logger}
				raw := cfg.URL
				switch {
				case cfg.urlSet && cfg.URL == "":
					return nil, fmt.Errorf("%w: turned off with an empty --runtime.metrics-url", collectors.ErrNoData)
				case cfg.URL == "":
					kind, why := detectRuntime(env.Paths)
					if kind == nil {
						return nil, fmt.Errorf("%w: %s; give --runtime.metrics-url", collectors.ErrNoData, why)
					}
					logger.Info("container runtime found; its metrics are passed through on /metrics/runtime once it serves them", "runtime", kind.name, "how", why, "url", kind.url)
					raw, s.candidate, s.name, s.prefixes, s.hint = kind.url, true, kind.name, kind.prefixes, kind.hint
				}
				t, err := cfg.target(raw, s.name)
				if err != nil {
					return nil, err
				}
				if s.metrics, err = newSourceMetrics(env.Registerer); err != nil {
					return nil, err
				}
				s.target = t
				return s, nil
			}
		},
		KnownLintProblems: runtimeLintProblems,
	})
}

// detectRuntime finds the node's container runtime where that is reliable:
// exactly one CRI socket under --path.rootfs, or, when there are both or
// none, the containers' cgroups under the systemd driver. Else it returns
// nil and why.
func detectRuntime(p collectors.Paths) (*runtimeKind, string) {
	var bySocket, byCgroup []*runtimeKind
	for i := range runtimeKinds {
		k := &runtimeKinds[i]
		if present(filepath.Join(p.RootFS, k.socket)) {
			bySocket = append(bySocket, k)
		}
		if hasScope(p.CgroupFS, k.scope) {
			byCgroup = append(byCgroup, k)
		}
	}
	switch {
	case len(bySocket) == 1:
		return bySocket[0], "its CRI socket /" + bySocket[0].socket + " is under --path.rootfs"
	case len(byCgroup) == 1:
		return byCgroup[0], "its containers' cgroups are " + byCgroup[0].scope + "*.scope"
	case len(bySocket) > 1:
		return nil, "both containerd's and CRI-O's sockets are under --path.rootfs, and the cgroups do not tell which one runs the pods"
	}
	return nil, "no container runtime found: neither /run/containerd/containerd.sock nor /run/crio/crio.sock under --path.rootfs, nor cri-containerd-*.scope or crio-*.scope cgroups"
}

// present says whether path exists. A permission error counts: only a
// directory that exists can refuse to be searched.
func present(path string) bool {
	_, err := os.Stat(path)
	return err == nil || errors.Is(err, fs.ErrPermission)
}

// hasScope says whether a pod's container cgroup named prefix<id>.scope
// exists under the systemd driver's kubepods.slice, at the depths QoS
// classes put them (Guaranteed pods one level higher).
func hasScope(cgroupfs, prefix string) bool {
	for _, pattern := range []string{
		"kubepods.slice/*/*/" + prefix + "*.scope",
		"kubepods.slice/*/" + prefix + "*.scope",
	} {
		// crio-conmon-<id>.scope, CRI-O's monitor, matches too: as sure a sign.
		if matches, _ := filepath.Glob(filepath.Join(cgroupfs, pattern)); len(matches) > 0 {
			return true
		}
	}
	return false
}
