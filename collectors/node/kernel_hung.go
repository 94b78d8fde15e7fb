package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
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
	file  *hostfile.ProcFile // kept open between scrapes
	tasks *prometheus.Desc
}

func newKernelHungCollector(env collectors.Env) *kernelHungCollector {
	return &kernelHungCollector{
		file: hostfile.NewProcFile(env.Paths.ProcFS + "/sys/kernel/hung_task_detect_count"),
		tasks: prometheus.NewDesc("node_kernel_hung_tasks_total",
			"Total number of tasks that have been detected as hung since the system booted.", nil, nil),
	}
}

func (c *kernelHungCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	b, err := c.file.Read()
	if errors.Is(err, fs.ErrNotExist) {
		// An older kernel, or one built without hung task detection.
		return fmt.Errorf("%w: %w", collectors.ErrNoData, err)
	}
	if err != nil {
		return err
	}
	n, err := hostfile.ParseUint(b)
	if err != nil {
		return fmt.Errorf("reading %s: %w", c.file.Path(), err)
	}
	ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.CounterValue, float64(n))
	return nil
}
