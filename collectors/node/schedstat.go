package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
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

	running, waiting, timeslices *collectors.CompactDesc
}

func newSchedstatCollector(env collectors.Env) *schedstatCollector {
	cpu := []string{"cpu"}
	return &schedstatCollector{
		proc:       env.Proc,
		procPath:   env.Paths.ProcFS,
		logger:     env.Logger,
		running:    collectors.NewCompactDesc("node_schedstat_running_seconds_total", "Number of seconds CPU spent running a process.", dto.MetricType_COUNTER, cpu...),
		waiting:    collectors.NewCompactDesc("node_schedstat_waiting_seconds_total", "Number of seconds spent by processing waiting for this CPU.", dto.MetricType_COUNTER, cpu...),
		timeslices: collectors.NewCompactDesc("node_schedstat_timeslices_total", "Number of timeslices executed by CPU.", dto.MetricType_COUNTER, cpu...),
	}
}

func (c *schedstatCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the same series in compact form.
func (c *schedstatCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	var b collectors.CompactBuilder
	stats, err := c.proc.Schedstat()
	if errors.Is(err, fs.ErrNotExist) {
		c.logger.Debug("schedstat: no /proc/schedstat (CONFIG_SCHEDSTATS off)", "err", err)
		return b.Families(), fmt.Errorf("%w: %w", collectors.ErrNoData, err)
	}
	if err != nil {
		return b.Families(), fmt.Errorf("reading %s/schedstat: %w", c.procPath, err)
	}
	// procfs skips lines it cannot parse, as node_exporter does.
	for _, cpu := range stats.CPUs {
		b.AddValues(c.running, float64(cpu.RunningNanoseconds)/1e9, cpu.CPUNum)
		b.AddValues(c.waiting, float64(cpu.WaitingNanoseconds)/1e9, cpu.CPUNum)
		b.AddValues(c.timeslices, float64(cpu.RunTimeslices), cpu.CPUNum)
	}
	return b.Families(), nil
}
