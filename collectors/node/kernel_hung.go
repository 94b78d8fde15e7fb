package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "kernel_hung",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newKernelHungCollector(env), nil }
		},
	})
}

// kernelHungCollector serves /proc/sys/kernel/hung_task_detect_count (kernel
// 6.11+ with CONFIG_DETECT_HUNG_TASK) as node_exporter does: tasks stuck in
// uninterruptible sleep past hung_task_timeout_secs, typically behind a
// stuck NFS server or a failing disk.
type kernelHungCollector struct {
	proc  procfs.FS
	path  string
	tasks *prometheus.Desc
}

func newKernelHungCollector(env collectors.Env) *kernelHungCollector {
	return &kernelHungCollector{
		proc: env.Proc,
		path: env.Paths.ProcFS + "/sys/kernel/hung_task_detect_count",
		tasks: prometheus.NewDesc("node_kernel_hung_tasks_total",
			"Total number of tasks that have been detected as hung since the system booted.", nil, nil),
	}
}

func (c *kernelHungCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	h, err := c.proc.KernelHung()
	if errors.Is(err, fs.ErrNotExist) {
		// An older kernel, or one built without hung task detection.
		return fmt.Errorf("%w: %s: %w", collectors.ErrNoData, c.path, err)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", c.path, err)
	}
	ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.CounterValue, float64(*h.HungTaskDetectCount))
	return nil
}
