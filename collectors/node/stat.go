package node

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
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
	intr, ctxt, forks, btime             *prometheus.Desc
	procsRunning, procsBlocked, softirqs *prometheus.Desc
}

func newStatCollector(env collectors.Env, cfg statConfig) *statCollector {
	return &statCollector{
		cfg:          cfg,
		proc:         env.Proc,
		procPath:     env.Paths.ProcFS,
		intr:         prometheus.NewDesc("node_intr_total", "Total number of interrupts serviced.", nil, nil),
		ctxt:         prometheus.NewDesc("node_context_switches_total", "Total number of context switches.", nil, nil),
		forks:        prometheus.NewDesc("node_forks_total", "Total number of forks.", nil, nil),
		btime:        prometheus.NewDesc("node_boot_time_seconds", "Node boot time, in unixtime.", nil, nil),
		procsRunning: prometheus.NewDesc("node_procs_running", "Number of processes in runnable state.", nil, nil),
		procsBlocked: prometheus.NewDesc("node_procs_blocked", "Number of processes blocked waiting for I/O to complete.", nil, nil),
		softirqs:     prometheus.NewDesc("node_softirqs_total", "Number of softirq calls.", []string{"vector"}, nil),
	}
}

func (c *statCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	s, err := c.proc.Stat()
	if err != nil {
		return fmt.Errorf("reading %s/stat: %w", c.procPath, err)
	}
	ch <- prometheus.MustNewConstMetric(c.intr, prometheus.CounterValue, float64(s.IRQTotal))
	ch <- prometheus.MustNewConstMetric(c.ctxt, prometheus.CounterValue, float64(s.ContextSwitches))
	ch <- prometheus.MustNewConstMetric(c.forks, prometheus.CounterValue, float64(s.ProcessCreated))
	ch <- prometheus.MustNewConstMetric(c.btime, prometheus.GaugeValue, float64(s.BootTime))
	ch <- prometheus.MustNewConstMetric(c.procsRunning, prometheus.GaugeValue, float64(s.ProcessesRunning))
	ch <- prometheus.MustNewConstMetric(c.procsBlocked, prometheus.GaugeValue, float64(s.ProcessesBlocked))
	if !c.cfg.softirq {
		return nil
	}
	si := s.SoftIRQ
	for _, v := range []struct {
		vector string
		n      uint64
	}{
		{"hi", si.Hi}, {"timer", si.Timer}, {"net_tx", si.NetTx}, {"net_rx", si.NetRx}, {"block", si.Block},
		{"block_iopoll", si.BlockIoPoll}, {"tasklet", si.Tasklet}, {"sched", si.Sched}, {"hrtimer", si.Hrtimer}, {"rcu", si.Rcu},
	} {
		ch <- prometheus.MustNewConstMetric(c.softirqs, prometheus.CounterValue, float64(v.n), v.vector)
	}
	return nil
}
