package node

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
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
	load1, load5, load15 *collectors.CompactDesc
}

func newLoadavgCollector(proc procfs.FS, procPath string) *loadavgCollector {
	return &loadavgCollector{
		proc:     proc,
		procPath: procPath,
		load1:    collectors.NewCompactDesc("node_load1", "1m load average.", dto.MetricType_GAUGE),
		load5:    collectors.NewCompactDesc("node_load5", "5m load average.", dto.MetricType_GAUGE),
		load15:   collectors.NewCompactDesc("node_load15", "15m load average.", dto.MetricType_GAUGE),
	}
}

func (c *loadavgCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the same series in compact form.
func (c *loadavgCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	var b collectors.CompactBuilder
	l, err := c.proc.LoadAvg()
	if err != nil {
		return b.Families(), fmt.Errorf("reading %s/loadavg: %w", c.procPath, err)
	}
	b.AddValues(c.load1, l.Load1)
	b.AddValues(c.load5, l.Load5)
	b.AddValues(c.load15, l.Load15)
	return b.Families(), nil
}
