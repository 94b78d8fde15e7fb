package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "schedstat",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newSchedstatCollector(env), nil }
		},
	})
}

// schedstatCollector serves the per-CPU scheduler statistics of
// /proc/schedstat (kernels built with CONFIG_SCHEDSTATS).
type schedstatCollector struct {
	proc     procfs.FS
	procPath string
	logger   *slog.Logger

	running, waiting, timeslices *prometheus.Desc
}

func newSchedstatCollector(env collectors.Env) *schedstatCollector {
	cpu := []string{"cpu"}
	return &schedstatCollector{
		proc:       env.Proc,
		procPath:   env.Paths.ProcFS,
		logger:     env.Logger,
		running:    prometheus.NewDesc("node_schedstat_running_seconds_total", "Number of seconds CPU spent running a process.", cpu, nil),
		waiting:    prometheus.NewDesc("node_schedstat_waiting_seconds_total", "Number of seconds spent by processing waiting for this CPU.", cpu, nil),
		timeslices: prometheus.NewDesc("node_schedstat_timeslices_total", "Number of timeslices executed by CPU.", cpu, nil),
	}
}

func (c *schedstatCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	stats, err := c.proc.Schedstat()
	if errors.Is(err, fs.ErrNotExist) {
		c.logger.Debug("schedstat: no /proc/schedstat (CONFIG_SCHEDSTATS off)", "err", err)
		return fmt.Errorf("%w: %w", collectors.ErrNoData, err)
	}
	if err != nil {
		return fmt.Errorf("reading %s/schedstat: %w", c.procPath, err)
	}
	// procfs skips lines it cannot parse, as node_exporter does.
	for _, cpu := range stats.CPUs {
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.CounterValue, float64(cpu.RunningNanoseconds)/1e9, cpu.CPUNum)
		ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.CounterValue, float64(cpu.WaitingNanoseconds)/1e9, cpu.CPUNum)
		ch <- prometheus.MustNewConstMetric(c.timeslices, prometheus.CounterValue, float64(cpu.RunTimeslices), cpu.CPUNum)
	}
	return nil
}
