package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
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

	processed, dropped, timeSqueezed, cpuCollision *prometheus.Desc
	receivedRPS, flowLimitCount, backlogLen        *prometheus.Desc
}

func newSoftnetCollector(env collectors.Env) *softnetCollector {
	cpu := []string{"cpu"}
	return &softnetCollector{
		proc:           env.Proc,
		procPath:       env.Paths.ProcFS,
		logger:         env.Logger,
		processed:      prometheus.NewDesc("node_softnet_processed_total", "Number of processed packets", cpu, nil),
		dropped:        prometheus.NewDesc("node_softnet_dropped_total", "Number of dropped packets", cpu, nil),
		timeSqueezed:   prometheus.NewDesc("node_softnet_times_squeezed_total", "Number of times processing packets ran out of quota", cpu, nil),
		cpuCollision:   prometheus.NewDesc("node_softnet_cpu_collision_total", "Number of collision occur while obtaining device lock while transmitting", cpu, nil),
		receivedRPS:    prometheus.NewDesc("node_softnet_received_rps_total", "Number of times cpu woken up received_rps", cpu, nil),
		flowLimitCount: prometheus.NewDesc("node_softnet_flow_limit_count_total", "Number of times flow limit has been reached", cpu, nil),
		backlogLen:     prometheus.NewDesc("node_softnet_backlog_len", "Softnet backlog status", cpu, nil),
	}
}

func (c *softnetCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	stats, err := c.proc.NetSoftnetStat()
	if errors.Is(err, fs.ErrNotExist) {
		c.logger.Debug("softnet: no softnet_stat", "err", err)
		return fmt.Errorf("%w: %w", collectors.ErrNoData, err)
	}
	if err != nil {
		return fmt.Errorf("reading %s/net/softnet_stat: %w", c.procPath, err)
	}
	for _, s := range stats {
		// Kernels since 5.14 print the CPU number; for older ones procfs
		// numbers the lines, as node_exporter does, which is off when a
		// CPU is offline.
		cpu := strconv.FormatUint(uint64(s.Index), 10)
		ch <- prometheus.MustNewConstMetric(c.processed, prometheus.CounterValue, float64(s.Processed), cpu)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.Dropped), cpu)
		ch <- prometheus.MustNewConstMetric(c.timeSqueezed, prometheus.CounterValue, float64(s.TimeSqueezed), cpu)
		ch <- prometheus.MustNewConstMetric(c.cpuCollision, prometheus.CounterValue, float64(s.CPUCollision), cpu)
		ch <- prometheus.MustNewConstMetric(c.receivedRPS, prometheus.CounterValue, float64(s.ReceivedRps), cpu)
		ch <- prometheus.MustNewConstMetric(c.flowLimitCount, prometheus.CounterValue, float64(s.FlowLimitCount), cpu)
		ch <- prometheus.MustNewConstMetric(c.backlogLen, prometheus.GaugeValue, float64(s.SoftnetBacklogLen), cpu)
	}
	return nil
}
