package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "pressure",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newPressureCollector(env), nil }
		},
	})
}

// pressureCollector serves pressure stall information (PSI) from
// /proc/pressure/{cpu,io,memory,irq}, as node_exporter's pressure collector
// does: totals in seconds; cpu has no "full" series, irq only "full".
type pressureCollector struct {
	proc                    procfs.FS
	procPath                string
	logger                  *slog.Logger
	cpu, io, ioFull         *collectors.CompactDesc
	memory, memoryFull, irq *collectors.CompactDesc
}

func newPressureCollector(env collectors.Env) *pressureCollector {
	return &pressureCollector{
		proc:       env.Proc,
		procPath:   env.Paths.ProcFS,
		logger:     env.Logger,
		cpu:        collectors.NewCompactDesc("node_pressure_cpu_waiting_seconds_total", "Total time in seconds that processes have waited for CPU time", dto.MetricType_COUNTER),
		io:         collectors.NewCompactDesc("node_pressure_io_waiting_seconds_total", "Total time in seconds that processes have waited due to IO congestion", dto.MetricType_COUNTER),
		ioFull:     collectors.NewCompactDesc("node_pressure_io_stalled_seconds_total", "Total time in seconds no process could make progress due to IO congestion", dto.MetricType_COUNTER),
		memory:     collectors.NewCompactDesc("node_pressure_memory_waiting_seconds_total", "Total time in seconds that processes have waited for memory", dto.MetricType_COUNTER),
		memoryFull: collectors.NewCompactDesc("node_pressure_memory_stalled_seconds_total", "Total time in seconds no process could make progress due to memory congestion", dto.MetricType_COUNTER),
		irq:        collectors.NewCompactDesc("node_pressure_irq_stalled_seconds_total", "Total time in seconds no process could make progress due to IRQ congestion", dto.MetricType_COUNTER),
	}
}

// psiSeconds converts PSI's microsecond totals. Divided twice, as
// node_exporter does, so that the float64 results are bit-identical.
func psiSeconds(us uint64) float64 { return float64(us) / 1000.0 / 1000.0 }

func (c *pressureCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the same series in compact form.
func (c *pressureCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	var b collectors.CompactBuilder
	found := 0
	for _, res := range []string{"cpu", "io", "memory", "irq"} {
		path := filepath.Join(c.procPath, "pressure", res)
		st, err := c.proc.PSIStatsForResource(res)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// PSI needs Linux 4.20 and CONFIG_PSI; irq needs 6.1 and
			// CONFIG_IRQ_TIME_ACCOUNTING.
			c.logger.Debug("pressure information is unavailable", "path", path)
			continue
		case errors.Is(err, syscall.ENOTSUP):
			c.logger.Debug("pressure information is disabled; boot with psi=1 to enable it", "path", path)
			return b.Families(), fmt.Errorf("%w: reading %s: %w", collectors.ErrNoData, path, err)
		case err != nil:
			return b.Families(), fmt.Errorf("reading %s: %w", path, err)
		}
		if st.Some == nil && res != "irq" {
			return b.Families(), fmt.Errorf("%w: %s has no \"some\" line", collectors.ErrNoData, path)
		}
		if st.Full == nil && res != "cpu" {
			return b.Families(), fmt.Errorf("%w: %s has no \"full\" line", collectors.ErrNoData, path)
		}
		switch res {
		case "cpu":
			b.AddValues(c.cpu, psiSeconds(st.Some.Total))
		case "io":
			b.AddValues(c.io, psiSeconds(st.Some.Total))
			b.AddValues(c.ioFull, psiSeconds(st.Full.Total))
		case "memory":
			b.AddValues(c.memory, psiSeconds(st.Some.Total))
			b.AddValues(c.memoryFull, psiSeconds(st.Full.Total))
		case "irq":
			b.AddValues(c.irq, psiSeconds(st.Full.Total))
		}
		found++
	}
	if found == 0 {
		return b.Families(), fmt.Errorf("%w: no pressure files in %s (PSI needs Linux 4.20 and CONFIG_PSI)", collectors.ErrNoData, filepath.Join(c.procPath, "pressure"))
	}
	return b.Families(), nil
}
