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

// statConfig holds the stat collector's flags.
type statConfig struct {
	softirq bool
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "stat",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &statConfig{}
			app.Flag("collector.stat.softirq", "Export softirq calls per vector (node_softirqs_total).").Default("false").BoolVar(&cfg.softirq)
			return func(env collectors.Env) (collectors.Collector, error) { return newStatCollector(env, *cfg), nil }
		},
	})
}

// statCollector serves /proc/stat's system-wide counters as node_exporter's
// stat collector does (the per-CPU lines are the cpu collector's).
type statCollector struct {
	cfg                                  statConfig
	proc                                 procfs.FS
	procPath                             string
	intr, ctxt, forks, btime             *collectors.CompactDesc
	procsRunning, procsBlocked, softirqs *collectors.CompactDesc
}

func newStatCollector(env collectors.Env, cfg statConfig) *statCollector {
	return &statCollector{
		cfg:          cfg,
		proc:         env.Proc,
		procPath:     env.Paths.ProcFS,
		intr:         collectors.NewCompactDesc("node_intr_total", "Total number of interrupts serviced.", dto.MetricType_COUNTER),
		ctxt:         collectors.NewCompactDesc("node_context_switches_total", "Total number of context switches.", dto.MetricType_COUNTER),
		forks:        collectors.NewCompactDesc("node_forks_total", "Total number of forks.", dto.MetricType_COUNTER),
		btime:        collectors.NewCompactDesc("node_boot_time_seconds", "Node boot time, in unixtime.", dto.MetricType_GAUGE),
		procsRunning: collectors.NewCompactDesc("node_procs_running", "Number of processes in runnable state.", dto.MetricType_GAUGE),
		procsBlocked: collectors.NewCompactDesc("node_procs_blocked", "Number of processes blocked waiting for I/O to complete.", dto.MetricType_GAUGE),
		softirqs:     collectors.NewCompactDesc("node_softirqs_total", "Number of softirq calls.", dto.MetricType_COUNTER, "vector"),
	}
}

func (c *statCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the same series in compact form.
func (c *statCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	var b collectors.CompactBuilder
	s, err := c.proc.Stat()
	if err != nil {
		return b.Families(), fmt.Errorf("reading %s/stat: %w", c.procPath, err)
	}
	b.AddValues(c.intr, float64(s.IRQTotal))
	b.AddValues(c.ctxt, float64(s.ContextSwitches))
	b.AddValues(c.forks, float64(s.ProcessCreated))
	b.AddValues(c.btime, float64(s.BootTime))
	b.AddValues(c.procsRunning, float64(s.ProcessesRunning))
	b.AddValues(c.procsBlocked, float64(s.ProcessesBlocked))
	if !c.cfg.softirq {
		return b.Families(), nil
	}
	si := s.SoftIRQ
	for _, v := range []struct {
		vector string
		n      uint64
	}{
		{"hi", si.Hi}, {"timer", si.Timer}, {"net_tx", si.NetTx}, {"net_rx", si.NetRx}, {"block", si.Block},
		{"block_iopoll", si.BlockIoPoll}, {"tasklet", si.Tasklet}, {"sched", si.Sched}, {"hrtimer", si.Hrtimer}, {"rcu", si.Rcu},
	} {
		b.AddValues(c.softirqs, float64(v.n), v.vector)
	}
	return b.Families(), nil
}
