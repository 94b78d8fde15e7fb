package node

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "loadavg",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) {
				return newLoadavgCollector(env.Proc, env.Paths.ProcFS), nil
			}
		},
	})
}

// loadavgCollector serves /proc/loadavg as node_exporter does.
type loadavgCollector struct {
	proc                 procfs.FS
	procPath             string
	load1, load5, load15 *prometheus.Desc
}

func newLoadavgCollector(proc procfs.FS, procPath string) *loadavgCollector {
	return &loadavgCollector{
		proc:     proc,
		procPath: procPath,
		load1:    prometheus.NewDesc("node_load1", "1m load average.", nil, nil),
		load5:    prometheus.NewDesc("node_load5", "5m load average.", nil, nil),
		load15:   prometheus.NewDesc("node_load15", "15m load average.", nil, nil),
	}
}

func (c *loadavgCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	l, err := c.proc.LoadAvg()
	if err != nil {
		return fmt.Errorf("reading %s/loadavg: %w", c.procPath, err)
	}
	ch <- prometheus.MustNewConstMetric(c.load1, prometheus.GaugeValue, l.Load1)
	ch <- prometheus.MustNewConstMetric(c.load5, prometheus.GaugeValue, l.Load5)
	ch <- prometheus.MustNewConstMetric(c.load15, prometheus.GaugeValue, l.Load15)
	return nil
}
