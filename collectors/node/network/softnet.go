package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "softnet",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newSoftnetCollector(env), nil }
		},
	})
}

// softnetCollector serves /proc/net/softnet_stat, one series per CPU.
type softnetCollector struct {
	proc     procfs.FS
	procPath string
	logger   *slog.Logger

	processed, dropped, timeSqueezed, cpuCollision *collectors.CompactDesc
	receivedRPS, flowLimitCount, backlogLen        *collectors.CompactDesc
}

func newSoftnetCollector(env collectors.Env) *softnetCollector {
	cpu := []string{"cpu"}
	return &softnetCollector{
		proc:           env.Proc,
		procPath:       env.Paths.ProcFS,
		logger:         env.Logger,
		processed:      collectors.NewCompactDesc("node_softnet_processed_total", "Number of processed packets", dto.MetricType_COUNTER, cpu...),
		dropped:        collectors.NewCompactDesc("node_softnet_dropped_total", "Number of dropped packets", dto.MetricType_COUNTER, cpu...),
		timeSqueezed:   collectors.NewCompactDesc("node_softnet_times_squeezed_total", "Number of times processing packets ran out of quota", dto.MetricType_COUNTER, cpu...),
		cpuCollision:   collectors.NewCompactDesc("node_softnet_cpu_collision_total", "Number of collision occur while obtaining device lock while transmitting", dto.MetricType_COUNTER, cpu...),
		receivedRPS:    collectors.NewCompactDesc("node_softnet_received_rps_total", "Number of times cpu woken up received_rps", dto.MetricType_COUNTER, cpu...),
		flowLimitCount: collectors.NewCompactDesc("node_softnet_flow_limit_count_total", "Number of times flow limit has been reached", dto.MetricType_COUNTER, cpu...),
		backlogLen:     collectors.NewCompactDesc("node_softnet_backlog_len", "Softnet backlog status", dto.MetricType_GAUGE, cpu...),
	}
}

func (c *softnetCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the per-CPU counters in compact form.
func (c *softnetCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	var b collectors.CompactBuilder
	stats, err := c.proc.NetSoftnetStat()
	if errors.Is(err, fs.ErrNotExist) {
		c.logger.Debug("softnet: no softnet_stat", "err", err)
		return b.Families(), fmt.Errorf("%w: %w", collectors.ErrNoData, err)
	}
	if err != nil {
		return b.Families(), fmt.Errorf("reading %s/net/softnet_stat: %w", c.procPath, err)
	}
	for _, s := range stats {
		// Kernels since 5.14 print the CPU number; for older ones procfs
		// numbers the lines, as node_exporter does, which is off when a
		// CPU is offline.
		cpu := strconv.FormatUint(uint64(s.Index), 10)
		b.AddValues(c.processed, float64(s.Processed), cpu)
		b.AddValues(c.dropped, float64(s.Dropped), cpu)
		b.AddValues(c.timeSqueezed, float64(s.TimeSqueezed), cpu)
		b.AddValues(c.cpuCollision, float64(s.CPUCollision), cpu)
		b.AddValues(c.receivedRPS, float64(s.ReceivedRps), cpu)
		b.AddValues(c.flowLimitCount, float64(s.FlowLimitCount), cpu)
		b.AddValues(c.backlogLen, float64(s.SoftnetBacklogLen), cpu)
	}
	return b.Families(), nil
}
